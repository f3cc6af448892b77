"""The vocabulary every vendor adapter speaks: the request it gets and the result it returns.

Kept apart from ``webhooks.py`` (which adds the adapter registry) so that vendor modules can
import these types without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from libs.common.contracts.activities import ActivityIn
from libs.common.contracts.crm import CrmEntity
from services.ingest.domain.ignored import Ignored

if TYPE_CHECKING:
    from services.ingest.domain.vendors.ringcentral import RingCentralEvent
    from services.ingest.domain.vendors.twilio import TwilioLeg
    from services.ingest.domain.vendors.zoom import ZoomEvent


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One vendor delivery as the route received it; nothing here is trusted before ``verify``."""

    method: str
    #: The full URL as the vendor called it, query string included (Twilio and HubSpot sign it).
    url: str
    #: Lower-cased header names; a repeated header joined by ", ".
    headers: Mapping[str, str]
    body: bytes
    #: Aware UTC, injected so that timestamp windows and "past or future" are deterministic.
    received_at: datetime
    #: The secret a vendor that cannot sign puts in the endpoint URL (Salesforce:
    #: ``/v1/webhooks/salesforce/{tenant}/{token}``); None when the URL has none.
    url_token: str | None = None


@dataclass(frozen=True, slots=True)
class TenantWebhookConfig:
    """What a tenant told us about itself that parsing needs."""

    tenant_id: str
    #: The tenant's own email domains; direction is decided against them.
    internal_domains: frozenset[str]
    #: Region for numbers without a + prefix.
    default_phone_region: str = "US"
    salesforce_organization_id: str | None = None
    signature_window_seconds: int = 300
    #: The tenant's ``rep_aliases`` (another source's id of a rep -> the rep): a softphone's
    #: client identity or SIP user (Twilio ``client:ana``) names the rep it maps to.
    rep_aliases: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: The tenant's ``menu_extensions``: the phone system's extensions that answer for nobody
    #: (IVR menus, call queues); a RingCentral party on one of them never took the call.
    menu_extensions: frozenset[str] = frozenset()
    #: The tenant's ``twilio_sip_domains`` (``acme.sip.twilio.com``); empty: every Twilio SIP
    #: Domain's softphone is taken for the tenant's own.
    twilio_sip_domains: frozenset[str] = frozenset()
    #: The countries (ISO alpha-2) held for the accounts of a delivery's contacts that it does
    #: not carry: a contact stating no country has its phones read in its account's. Filled by
    #: ingest, which parses such a delivery again with them (``pipeline.receive_webhook``).
    account_countries: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: The address (email, phone) held for the CRM people a delivery's engagements name but do
    #: not carry (``AdapterResult.people_to_look_up``: ``owners/7701``, ``contacts/903``), as
    #: attribution holds them: a HubSpot meeting posted without its owner and contacts still has
    #: its people. Filled by ingest, which parses such a delivery again with them.
    crm_people: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """A body the route returns as is (Zoom url_validation, Graph validationToken, Salesforce Ack),
    with ``headers`` (RingCentral's validation echoes its ``Validation-Token`` header)."""

    status_code: int
    media_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceDeletion:
    """The source deleted the object it sent as ``external_id`` (a calendar's deleted event):
    published as ``activity-deleted``, the activity it was published as is retracted."""

    source: str
    external_id: str
    #: The deletion's place among the object's revisions, when the source tells (its
    #: modification time in ms, as the object's revisions are numbered).
    revision: int | None = None
    #: The mailbox whose calendar the deletion was seen in (posted by a calendar connector).
    seen_in: str | None = None
    #: The source dates none (``normalize.deletion_on_receipt``): ``revision`` is when its page
    #: was read, and ingest publishes it right after the newest revision it published of the
    #: object, in the source's own order (``handlers.deletion_revision``).
    on_receipt: bool = False
    #: Not a deletion: the object's newer revision is no meeting, for this reason (a
    #: ``TimeBlock``'s): its meeting is retracted as ``not_a_meeting``, not as deleted.
    not_a_meeting: str | None = None


@dataclass(frozen=True, slots=True)
class TimeBlock:
    """A calendar event read, at ``revision``, as no meeting (``reason``: a hold only colleagues
    attend, time away, time nobody but its organizer attends). Listed as ignored; when it is a
    newer state of a meeting ingest published (a hold's customer declined or was removed), that
    meeting is retracted, as no meeting (``not_a_meeting``, with ``reason``) through the path of
    a deletion (``pipeline.time_blocks_retracting``)."""

    source: str
    external_id: str
    revision: int
    reason: str


