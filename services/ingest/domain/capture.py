"""What of a webhook delivery may be kept: the one decision made before anything is written.

A delivery is written in up to three places: the raw capture (``webhook-received``), the
vendor's folded state (``webhook_state``, Zoom) and the activities and CRM records it turns
into. :func:`keep_of_delivery` decides for all three, from the tenant's privacy policy and
erasure list, before any of them is written:

* a delivery about an excluded person (an excluded address or domain) or an erased one is
  never captured raw; a Zoom participant event about them is reduced: an excluded person
  becomes a flag on the meeting (the meeting is then excluded when it ends, as its activity
  would be), an erased one the placeholder attribution removes;
* the raw capture keeps no content (subjects, snippets, previews, bodies, titles, agendas)
  unless the tenant opted in (``privacy.keep_subjects``), and no shared secret;
* the activities themselves then go through :func:`services.ingest.domain.privacy.apply_privacy`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from libs.common.contracts.activities import ActivityIn
from libs.common.contracts.crm import ContactV1, CrmEntity
from libs.common.erasures import ERASED_ADDRESS, ErasedIdentities, names_erased_person
from services.ingest.domain.privacy import PrivacyPolicy, _exclusion, _in_domains
from services.ingest.domain.vendors.ringcentral import RingCentralEvent, RingCentralParty
from services.ingest.domain.vendors.twilio import TwilioLeg
from services.ingest.domain.vendors.zoom import ZoomEvent
from services.ingest.domain.webhook_types import AdapterResult, WebhookRejected

#: Body fields that hold content (what was said or written), per source; dropped from the raw
#: capture unless the tenant keeps subjects. Keys match at any depth of a JSON body.
CONTENT_FIELDS: dict[str, frozenset[str]] = {
    "gmail": frozenset({"snippet", "subject", "body", "data"}),
    "microsoft-graph": frozenset({"subject", "bodyPreview", "body", "uniqueBody"}),
    "google-calendar": frozenset({"summary", "description"}),
    "zoom": frozenset({"topic", "agenda"}),
    "calendly": frozenset({"questions_and_answers", "cancel_reason", "name"}),
    "hubspot": frozenset(
        {
            "hs_call_title",
            "hs_call_body",
            "hs_email_subject",
            "hs_email_text",
            "hs_email_html",
            "hs_meeting_title",
            "hs_meeting_body",
            "hs_body_preview",
        }
    ),
    "aircall": frozenset({"comments", "transcription", "summary"}),
    "twilio": frozenset(),
    "ringcentral": frozenset(),
    "salesforce": frozenset({"Subject", "Description", "TextBody", "HtmlBody", "Headers"}),
}
#: Arrays and objects a JSON body may nest, the body itself the first: the raw capture writes
#: the body back without its content fields, and orjson writes 255 levels at most (vendors' own
#: payloads nest about ten).
MAX_CAPTURE_DEPTH = 128
#: Gmail carries the subject as a header object ``{"name": "Subject", "value": ...}``.
_CONTENT_HEADERS = frozenset({"subject"})
#: Body fields that carry a shared secret, per source: masked in the raw capture.
SECRET_BODY_FIELDS: dict[str, str] = {"aircall": "token", "microsoft-graph": "clientState"}
#: Calendly's ``name`` is the event type's title at the event level only, a person's name on the invitee.
_PERSON_FIELDS = frozenset({"email", "name", "first_name", "last_name"})


@dataclass(frozen=True, slots=True)
class KeptDelivery:
    """What may be written of one delivery."""

    #: The body for the raw capture, or None when nothing of it may be captured.
    raw_body: bytes | None
    #: The Zoom events to fold, reduced where they were about an excluded or erased person.
    zoom_events: tuple[ZoomEvent, ...]
    #: Why the raw capture was refused, for the logs and metrics (no identity in it).
    withheld: str | None = None
    #: The Twilio legs to fold, without an excluded or erased person's number.
    twilio_legs: tuple[TwilioLeg, ...] = ()
    #: The RingCentral notifications to fold, without an excluded or erased person's number.
    ringcentral_events: tuple[RingCentralEvent, ...] = ()


def _is_excluded(email: str | None, phone: str | None, policy: PrivacyPolicy) -> bool:
    addresses = policy.excluded_addresses
    if (email and email.lower() in addresses) or (phone and phone in addresses):
        return True
    return bool(email and policy.excluded_domains and _in_domains(email, policy))


def _reduce_zoom(
    event: ZoomEvent, policy: PrivacyPolicy, erased: ErasedIdentities
) -> tuple[ZoomEvent, str | None]:
    """The event without the person it must not keep, and why (None: kept as it is)."""
    update: dict[str, object] = {} if policy.keep_subjects else {"topic": None}
    participant = event.participant
    reason = None
    if participant is not None and _is_excluded(participant.email, participant.phone, policy):
        update |= {"participant": None, "excluded_participant": True}
        reason = "excluded participant"
    elif participant is not None and participant.email and erased.names(participant.email, participant.phone):
        update["participant"] = participant.model_copy(
            update={"email": ERASED_ADDRESS, "phone": None, "name": None, "user_id": None}
        )
        reason = "erased participant"
    elif participant is not None and participant.phone and erased.names(None, participant.phone):
        # Who dialled in from an erased person's number: the number goes, the join stays (a
        # person there, whom nothing identifies).
        update["participant"] = participant.model_copy(update={"phone": None, "name": None, "user_id": None})
        reason = "erased participant"
    return (event.model_copy(update=update) if update else event), reason


def _reduce_twilio(
    leg: TwilioLeg, policy: PrivacyPolicy, erased: ErasedIdentities
) -> tuple[TwilioLeg, str | None]:
    """The leg without the person it must not keep, and why (None: kept as it is): an excluded
    person's number becomes a flag (the call is then never emitted, as its activity would be
    excluded), an erased person's is dropped."""
    if any(_is_excluded(p.email, p.phone, policy) for p in leg.participants):
        return leg.model_copy(update={"participants": (), "excluded": True}), "excluded participant"
    if erased and any(erased.names(p.email, p.phone) for p in leg.participants):
        kept = tuple(p for p in leg.participants if not erased.names(p.email, p.phone))
        return leg.model_copy(update={"participants": kept}), "erased participant"
    return leg, None


