"""Vendor webhooks: the request/result types and the registry of adapters by source name.

The route does, for ``POST /v1/webhooks/{source}/{tenant}``::

    adapter = ADAPTERS[source]
    adapter.verify(request, secrets, config)          # 401 before anything is parsed or stored
    result = adapter.parse(request, config, secrets)  # 400/413/422 name the field at fault
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from services.ingest.domain.vendors.aircall import AircallAdapter
from services.ingest.domain.vendors.calendly import CalendlyAdapter
from services.ingest.domain.vendors.gmail import GmailAdapter
from services.ingest.domain.vendors.google_calendar import GoogleCalendarAdapter
from services.ingest.domain.vendors.hubspot import HubSpotAdapter
from services.ingest.domain.vendors.microsoft_graph import MicrosoftGraphAdapter
from services.ingest.domain.vendors.salesforce import SalesforceAdapter
from services.ingest.domain.vendors.twilio import TwilioAdapter
from services.ingest.domain.vendors.zoom import ZoomAdapter, ZoomEvent, ZoomMeetingState, fold_zoom_meeting
from services.ingest.domain.webhook_types import (
    AdapterResult,
    HandshakeResponse,
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
)

#: Adapters by the ``{source}`` path segment of the webhook URL.
ADAPTERS: Mapping[str, VendorAdapter] = MappingProxyType({adapter.source: adapter for adapter in _ALL})

__all__ = [
    "ADAPTERS",
    "AdapterResult",
    "HandshakeResponse",
    "TenantWebhookConfig",
    "VendorAdapter",
    "WebhookRejected",
    "WebhookRequest",
    "ZoomEvent",
    "ZoomMeetingState",
    "fold_zoom_meeting",
]
