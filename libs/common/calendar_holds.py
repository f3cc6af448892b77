"""Calendar holds: time a rep blocks for a meeting not arranged yet, told by its title.

A rep blocks the slot she means to offer a customer ("HOLD: Acme demo", "Hold \u2013 Acme QBR
(tentative)" with an en dash, "Placeholder: Acme", "Acme demo [HOLD]") and invites a colleague
(the SE who will demo) or nobody. Neither calendar marks such an entry (Google's ``tentative``
status and Outlook's ``showAs`` ``tentative`` are how an unanswered invitation shows, not a hold):
its title is all there is. Read by ingest (a hold only colleagues attend is no meeting) and by the
calendar connectors (which forward the word alone when the tenant does not keep subjects).

The word must stand as the title's label: opening it (alone, or followed by a separator or "for":
"HOLD: …", "Hold \u2013 …", "HOLD/…", "[Hold] …", "(Placeholder) …", "Hold for …", "Tentative hold:
…", or in capitals before a word that is not, "HOLD Acme demo"), closing it after a separator or in
brackets ("Acme demo - HOLD", "Acme renewal -- HOLD", "Acme demo (hold)", "Acme demo (HOLD -
pending)"), or as a part of its own between bars or dashes, in capitals or qualified ("Acme QBR |
HOLD | v2", "Acme QBR - soft hold - v2"). "Hold/Release process review", "Hold/unhold workflow
sync", "AR review | Hold | Release", "Acme demo (Hold-up analysis)", "Holding
company review", "Hold music test", "HOLD MUSIC TEST", "HOLD THE DATE: Sales Kickoff",
"PLACEHOLDER TEXT REVIEW", "HOLD (confirmed) Acme demo", "Acme deal on hold" and "Acme: on hold"
name no hold. Languages: English ``hold`` and ``placeholder``; German ``Platzhalter`` (the word
German calendars use). Nothing else is guessed.
"""

from __future__ import annotations

import re

#: The words that label a hold, and the qualifiers that may precede them ("Tentative hold",
#: "Soft hold").
HOLD_WORDS = ("hold", "placeholder", "platzhalter")
_WORD = r"(?:(?:tentative|soft)\s+)?(hold|placeholder|platzhalter)"
#: Separators between the label and the rest of the title: a colon, an en or em dash, a bar, a
#: slash with a space after it, or a hyphen with a space on one side ("Hold-up review",
#: "Hold/Release process review" are no holds; "HOLD/Acme demo", in capitals, is: ``_CAPITALS``).
_SEPARATOR = r"(?:\s*[:\u2013\u2014|]|\s*/(?:\s|$)|\s+-|-\s)"
_OPENING = re.compile(
    rf"^\s*(?:[\[(]\s*{_WORD}\s*[\])]|{_WORD}(?:{_SEPARATOR}|\s*$|\s+for\b))", re.IGNORECASE
)
#: In capitals and followed by the rest of the title without a separator: "HOLD Acme demo". The
#: capitals tell the label from the title only when the next word is not in capitals too
#: ("HOLD THE DATE: Sales Kickoff", "HOLD MUSIC TEST", "PLACEHOLDER TEXT REVIEW" say nothing of
#: a hold) and is a word, not a remark ("HOLD (confirmed) Acme demo").
_CAPITALS = re.compile(
    r"^\s*+(?:(?:TENTATIVE|SOFT)\s+)?(HOLD|PLACEHOLDER|PLATZHALTER)(?:\s++|\s*+/\s*+)(?![A-Z]{2,}\b)[^\W_]"
)
#: A run of dashes or bars between parts of a title ("Acme renewal -- HOLD").
_DASHES = r"[\-\u2013\u2014|]++"
#: Closing the title: in brackets, alone or with a remark after a separator ("Acme demo (HOLD -
#: pending)"; one saying it is confirmed is no hold), or after a space and dashes or bars ("Acme
#: demo - HOLD"). One space before the dashes, and possessive runs, so a run of spaces or dashes
#: is not tried every way (linear).
_CLOSING = re.compile(
    rf"(?:[\[(]\s*+{_WORD}(?:(?:\s*+[:\u2013\u2014|/]|\s++-|-\s)(?!\s*confirmed\b)[^\[\]()]*+)?[\])]"
    rf"|\s{_DASHES}\s*+{_WORD})\s*$",
    re.IGNORECASE,
)
#: A part of its own between dashes or bars, in capitals or qualified: "Acme QBR | HOLD | v2",
#: "Acme QBR - soft hold - v2"; "AR review | Hold | Release" lists a step of a process.
_BETWEEN = re.compile(
    rf"\s{_DASHES}\s*+(?:(?i:(?:tentative|soft)\s+(hold|placeholder|platzhalter))|(HOLD|PLACEHOLDER|PLATZHALTER))"
    rf"\s*+{_DASHES}\s"
)


def hold_word(title: str | None) -> str | None:
    """The word (lower case) by which ``title`` labels a calendar hold, or None for none."""
    if not title:
        return None
    match = (
        _OPENING.match(title)
        or _CAPITALS.match(title)
        or _CLOSING.search(title[-200:])
        or _BETWEEN.search(title)
    )
    if match is None:
        return None
    return next(word for word in match.groups() if word is not None).lower()


def is_hold(title: str | None) -> bool:
    """Whether ``title`` labels a calendar hold (``hold_word``)."""
    return hold_word(title) is not None
