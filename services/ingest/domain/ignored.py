"""Why an item of a delivery was left out (listed in ``ignored``), as a bounded label for
``spm_ingest_ignored_total{source, reason}``.

The ``ignored`` lines name the item and say why in words (an integrator reads them); the counter
needs a handful of values. Each reason below is one the adapters and the pipeline write from the
constants here and in ``normalize`` (a line ends with it, or for a time ahead holds
``normalize.IN_THE_FUTURE``); any other line is ``other`` (an event type not used, a record
without an address, ...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from services.ingest.domain.normalize import ALL_DAY_TIME, BLOCKED_TIME, FREE_TIME, HOLD_TIME, IN_THE_FUTURE

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

#: The labels ``ignored_reason`` gives, and so every value of the counter's ``reason``.
TIME_AHEAD = "time_ahead"
TIME_BLOCK = "time_block"
OLDER_STATE = "older_state"
NOT_DONE = "not_done"
OTHER = "other"
REASONS = (TIME_AHEAD, TIME_BLOCK, OLDER_STATE, NOT_DONE, OTHER)

_ENDINGS: tuple[tuple[tuple[str, ...], str], ...] = (
    ((BLOCKED_TIME, ALL_DAY_TIME, FREE_TIME, HOLD_TIME), TIME_BLOCK),
    ((OLDER_THAN_A_TIME_BLOCK, READ_BEFORE_A_DELETION), OLDER_STATE),
    (
        (
            HUBSPOT_CALL_UNDER_WAY,
            HUBSPOT_EMAIL_NOT_SENT,
            TWILIO_CALL_NOT_ENDED,
            AIRCALL_CALL_NOT_ENDED,
            SALESFORCE_DRAFT,
            DRAFT_NEVER_SENT,
        ),
        NOT_DONE,
    ),
)


def ignored_reason(line: str) -> str:
    """The label of one ``ignored`` line (one of ``REASONS``): ``time_ahead`` a time more than
    ``INGEST_MAX_FUTURE_SKEW_SECONDS`` ahead of receipt, ``time_block`` a calendar hold or time
    away only colleagues attend, ``older_state`` an older revision than one already read (a time
    block's, a deletion's), ``not_done`` a call not ended or a mail not sent (HubSpot's non-SENT
    emails, drafts), ``other`` the rest."""
    if f"{IN_THE_FUTURE} (received " in line:
        return TIME_AHEAD
    for endings, reason in _ENDINGS:
        if line.endswith(endings):
            return reason
    return OTHER


def ignored_counts(lines: Iterable[str]) -> Counter[str]:
    """How many ``lines`` each label counts."""
    return Counter(ignored_reason(line) for line in lines)