@dataclass(frozen=True, slots=True)
class AdapterResult:
    """Everything one delivery turned into; the route publishes activities and entities."""

    activities: tuple[ActivityIn, ...] = ()
    entities: tuple[CrmEntity, ...] = ()
    handshake: HandshakeResponse | None = None
    #: Event types accepted but deliberately not turned into activities, each with its reason.
    ignored: tuple[Ignored, ...] = ()
    #: A body the vendor expects on success (the Salesforce SOAP Ack).
    ack: HandshakeResponse | None = None
    #: Zoom events to feed, in order, into ``fold_zoom_meeting`` with the stored meeting state.
    zoom_events: tuple[ZoomEvent, ...] = ()
    #: Twilio callbacks of a softphone's call and of its ``<Dial>`` legs, to feed, in order, into
    #: ``fold_twilio_call`` with the stored call state.
    twilio_legs: tuple[TwilioLeg, ...] = ()
    #: RingCentral telephony session notifications, to feed, in order, into
    #: ``fold_ringcentral_session`` with the stored session.
    ringcentral_events: tuple[RingCentralEvent, ...] = ()
    #: Objects the source deleted: each becomes an ``activity-deleted`` event.
    deletions: tuple[SourceDeletion, ...] = ()
    #: Calendar events read as no meeting (each also listed in ``ignored``): a later state of a
    #: meeting published retracts it.
    time_blocks: tuple[TimeBlock, ...] = ()
    #: When a calendar connector read the page (``normalize.observed_at``): a revision of an
    #: object read before a deletion of it that its source did not date is an older state of it
    #: (``pipeline.read_before_deletions``).
    read_at: datetime | None = None
    #: The mailbox whose calendar the page was read from, when the connector names it: a
    #: deletion read in another attendee's calendar (her removal of the meeting) is no newer
    #: state of this one's (``pipeline.read_before_deletions``).
    read_in: str | None = None
    #: CRM people (``owners/{id}``, ``contacts/{id}``) the delivery's engagements name without
    #: carrying them, nor found in ``TenantWebhookConfig.crm_people``: ingest looks them up.
    people_to_look_up: tuple[str, ...] = ()


class WebhookRejected(Exception):
    """A delivery the vendor (or an attacker) must be told is wrong; the route answers ``status_code``.

    400 malformed, 401 signature/timestamp/token/org id, 413 too large, 422 semantically invalid.
    ``field`` names the header or body field at fault; ``reason`` never contains a secret.
    """

    def __init__(self, status_code: int, field: str, reason: str) -> None:
        super().__init__(f"{status_code} {field}: {reason}")
        self.status_code = status_code
        self.field = field
        self.reason = reason


class TenantCheckRejected(WebhookRejected):
    """Refused by a check against the tenant's configuration, made only once its secret matched.

    Such a check needs the tenant's settings (Salesforce's OrganizationId): raised after the
    secret check, it tells the route the sender is authentic, so a tenant whose settings cannot
    be read may be told so instead.
    """


class AheadOfReceipt(WebhookRejected):
    """A time in a payload more than the allowed skew ahead of its receipt (``normalize.not_ahead``).

    A 422 where the delivery is one object (Zoom, RingCentral, Twilio, Aircall, Calendly); in a
    batch (HubSpot, Salesforce Outbound Messages, Graph, Google and Gmail pages) only its item is
    left out, listed in ``ignored`` with this reason: one bad clock never refuses the others,
    and a retry of the same batch would fail the same way forever.
    """


class VendorAdapter(Protocol):
    """Verifies and parses one vendor's deliveries; pure and synchronous."""

    @property
    def source(self) -> str: ...

    @property
    def version(self) -> str: ...

    def verify(self, request: WebhookRequest, secrets: Sequence[str], config: TenantWebhookConfig) -> None:
        """Raise ``WebhookRejected(401, ...)`` unless one of ``secrets`` authenticates the request."""
        ...

    def parse(
        self, request: WebhookRequest, config: TenantWebhookConfig, secrets: Sequence[str] = ()
    ) -> AdapterResult:
        """Turn a verified delivery into canonical records; only ever raises ``WebhookRejected``.

        ``secrets`` is needed by handshakes that answer with a keyed digest (Zoom's encryptedToken).
        """
        ...
