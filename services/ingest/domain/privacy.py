"""Privacy rules applied to every activity before it is published.

An excluded activity is dropped (the verdict says why); an automated sender is kept but
flagged so that it is counted and never scored; subjects are removed unless the tenant keeps them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

import msgspec

from libs.common.contracts.activities import (
    ActivityFields,
    ActivityKind,
    Direction,
    ParticipantFields,
    ParticipantRole,
)
from libs.common.contracts.copying import with_changes
from services.ingest.domain.normalize import DomainSuffixes, domain_suffixes, in_domains


class ExclusionReason(StrEnum):
    EXCLUDED_ADDRESS = "excluded_address"
    EXCLUDED_DOMAIN = "excluded_domain"
    EXCLUDED_KEYWORD = "excluded_keyword"
    INTERNAL_ONLY = "internal_only"


#: Keywords are looked up by a substring of this many characters.
_GRAM = 4
#: Up to this many keywords are searched for one by one: cheaper than listing a subject's grams.
_SEARCHED_ONE_BY_ONE = 16


@dataclass(frozen=True, slots=True)
class SubjectKeywords:
    """Whether a (case-folded) subject holds one of a tenant's keywords. Many keywords are not
    searched for one by one in every subject: one shorter than ``_GRAM`` is looked up among the
    subject's substrings of its length, a longer one searched for only in a subject holding its
    rarest ``_GRAM`` characters (a keyword's every substring is in a subject that holds it).
    Built once per policy."""

    #: Keywords searched for in every subject (when they are few).
    each: tuple[str, ...] = ()
    #: Keywords shorter than ``_GRAM`` by their length.
    short: dict[int, frozenset[str]] = field(default_factory=dict)
    #: The other keywords by the substring of ``_GRAM`` characters the fewest of them share.
    by_gram: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    @functools.lru_cache(maxsize=64)
    def of(cls, keywords: frozenset[str]) -> SubjectKeywords:
        """Cached: a tenant's policy is made again at each reload of its settings (30 s), and
        indexing the most the settings allow takes 0.2 s."""
        if len(keywords) <= _SEARCHED_ONE_BY_ONE:
            return cls(tuple(sorted(keywords)))
        short: dict[int, set[str]] = {}
        grams: dict[str, set[str]] = {}
        for keyword in sorted(keywords):
            if len(keyword) < _GRAM:
                short.setdefault(len(keyword), set()).add(keyword)
            else:
                grams[keyword] = {keyword[i : i + _GRAM] for i in range(len(keyword) - _GRAM + 1)}
        shared: dict[str, int] = {}
        for held in grams.values():
            for gram in held:
                shared[gram] = shared.get(gram, 0) + 1
        by_gram: dict[str, list[str]] = {}
        for keyword, held in grams.items():
            by_gram.setdefault(min(held, key=lambda g: (shared[g], g)), []).append(keyword)
        return cls(
            (),
            {length: frozenset(words) for length, words in short.items()},
            {gram: tuple(listed) for gram, listed in by_gram.items()},
        )

    def found_in(self, subject: str) -> bool:
        for length, words in self.short.items():
            if not words.isdisjoint(subject[i : i + length] for i in range(len(subject) - length + 1)):
                return True
        return any(keyword in subject for keyword in self.searched_for(subject))

    def searched_for(self, subject: str) -> Iterator[str]:
        """The keywords worth searching for in ``subject`` one by one: all of them when they are
        few, else those of ``_GRAM`` characters or more whose rarest ``_GRAM`` it holds."""
        yield from self.each
        if self.by_gram:
            held = {subject[i : i + _GRAM] for i in range(len(subject) - _GRAM + 1)}
            for gram in held & self.by_gram.keys():
                yield from self.by_gram[gram]


@dataclass(frozen=True, slots=True)
class PrivacyPolicy:
    """A tenant's privacy settings; addresses and domains compare case-insensitively."""

    excluded_addresses: frozenset[str] = frozenset()
    excluded_domains: frozenset[str] = frozenset()
    excluded_subject_keywords: frozenset[str] = frozenset()
    keep_subjects: bool = False
    drop_internal_only: bool = False
    #: The tenant's own domains (``TenantWebhookConfig.internal_domains``): with
    #: ``drop_internal_only``, an activity whose every participant writes from one is internal,
    #: whatever direction its sender gave it (``POST /v1/events``).
    internal_domains: frozenset[str] = frozenset()
    #: The excluded domains as ``_in_domains`` reads them (``normalize.domain_suffixes``), made
    #: once here: every address of every activity is checked.
    excluded_suffixes: DomainSuffixes = field(
        default=((), frozenset()), init=False, repr=False, compare=False
    )
    #: The excluded keywords as ``_exclusion`` searches subjects for them, made once here.
    subject_keywords: SubjectKeywords = field(
        default_factory=SubjectKeywords, init=False, repr=False, compare=False
    )
    #: ``internal_domains`` as ``in_domains`` reads them.
    internal_suffixes: DomainSuffixes = field(
        default=((), frozenset()), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Normalised once here rather than for every activity checked.
        normalised = {
            "excluded_addresses": frozenset(a.strip().lower() for a in self.excluded_addresses if a.strip()),
            "excluded_domains": frozenset(
                d.strip().lower().lstrip("@") for d in self.excluded_domains if d.strip()
            ),
            "excluded_subject_keywords": frozenset(
                k.strip().casefold() for k in self.excluded_subject_keywords if k.strip()
            ),
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "excluded_suffixes", domain_suffixes(self.excluded_domains))
        object.__setattr__(self, "internal_suffixes", domain_suffixes(self.internal_domains))
        object.__setattr__(self, "subject_keywords", SubjectKeywords.of(self.excluded_subject_keywords))


#: The contract's model or the batch path's struct: the rules read both alike (``ActivityFields``).
ActivityT = TypeVar("ActivityT", bound=ActivityFields)


class PrivacyVerdict(msgspec.Struct, Generic[ActivityT], frozen=True):
    """One per activity: a frozen msgspec struct, where a frozen dataclass set each field through
    ``object.__setattr__``."""

    excluded: bool
    reason: ExclusionReason | None
    automated: bool
    #: The activity as it may be published: subject removed unless the policy keeps subjects.
    activity: ActivityT


#: Local parts (after dropping a +tag and folding "." and "_" into "-") of automated senders.
AUTOMATED_LOCAL_PARTS: frozenset[str] = frozenset(
    {
        "no-reply",
        "noreply",
        "do-not-reply",
        "donotreply",
        "dont-reply",
        "mailer-daemon",
        "postmaster",
        "notification",
        "notifications",
        "notify",
        "alerts",
        "alert",
        "bounce",
        "bounces",
        "auto-confirm",
        "autoreply",
        "auto-reply",
        "automated",
        "daemon",
        "system",
        "calendar-notification",
        "invitations",
    }
)
#: Prefixes that mark a generated address whatever follows (``noreply-12345@``, ``bounce-abc@``;
#: Exchange's delivery reports come from ``MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@``).
AUTOMATED_LOCAL_PREFIXES: tuple[str, ...] = (
    "no-reply-",
    "noreply-",
    "do-not-reply-",
    "bounce-",
    "bounces-",
    "microsoftexchange",
)

#: How a mail system begins the subject of what it sends by itself from a person's own address:
#: out-of-office replies and delivery failures (Outlook, Exchange, Gmail and their
#: translations), compared case-folded, spaces collapsed and none before a colon (French writes
#: "Réponse automatique :"). A person's reply to one begins "RE:" and stays a person's. Nobody
#: begins a subject of their own so: the prefix alone makes the email automated.
AUTOMATED_SUBJECT_PREFIXES: tuple[str, ...] = (
    # Out-of-office and other automatic replies.
    "automatic reply:",
    "auto reply:",
    "auto-reply:",
    "autoreply:",
    "out of office:",
    "out of office reply:",
    "out of the office:",
    "abwesenheitsnotiz:",
    "automatische antwort:",
    "réponse automatique:",
    "respuesta automática:",
    "risposta automatica:",
    "resposta automática:",
    "automatisch antwoord:",
    # Delivery failures (Exchange's come from the sender's own domain).
    "undeliverable:",
    "unzustellbar:",
    "non remis:",
    "delivery status notification",
    "undelivered mail returned to sender",
    "mail delivery failed",
)

#: Short prefixes a mail program writes (read receipts, answers to a calendar invitation, a
#: bounce) that people write too: "Accepted: proposal v3 - ready to sign", "Read: Q3 pricing deck
#: before our call", "Returned mail: see attached RMA" are buying signals. Such a subject is
#: automated only with corroboration the email carries (:func:`is_automated_subject`).
GENERIC_SUBJECT_PREFIXES: tuple[str, ...] = (
    # Read receipts.
    "read:",
    "not read:",
    "gelesen:",
    "ungelesen:",
    "lu:",
    "non lu:",
    # Answers to a calendar invitation.
    "accepted:",
    "declined:",
    "tentative:",
    "tentatively accepted:",
    "angenommen:",
    "abgelehnt:",
    "mit vorbehalt angenommen:",
    "accepté:",
    "refusé:",
    # A bounce.
    "returned mail:",
    # A calendar's own invitation mail, sent from the organizer's address: Google Calendar's
    # ("Invitation: Weekly sync @ Wed Oct 6, 2021 12pm - 12:25pm (PDT) (kasan-dev)", "Updated
    # invitation with note: ... @ Tue Jan 11, 2022 11am - 12pm (EST) (julien@xen.org)", "Canceled
    # event with note: ...", German "Aktualisierte Einladung: ... @ Di 8. Sep. 17:00 - 18:00
    # (...)", as real mail archives show them), and Outlook's cancellation ("Canceled:"). A rep
    # writes "Invitation: executive dinner" and a buyer "Einladung: Partnertag" too: the
    # calendar's only with the calendar's date and time, a system sender or an iCalendar UID.
    "invitation:",
    "invitation with note:",
    "updated invitation:",
    "updated invitation with note:",
    "canceled event:",
    "cancelled event:",
    "canceled event with note:",
    "cancelled event with note:",
    "einladung:",
    "aktualisierte einladung:",
    "abgesagter termin:",
    "termin abgesagt:",
    "canceled:",
    "cancelled:",
)

#: A calendar names the meeting its mail is about with its date and time after an ``@``, as
#: only a calendar writes it (Google Calendar: "Accepted: Globex weekly @ Tue Nov 3, 2026 10am -
#: 11am (PST)", "@ Mon 31 Aug 2026 16:00 - 16:30 (GMT+3)", German "Angenommen: Wartung @ Di. 3.
#: Nov. 2026 10:00 - 11:00 (MEZ)", "@ Di 8. Sep. 17:00 - 18:00 (Thorsten ...)"): a weekday and a
#: day of the month, then a time range, then the subject ends with parentheses (the zone, the
#: calendar's or the recipient's name or address); or, for an all-day or a recurring event ("@ Thu
#: Nov 5, 2026 (ana@acme.example)", "@ Weekly from 10am to 11am on Tuesday (PST)
#: (ana@acme.example)"), the recipient's address in parentheses at the end. A person's
#: "Invitation: Partnertag @ 10:00 - 16:00 (Berlin)", "Canceled: call @ 2pm - 3pm (my fault,
#: sorry)" or "Invitation: Roadshow @ Munich, 12 May 2026, 9-17" names no weekday and no address.
_TIME = r"\d{1,2}(?::\d{2})?\s?(?:am|pm)|\d{1,2}:\d{2}"
_WEEKDAY_AND_DAY = (
    r"\b(?:mon|tue|wed|thu|fri|sat|sun|mo|di|mi|do|fr|sa|so)\.?\s+(?:[a-zäéû]{3,9}\.?\s+)?\d{1,2}\b"
)
_CALENDAR_WHEN = re.compile(
    r" @ (?:"
    rf".*{_WEEKDAY_AND_DAY}[^@]*?\b(?:{_TIME})\s*[-\u2013]\s*(?:{_TIME})\s*\([^()]+\)(?:\s*\([^()]+\))?$"
    r"|.*\([^()\s@]+@[^()\s@]+\)$"
    r")",
    re.IGNORECASE,
)

#: Roles whose address is the sender of the activity.
SENDER_ROLES = frozenset({ParticipantRole.FROM, ParticipantRole.ORGANIZER, ParticipantRole.CALLER})
#: Read once: an enum member read from its class per activity goes through ``EnumType``'s
#: ``__getattr__`` slot (Python 3.11).
_EMAIL = ActivityKind.EMAIL


@functools.lru_cache(maxsize=4_096)
def is_automated_address(address: str) -> bool:
    local = address.rsplit("@", 1)[0].lower().split("+", 1)[0]
    folded = re.sub(r"[._]", "-", local)
    return folded in AUTOMATED_LOCAL_PARTS or folded.startswith(AUTOMATED_LOCAL_PREFIXES)


def is_automated_subject(subject: str, sender: str | None = None) -> bool:
    """Whether an email's subject is one a mail system writes: it begins with one of
    ``AUTOMATED_SUBJECT_PREFIXES``; or with one of ``GENERIC_SUBJECT_PREFIXES`` and the email
    corroborates it, its ``sender`` a system address (:func:`is_automated_address`: postmaster,
    mailer-daemon, MicrosoftExchange...), or the rest naming a meeting with its date and time as
    a calendar writes it (``@ Tue Nov 3, 2026 10am``, ``@ Mon 31 Aug 2026 16:00 - 16:30 (GMT+3)``,
    ``_CALENDAR_WHEN``). Else a person wrote it: "Invitation: join our partner summit"."""
    read = _SPACE_BEFORE_COLON.sub(":", " ".join(subject.split()).casefold())
    if read.startswith(AUTOMATED_SUBJECT_PREFIXES):
        return True
    if not read.startswith(GENERIC_SUBJECT_PREFIXES):
        return False
    if sender is not None and is_automated_address(sender):
        return True
    # The date and time follow the subject's last " @ " (a title may hold one); a calendar writes
    # them in well under _CALENDAR_WHEN_MAX characters, and reading only so many keeps a long
    # subject's cost bounded (the pattern backtracks: 25 ms for 2,000 characters read whole).
    _, at, when = read.rpartition(" @ ")
    return bool(at) and len(when) <= _CALENDAR_WHEN_MAX and _CALENDAR_WHEN.match(at + when) is not None


#: The longest date-and-time part of a calendar's subject read (a recurring event's, with a long
#: zone name and address, is about 130).
_CALENDAR_WHEN_MAX = 240

_SPACE_BEFORE_COLON = re.compile(r"\s+:")

#: What a mail program puts before the subject of a reply or a forward, in the languages above
#: (RE, FW, Fwd; German AW, WG; Nordic SV, VS; French TR; Spanish RV; Dutch Antw).
_REPLY_OR_FORWARD = re.compile(r"^\s*(?:re|fw|fwd|aw|wg|sv|vs|tr|rv|antw)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)


def is_reply_or_forward(subject: str) -> bool:
    """Whether a person replied to or forwarded the email whose subject ``subject`` quotes."""
    return _REPLY_OR_FORWARD.match(subject) is not None


def _sender(activity: ActivityFields) -> ParticipantFields | None:
    for participant in activity.participants:
        if participant.role in SENDER_ROLES:
            return participant
    return None


def _in_domains(address: str, policy: PrivacyPolicy) -> bool:
    """Whether the address's domain or one of its parent domains is excluded (``in_domains``)."""
    return in_domains(address, policy.excluded_suffixes)


# Plain loops rather than ``any(...)`` over generators: these run for every activity, and a
# generator costs more than the set lookups it wraps.
def _exclusion(activity: ActivityFields, policy: PrivacyPolicy) -> ExclusionReason | None:
    addresses = policy.excluded_addresses
    if addresses:
        for participant in activity.participants:
            if (participant.email and participant.email in addresses) or (
                participant.phone and participant.phone in addresses
            ):
                return ExclusionReason.EXCLUDED_ADDRESS
    if policy.excluded_domains:
        for participant in activity.participants:
            if participant.email and _in_domains(participant.email, policy):
                return ExclusionReason.EXCLUDED_DOMAIN
    subject = activity.subject
    if policy.excluded_subject_keywords and subject and policy.subject_keywords.found_in(subject.casefold()):
        return ExclusionReason.EXCLUDED_KEYWORD
    if policy.drop_internal_only and _internal_only(activity, policy):
        return ExclusionReason.INTERNAL_ONLY
    return None


def _internal_only(activity: ActivityFields, policy: PrivacyPolicy) -> bool:
    """Internal by its direction, or every participant writing from the tenant's domains (a
    participant known only by a phone could be anyone). Before 2026-12 only the direction was
    read: a ``POST /v1/events`` mail among colleagues sent as ``outbound`` was kept."""
    if activity.direction is Direction.INTERNAL:
        return True
    if not policy.internal_domains or not activity.participants:
        return False
    for participant in activity.participants:
        if not participant.email or not in_domains(participant.email, policy.internal_suffixes):
            return False
    return True


def apply_privacy(activity: ActivityT, policy: PrivacyPolicy) -> PrivacyVerdict[ActivityT]:
    """Decide whether ``activity`` may be published, and strip what the tenant does not keep."""
    reason = _exclusion(activity, policy)
    sender = _sender(activity)
    automated = bool(sender and sender.email and is_automated_address(sender.email)) or bool(
        activity.kind == _EMAIL
        and (
            # An email carrying a calendar event's iCalendar UID is that calendar's message (an
            # invitation, an update, a cancellation, an answer; Outlook's carry no prefix): the
            # meeting counts from the calendar, the message is no one's email. Unless a person
            # replied to it or forwarded it ("RE: Globex weekly", "Fwd: Invitation: ..."): hers.
            bool(activity.ical_uid and not (activity.subject and is_reply_or_forward(activity.subject)))
            or bool(
                activity.subject and is_automated_subject(activity.subject, sender.email if sender else None)
            )
        )
    )
    keep = policy.keep_subjects or activity.subject is None
    published = activity if keep else with_changes(activity, {"subject": None})
    return PrivacyVerdict(excluded=reason is not None, reason=reason, automated=automated, activity=published)
