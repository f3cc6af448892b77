"""What attribution consumes and produces, declared as data."""

from __future__ import annotations

from libs.common.topics import (
    ACTIVITY_ATTRIBUTED,
    ACTIVITY_INGESTED,
    ATTRIBUTION_OVERRIDDEN,
    CRM_ENTITY_CHANGED,
)

CONSUMES = (CRM_ENTITY_CHANGED, ACTIVITY_INGESTED, ATTRIBUTION_OVERRIDDEN)
PRODUCES = (ACTIVITY_ATTRIBUTED,)