def _reduce_ringcentral(
    event: RingCentralEvent, policy: PrivacyPolicy, erased: ErasedIdentities
) -> tuple[RingCentralEvent, str | None]:
    """The notification without the person it must not keep, and why (None: kept as it is), as
    a Twilio leg: an excluded number makes the session excluded (never emitted), an erased one
    is dropped."""
    people = [p for party in event.parties for p in (party.line, party.counterpart) if p is not None]
    if any(_is_excluded(p.email, p.phone, policy) for p in people):
        stripped = tuple(p.model_copy(update={"line": None, "counterpart": None}) for p in event.parties)
        return event.model_copy(update={"parties": stripped, "excluded": True}), "excluded participant"
    if erased and any(erased.names(p.email, p.phone) for p in people):
        return event.model_copy(
            update={"parties": tuple(_without_erased(p, erased) for p in event.parties)}
        ), "erased participant"
    return event, None


def _without_erased(party: RingCentralParty, erased: ErasedIdentities) -> RingCentralParty:
    kept = {
        key: None
        for key, person in (("line", party.line), ("counterpart", party.counterpart))
        if person is not None and erased.names(person.email, person.phone)
    }
    return party.model_copy(update=kept) if kept else party


def _activity_withheld(
    activities: Iterable[ActivityIn], policy: PrivacyPolicy, erased: ErasedIdentities
) -> str | None:
    for activity in activities:
        if _exclusion(activity, policy) is not None:
            return "excluded activity"
        if erased and any(erased.names(p.email, p.phone) for p in activity.participants):
            return "erased participant"
    return None


def _mailbox_withheld(result: AdapterResult, policy: PrivacyPolicy, erased: ErasedIdentities) -> str | None:
    """A calendar page names the mailbox it was read from (``read_in``, and each deletion's
    ``seen_in``): an excluded or erased person's is not kept raw, whatever the page holds (her
    calendar's events would have been withheld too). Before 2026-12 only a page holding deletions
    was checked: a page of her events with none was captured."""
    mailboxes = [d.seen_in for d in result.deletions if d.seen_in is not None]
    if result.read_in is not None:
        mailboxes.append(result.read_in)
    for mailbox in mailboxes:
        if mailbox in policy.excluded_addresses:
            return "excluded mailbox"
        if erased and erased.names(mailbox, None):
            return "erased mailbox"
    return None


