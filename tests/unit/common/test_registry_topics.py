"""The topics ``spm topics create`` makes: partitions and retention as docs/operations.md lists them."""

from __future__ import annotations

from libs.common.kafka.clients import registry_topics
from libs.common.settings import KafkaSettings

DAY_MS = 86_400_000


def test_each_dlq_has_one_partition_and_is_kept_30_days_whatever_its_topic() -> None:
    topics = {
        t.name: (t.num_partitions, t.replication_factor, t.topic_configs["retention.ms"])
        for t in registry_topics(KafkaSettings(topic_prefix="p.", replication_factor=3), partitions=6)
    }
    assert topics == {
        "p.webhook-received": (6, 3, str(30 * DAY_MS)),
        "p.activity-ingested": (6, 3, str(7 * DAY_MS)),
        "p.activity-ingested-dlq": (1, 3, str(30 * DAY_MS)),
        "p.crm-entity-changed": (6, 3, str(30 * DAY_MS)),
        "p.crm-entity-changed-dlq": (1, 3, str(30 * DAY_MS)),
        "p.attribution-overridden": (6, 3, str(7 * DAY_MS)),
        "p.attribution-overridden-dlq": (1, 3, str(30 * DAY_MS)),
        "p.activity-attributed": (6, 3, str(7 * DAY_MS)),
        "p.activity-attributed-dlq": (1, 3, str(30 * DAY_MS)),
        "p.settings-changed": (6, 3, str(7 * DAY_MS)),
        "p.insight-changed": (6, 3, str(7 * DAY_MS)),
    }
