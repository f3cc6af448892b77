"""The export's reach and erasure's cannot drift: every table erasure deletes or rewrites for a
person is exported or left out with a reason, and no reason names a table erasure no longer has."""

from __future__ import annotations

import inspect
import re

from services.attribution.adapters import erasure
from services.gateway.adapters import privacy


def test_every_table_erasure_touches_is_exported_or_left_out_with_a_reason() -> None:
    erased = {
        *erasure._ACTIVITY_TABLES,
        *erasure._CONTACT_TABLES,
        *(table for table, *_ in erasure._QUEUED_VERSIONS),
        # the tables its f-string loops name
        *erasure._DEAL_SUMMARY_TABLES,
        # and every table its SQL names literally
        *re.findall(r"(?:DELETE FROM|UPDATE|INSERT INTO) ([a-z_]+)", inspect.getsource(erasure)),
    }
    assert {
        "activities",
        "ref_contacts",
        "webhook_state",
        "meeting_removals",
        "ingest_undated_deletions",
        "metric_deal_engagement",
        "metric_deal_engagement_changes",
    } <= erased
    assert erased - set(privacy.EXPORTED) - set(privacy.NOT_EXPORTED) == set()
    assert set(privacy.NOT_EXPORTED) <= erased
    assert set(privacy.EXPORTED).isdisjoint(privacy.NOT_EXPORTED)
    assert all(reason.strip() for reason in privacy.NOT_EXPORTED.values())
