"""Vendor webhooks: the request/result types and the registry of adapters by source name.

The route does, for ``POST /v1/webhooks/{source}/{tenant}``::

    adapter = ADAPTERS[source]
    adapter.verify(request, secrets, config)          # 401 before anything is parsed or stored
    result = adapter.parse(request, config, secrets)  # 400/413/422 name the field at fault
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Mapping
from types import MappingProxyType

from services.ingest.domain.vendors.aircall import AircallAdapter
from services.ingest.domain.vendors.calendly import CalendlyAdapter
from services.ingest.domain.vendors.gmail import GmailAdapter
from services.ingest.domain.vendors.google_calendar import GoogleCalendarAdapter
from services.ingest.domain.vendors.hubspot import HubSpotAdapter
from services.ingest.domain.vendors.microsoft_graph import MicrosoftGraphAdapter
from services.ingest.domain.vendors.ringcentral import RingCentralAdapter
from services.ingest.domain.vendors.salesforce import SalesforceAdapter
from services.ingest.domain.vendors.twilio import TwilioAdapter
from services.ingest.domain.vendors.zoom import ZoomAdapter, ZoomEvent, ZoomMeetingState, fold_zoom_meeting
from services.ingest.domain.webhook_types import (
    AdapterResult,
    HandshakeResponse,
    TenantCheckRejected,
    TenantWebhookConfig,
    VendorAdapter,
    WebhookRejected,
    WebhookRequest,
)

_ALL: tuple[VendorAdapter, ...] = (
    TwilioAdapter(),
    AircallAdapter(),
    ZoomAdapter(),
    CalendlyAdapter(),
    HubSpotAdapter(),
    SalesforceAdapter(),
    GoogleCalendarAdapter(),
    MicrosoftGraphAdapter(),
    GmailAdapter(),
    RingCentralAdapter(),
)

#: Adapters by the ``{source}`` path segment of the webhook URL.
ADAPTERS: Mapping[str, VendorAdapter] = MappingProxyType({adapter.source: adapter for adapter in _ALL})
#: Sources that authenticate by a secret at the end of the URL (``/{source}/{tenant}/{token}``).
URL_TOKEN_SOURCES = frozenset({"salesforce"})


@functools.lru_cache(maxsize=1_024)
def decoy_secret(pepper: str, tenant_id: str, source: str) -> str:
    """A secret nobody knows, stable per (tenant, source), verified against when there is no real one.

    An unknown tenant (or one without a secret for the source) is then refused exactly as a
    known tenant whose signature does not match: the endpoint does not tell which tenants exist.
    Stable so that repeated requests (to any replica) cannot tell it from a real secret either.
    Every request asks for one, known tenant or not, so remembering it (a pure function) tells
    nobody anything either: the first request naming a (tenant, source) computes it whether the
    tenant exists or not. An HMAC was about 2 % of a Twilio callback's instructions.
    """
    message = b"spm-webhook-decoy\x00" + tenant_id.encode() + b"\x00" + source.encode()
    return hmac.digest(pepper.encode(), message, "sha256").hex()


def unknown_tenant_config(tenant_id: str) -> TenantWebhookConfig:
    """The configuration an unknown tenant is verified with (nothing configured)."""
    return TenantWebhookConfig(tenant_id=tenant_id, internal_domains=frozenset())


__all__ = [
    "ADAPTERS",
    "URL_TOKEN_SOURCES",
    "AdapterResult",
    "HandshakeResponse",
    "TenantCheckRejected",
    "TenantWebhookConfig",
    "VendorAdapter",
    "WebhookRejected",
    "WebhookRequest",
    "ZoomEvent",
    "ZoomMeetingState",
    "decoy_secret",
    "fold_zoom_meeting",
    "unknown_tenant_config",
]
