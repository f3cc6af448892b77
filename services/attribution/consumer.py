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
#: Topics whose partitions may be handled at once (``Lanes``): an activity's messages are keyed by
#: its id, and what two activities' decisions share is locked in PostgreSQL (a rep's calls and
#: emails, a thread), as between two instances. CRM changes and overrides are handled alone.
IN_LANES = frozenset({ACTIVITY_INGESTED})
