"""One meeting, several sources (``domain.source_deals``): the deal a CRM user filed the meeting on
survives a calendar's newer revision, whichever order the revisions come in, and goes when a newer
CRM revision drops the association."""

from __future__ import annotations

from itertools import permutations

from libs.common.contracts.activities import ActivityKind, CrmReferences, Direction, ParticipantRole
from libs.common.contracts.activities_fast import IngestedEvent
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import TenantAttributionPolicy
from services.attribution.domain.source_deals import (
    SourceDeals,
    decode_source_deals,
    encode_source_deals,
    record_sighting,
    with_source_deals,
)

from .builders import activity, snapshot

#: Ana meets Amy (deal-acme-new's champion, Ana's deal): by its people the meeting is deal-acme-new.
PEOPLE = (("ana@seller.example", ParticipantRole.ORGANIZER), ("amy@acme.com", ParticipantRole.ATTENDEE))


def _sighting(source: str, revision: int, deal_id: str | None = None) -> IngestedEvent:
    meeting = activity(ActivityKind.MEETING, Direction.OUTBOUND, PEOPLE, crm=CrmReferences(deal_id=deal_id))
    return meeting.model_copy(update={"source": source, "revision": revision})


def _decided(sightings: tuple[IngestedEvent, ...]) -> tuple[str | None, str]:
    """The deal and rule path of the meeting once these sightings arrived in this order: the
    newest revision is the activity, each source's latest word on the deal is held."""
    held: SourceDeals = {}
    newest: IngestedEvent | None = None
    for sighting in sightings:
        recorded = record_sighting(held, sighting.source, sighting.revision, sighting.crm.deal_id)
        held = held if recorded is None else recorded
        if newest is None or newest.revision < sighting.revision:
            newest = sighting
    assert newest is not None
    decision = attribute_activity(with_source_deals(newest, held), snapshot(), TenantAttributionPolicy())
    return decision.deal_id, str(decision.explanation["rule_path"])


def test_a_crm_link_survives_a_newer_calendar_revision_in_either_order() -> None:
    filed = _sighting("hubspot", 1_000, "deal-acme-exp")
    edited = _sighting("google-calendar", 2_000)
    assert _decided((edited,))[0] == "deal-acme-new"
    for order in permutations((filed, edited)):
        assert _decided(order) == ("deal-acme-exp", "explicit_deal")


def test_a_newer_crm_revision_without_the_association_removes_the_link() -> None:
    filed = _sighting("hubspot", 1_000, "deal-acme-exp")
    edited = _sighting("google-calendar", 2_000)
    unfiled = _sighting("hubspot", 1_500)
    for order in permutations((filed, edited, unfiled)):
        assert _decided(order)[0] == "deal-acme-new"
    # Filed again on another deal later: the latest CRM word is the link.
    refiled = _sighting("hubspot", 3_000, "deal-acme-old")
    assert _decided((filed, edited, refiled))[0] == "deal-acme-old"


def test_the_newest_revision_own_deal_wins_and_older_revisions_change_nothing() -> None:
    held = record_sighting({}, "hubspot", 2_000, "deal-acme-exp")
    assert held == {"hubspot": (2_000, "deal-acme-exp")}
    assert record_sighting(held, "hubspot", 1_000, None) is None  # an older copy, read late
    assert record_sighting(held, "hubspot", 2_000, None) is None  # a redelivery
    # A calendar names no deal: recorded, and no link for anyone.
    assert record_sighting(held, "google-calendar", 1_000, None) == {**held, "google-calendar": (1_000, None)}
    both = {"hubspot": (2_000, "deal-acme-exp"), "salesforce": (3_000, "deal-globex")}
    own = _sighting("hubspot", 4_000, "deal-sole")
    assert with_source_deals(own, both).crm.deal_id == "deal-sole"
    calendar = _sighting("google-calendar", 5_000)
    assert with_source_deals(calendar, both).crm.deal_id == "deal-globex"
    assert with_source_deals(calendar, {}) is calendar
    assert decode_source_deals(encode_source_deals(both)) == both
    assert encode_source_deals(both) == {
        "hubspot": [2_000, "deal-acme-exp"],
        "salesforce": [3_000, "deal-globex"],
    }