def _entity_withheld(entities: Iterable[CrmEntity], erased: ErasedIdentities) -> str | None:
    for entity in entities:
        if isinstance(entity, ContactV1) and names_erased_person(entity.emails, entity.phones, erased):
            return "erased contact"
    return None


def _strip_json(node: object, drop: frozenset[str], secret: str | None, depth: int = 1) -> object:
    if depth > MAX_CAPTURE_DEPTH and isinstance(node, dict | list):
        raise WebhookRejected(400, "body", f"nested more than {MAX_CAPTURE_DEPTH} levels deep")
    if isinstance(node, dict):
        kept: dict[str, object] = {}
        for key, value in node.items():
            if key == secret:
                kept[key] = "***"
            elif key in drop and not (key == "name" and _PERSON_FIELDS & node.keys() - {"name"}):
                continue
            else:
                kept[key] = _strip_json(value, drop, secret, depth + 1)
        return kept
    if isinstance(node, list):
        return [
            _strip_json(item, drop, secret, depth + 1)
            for item in node
            if not (
                isinstance(item, dict)
                and isinstance(item.get("name"), str)
                and item["name"].lower() in _CONTENT_HEADERS
                and "value" in item
                and drop
            )
        ]
    return node


def _strip_xml(body: bytes, drop: frozenset[str]) -> bytes:
    """``body`` without each dropped element: from an opening tag to the first closing tag after
    it (any namespace prefix), in one pass over the tags per name. A regex matching the element
    whole scanned to the end of the body again from each opening tag left unclosed (in a comment,
    say): quadratic, minutes of the event loop for a 2 MiB delivery."""
    for tag in drop:
        name = re.escape(tag.encode())
        tags = re.compile(rb"<(?:(/)(?:\w+:)?" + name + rb"|(?:\w+:)?" + name + rb"(?:\s[^>]*)?)>")
        kept: list[bytes] = []
        position, opened = 0, -1
        for found in tags.finditer(body):
            if found.group(1) is None:
                if opened < 0:
                    opened = found.start()
            elif opened >= 0:
                kept.append(body[position:opened])
                position, opened = found.end(), -1
        if kept:
            kept.append(body[position:])
            body = b"".join(kept)
    return body


def capture_body(source: str, body: bytes, keep_content: bool) -> bytes:
    """The raw body without content fields (unless kept) and with the source's secret field masked.

    A JSON body nested more than ``MAX_CAPTURE_DEPTH`` levels deep is a 400 naming ``body``
    (``WebhookRejected``): it cannot be written back (orjson writes 255 levels at most), and no
    vendor's payload comes near it; before, it was a 500 the vendor retried for ever."""
    drop = frozenset() if keep_content else CONTENT_FIELDS.get(source, frozenset())
    secret = SECRET_BODY_FIELDS.get(source)
    if not drop and secret is None:
        return body
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # Salesforce's SOAP Outbound Messages are XML; form bodies (Twilio) hold no content.
        return _strip_xml(body, drop) if drop and body.lstrip().startswith(b"<") else body
    return orjson.dumps(_strip_json(document, drop, secret))


def keep_of_delivery(
    source: str, body: bytes, result: AdapterResult, policy: PrivacyPolicy, erased: ErasedIdentities
) -> KeptDelivery:
    """What of this verified, parsed delivery may be written: raw capture, Zoom, Twilio or
    RingCentral state, nothing."""
    zoom: list[ZoomEvent] = []
    withheld = (
        _activity_withheld(result.activities, policy, erased)
        or _entity_withheld(result.entities, erased)
        or _mailbox_withheld(result, policy, erased)
    )
    for event in result.zoom_events:
        reduced, reason = _reduce_zoom(event, policy, erased)
        zoom.append(reduced)
        withheld = withheld or reason
    legs: list[TwilioLeg] = []
    for leg in result.twilio_legs:
        reduced_leg, reason = _reduce_twilio(leg, policy, erased)
        legs.append(reduced_leg)
        withheld = withheld or reason
    events: list[RingCentralEvent] = []
    for notification in result.ringcentral_events:
        reduced_event, reason = _reduce_ringcentral(notification, policy, erased)
        events.append(reduced_event)
        withheld = withheld or reason
    raw = None if withheld else capture_body(source, body, policy.keep_subjects)
    return KeptDelivery(raw, tuple(zoom), withheld, tuple(legs), tuple(events))
