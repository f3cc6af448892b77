"""Why an item of a delivery was left out (listed in ``ignored``), as a bounded label for
``spm_ingest_ignored_total{source, reason}``.

The ``ignored`` lines name the item and say why in words (an integrator reads them); the counter
needs a handful of values. Each line is an :class:`Ignored`: the string the response lists, with
the code it is counted under set where the line is written (an adapter, the pipeline), never read
back from its words, so a line that echoes a sender's text or is reworded keeps its code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

#: Why a meeting is ignored that is older than a revision of its object read as no meeting.
OLDER_THAN_A_TIME_BLOCK = (
    "an older revision than one read as no meeting (a hold only colleagues attend, time away)"
)
#: Why a page's revision is ignored that was read before a deletion of its object read later.
READ_BEFORE_A_DELETION = "read before a deletion of it read later, an older state"

#: What has not happened yet (a call under way, a mail not sent): each adapter's words for it.
HUBSPOT_CALL_UNDER_WAY = "the call is still under way"
HUBSPOT_EMAIL_NOT_SENT = "the email was not sent"
TWILIO_CALL_NOT_ENDED = "the call has not connected or ended yet"
AIRCALL_CALL_NOT_ENDED = "the call has not been answered or ended yet"
SALESFORCE_DRAFT = "a draft, not sent"
DRAFT_NEVER_SENT = "a draft was never sent"

#: The codes an ``Ignored`` line carries, and so every value of the counter's ``reason``:
#: ``time_ahead`` a time more than ``INGEST_MAX_FUTURE_SKEW_SECONDS`` ahead of receipt,
#: ``time_block`` a calendar hold or time away only colleagues attend, ``older_state`` an older
#: revision than one already read (a time block's, a deletion's), ``not_done`` a call not ended or
#: a mail not sent (HubSpot's non-SENT emails, drafts), ``other`` the rest.
TIME_AHEAD = "time_ahead"
TIME_BLOCK = "time_block"
OLDER_STATE = "older_state"
NOT_DONE = "not_done"
OTHER = "other"
REASONS = (TIME_AHEAD, TIME_BLOCK, OLDER_STATE, NOT_DONE, OTHER)


class Ignored(str):
    """One line of a delivery's ``ignored``: the string itself is what the response lists (the
    item and why, in words); ``reason`` (one of ``REASONS``) is what the counter counts it under.

    A converter may return one as its reason for leaving an item out (a draft: ``not_done``);
    :func:`ignored_line` prefixes it with the item's label and keeps its code."""

    reason: str

    def __new__(cls, words: str, reason: str = OTHER) -> Ignored:
        if reason not in REASONS:
            raise ValueError(f"not a reason of spm_ingest_ignored_total: {reason!r}")
        line = super().__new__(cls, words)
        line.reason = reason
        return line


def ignored_line(label: str, why: str) -> Ignored:
    """``label: why``, under ``why``'s code when it carries one (an :class:`Ignored`), else ``other``."""
    return Ignored(f"{label}: {why}", why.reason if isinstance(why, Ignored) else OTHER)


def ignored_counts(lines: Iterable[Ignored]) -> Counter[str]:
    """How many ``lines`` each code counts."""
    return Counter(line.reason for line in lines)
