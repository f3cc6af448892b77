"""``activity-deleted``: what ingest publishes for an object its source deleted, and how a
consumer of ``activity-ingested`` reads it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from libs.common.contracts.activities import ActivityDeletedV1, activity_id_for
from libs.common.contracts.envelope import InvalidMessage
from libs.common.topics import ACTIVITY_DELETED, ACTIVITY_INGESTED
from services.ingest.domain.webhook_types import SourceDeletion
from services.ingest.handlers import deletion_messages

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_deletion_goes_on_the_activity_topic_under_the_activity_s_key() -> None:
    deleted = SourceDeletion("google-calendar", "0ab1cd2ef3gh4ij5kl6mn7op8q")
    # A delivery naming the same deletion twice publishes it once.
    (message,) = deletion_messages([deleted, deleted], "acme", "google-calendar/1", "t.", NOW)
    activity_id = activity_id_for("acme", "google-calendar", "0ab1cd2ef3gh4ij5kl6mn7op8q")
    assert message.topic == "t.activity-ingested"
    assert message.key == str(activity_id).encode()
    assert (message.envelope.type, message.envelope.id, message.envelope.tenant) == (
        "io.spm.activity.deleted.v1",
        f"{activity_id}:deleted",
        "acme",
    )
    assert ACTIVITY_INGESTED.decode_as(ACTIVITY_DELETED.event_type, message.value) == ActivityDeletedV1(
        tenant_id="acme",
        activity_id=activity_id,
        source="google-calendar",
        external_id="0ab1cd2ef3gh4ij5kl6mn7op8q",
        deleted_at=NOW,
        adapter_version="google-calendar/1",
    )


def test_readers_stay_strict_about_deletions() -> None:
    body = (
        b'{"tenant_id":"acme","activity_id":"' + str(uuid.uuid4()).encode() + b'","source":"x",'
        b'"external_id":"1","deleted_at":"2026-12-03T12:00:00Z","why":"moved"}'
    )
    with pytest.raises(InvalidMessage) as extra:
        ACTIVITY_INGESTED.decode_as(ACTIVITY_DELETED.event_type, body)
    assert str(extra.value) == "body is not a valid ActivityDeletedV1: why: Extra inputs are not permitted"
    with pytest.raises(InvalidMessage) as unknown:
        ACTIVITY_INGESTED.decode_as("io.spm.activity.erased.v1", body)
    assert str(unknown.value) == "unexpected event type 'io.spm.activity.erased.v1' on activity-ingested"


def test_a_deletion_carries_its_revision_and_calendar_and_its_id_tells_two_apart() -> None:
    """A deletion after a restore is another fact than the first: its revision is in its id."""
    deleted = SourceDeletion("google-calendar", "evt-one", 1795608000250, "ana.seller@acme.example")
    (message,) = deletion_messages([deleted], "acme", "google-calendar/1", "t.", NOW)
    activity_id = activity_id_for("acme", "google-calendar", "evt-one")
    assert message.envelope.id == f"{activity_id}:deleted:1795608000250"
    assert ACTIVITY_INGESTED.decode_as(ACTIVITY_DELETED.event_type, message.value) == ActivityDeletedV1(
        tenant_id="acme",
        activity_id=activity_id,
        source="google-calendar",
        external_id="evt-one",
        deleted_at=NOW,
        adapter_version="google-calendar/1",
        revision=1795608000250,
        seen_in="ana.seller@acme.example",
    )


def test_a_deletion_that_knows_neither_omits_both_fields() -> None:
    """Consumers built before ``revision`` and ``seen_in`` still read such a deletion."""
    (message,) = deletion_messages([SourceDeletion("hubspot", "1")], "acme", "hubspot/1", "t.", NOW)
    assert b"revision" not in message.value
    assert b"seen_in" not in message.value


def test_a_deletion_its_source_does_not_date_follows_the_revision_published_in_the_sources_order() -> None:
    """Received at 10:05 (in ms): published right after the newest revision published of it, in
    the source's order whatever our clock says (11-22 + 1 ms; an edit at 10:05:30 by a source's
    clock 40 s ahead of ours + 1 ms), at 10:05 only when nothing of it was published. A deletion
    its source dated keeps its own revision, older or not: attribution then tells an undelete
    read before it."""
    graph = activity_id_for("acme", "microsoft-graph", "AAMkEv1=")
    google = activity_id_for("acme", "google-calendar", "evt-one")
    hubspot = activity_id_for("acme", "hubspot", "40120001")
    received = 1795514700000
    deletions = [
        SourceDeletion("microsoft-graph", "AAMkEv1=", received, on_receipt=True),
        SourceDeletion("google-calendar", "evt-one", received, on_receipt=True),
        SourceDeletion("hubspot", "40120001", 1795330000000),
        SourceDeletion("google-calendar", "evt-two", received, on_receipt=True),
    ]
    published = {graph: 1795330000000, google: 1795514730000, hubspot: 1795514730000}
    messages = deletion_messages(deletions, "acme", "x/1", "t.", NOW, None, published)
    revisions = [ACTIVITY_INGESTED.decode_as(ACTIVITY_DELETED.event_type, m.value).revision for m in messages]
    assert revisions == [1795330000001, 1795514730001, 1795330000000, received]
    assert messages[1].envelope.id == f"{google}:deleted:1795514730001"
