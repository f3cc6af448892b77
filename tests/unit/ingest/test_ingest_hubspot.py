from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from libs.common.contracts.activities import (
    ActivityKind,
    CrmReferences,
    Direction,
    Outcome,
    Participant,
    ParticipantRole,
)
from libs.common.contracts.crm import AccountV1, ContactV1, DealContactRole, DealV1, RepV1
from services.ingest.domain.webhook_types import SourceDeletion
from services.ingest.domain.webhooks import ADAPTERS, WebhookRejected

from .ingest_webhook_helpers import (
    CONFIG,
    NOW_SECONDS,
    dumps,
    fixture,
    fixture_json,
    hubspot_headers,
    make_request,
)

URL = "https://ingest.example.com/v1/webhooks/hubspot/acme"
SECRET = "hubspot-client-secret-current"
OLD_SECRET = "hubspot-client-secret-previous"
adapter = ADAPTERS["hubspot"]


def ms(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def test_calls_become_activities_with_crm_references() -> None:
    body = fixture("hubspot", "calls.json")
    request = make_request(body, hubspot_headers(URL, body, SECRET), url=URL)
    adapter.verify(request, [SECRET], CONFIG)

    result = adapter.parse(request, CONFIG)

    connected, voicemail = result.activities
    assert connected.source == "hubspot"
    assert connected.external_id == "40120001"
    assert connected.kind is ActivityKind.CALL
    assert connected.direction is Direction.OUTBOUND
    assert connected.outcome is Outcome.CONNECTED
    assert connected.duration_seconds == 312
    assert connected.occurred_at == datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
    assert connected.subject == "Renewal pricing"
    assert connected.revision == ms(2026, 11, 24, 13, 36, 12) + 345
    assert connected.crm == CrmReferences(
        deal_id="3301", account_id="5501", contact_ids=("901",), owner_rep_id="7701"
    )
    assert connected.participants == (
        Participant(email="ana.seller@acme.example", phone="+16505551234", role=ParticipantRole.CALLER),
        Participant(phone="+14155552671", role=ParticipantRole.CALLEE),
    )
    assert voicemail.outcome is Outcome.VOICEMAIL
    assert voicemail.crm == CrmReferences(owner_rep_id="7701")
    assert result.entities == (
        RepV1(
            id="7701",
            updated_at=datetime(2026, 6, 1, 8, 0, tzinfo=UTC),
            name="Ana Seller",
            emails=("ana.seller@acme.example",),
        ),
    )


def test_email_direction_comes_from_the_tenant_domains() -> None:
    result = adapter.parse(make_request(fixture("hubspot", "emails.json"), url=URL), CONFIG)
    (email,) = result.activities
    assert email.kind is ActivityKind.EMAIL
    assert email.direction is Direction.OUTBOUND
    assert email.outcome is Outcome.SENT
    assert email.subject == "Proposal for Globex"
    assert email.thread_id == "thread-77"
    assert email.crm == CrmReferences(deal_id="3301", contact_ids=("901", "902"), owner_rep_id="7701")
    assert [(p.email, p.role) for p in email.participants] == [
        ("ana.seller@acme.example", ParticipantRole.FROM),
        ("bo.buyer@globex.example", ParticipantRole.TO),
        ("cy.cfo@globex.example", ParticipantRole.TO),
        ("sam.se@acme.example", ParticipantRole.CC),
    ]


def test_meeting_participants_come_from_the_batch() -> None:
    result = adapter.parse(make_request(fixture("hubspot", "meetings.json"), url=URL), CONFIG)
    (meeting,) = result.activities
    assert meeting.kind is ActivityKind.MEETING
    assert meeting.outcome is Outcome.HELD
    assert meeting.direction is Direction.OUTBOUND
    assert meeting.duration_seconds == 3600
    assert meeting.participants == (
        Participant(email="ana.seller@acme.example", role=ParticipantRole.ORGANIZER),
        Participant(
            email="bo.buyer@globex.example",
            phone="+14155552671",
            name="Bo Buyer",
            role=ParticipantRole.ATTENDEE,
        ),
    )
    assert [e.entity_type for e in result.entities] == ["contact", "rep"]


def test_meeting_without_any_address_is_ignored_not_rejected() -> None:
    batch = fixture_json("hubspot", "meetings.json")[:1]
    result = adapter.parse(make_request(dumps(batch), url=URL), CONFIG)
    assert result.activities == ()
    assert result.ignored == (
        "[0] meetings/40140001: no owner or contact with an address in this batch or held",
    )
    # Ingest is told whom to look up: the owner and the contact the meeting names.
    assert result.people_to_look_up == ("owners/7701", "contacts/901")


def test_a_meeting_posted_apart_from_its_people_has_them_as_held() -> None:
    """A sync job posts a meeting without its owner and contacts (synced before): parsed again
    with the addresses held for them, the meeting is the owner's with the contact, not lost."""
    batch = fixture_json("hubspot", "meetings.json")[:1]
    held = {
        "owners/7701": ("ana.seller@acme.example", None),
        "contacts/901": ("bo.buyer@globex.example", "+14155552671"),
    }
    result = adapter.parse(make_request(dumps(batch), url=URL), replace(CONFIG, crm_people=held))
    (meeting,) = result.activities
    assert (meeting.outcome, meeting.direction, result.people_to_look_up) == (
        Outcome.HELD,
        Direction.OUTBOUND,
        (),
    )
    assert meeting.participants == (
        Participant(email="ana.seller@acme.example", role=ParticipantRole.ORGANIZER),
        Participant(email="bo.buyer@globex.example", phone="+14155552671", role=ParticipantRole.ATTENDEE),
    )


def test_a_call_logged_by_hand_without_its_people_is_looked_up_not_a_refused_batch() -> None:
    """ "Log activity -> Call" names no number: posted without its owner and contacts, the call
    has nobody to list until ingest looks them up; before, the whole batch was a 422."""
    call = {
        "objectType": "calls",
        "id": "40120009",
        "properties": {
            "hs_timestamp": "2026-11-24T13:30:00.000Z",
            "hs_call_status": "COMPLETED",
            "hubspot_owner_id": "7701",
            "hs_lastmodifieddate": "2026-11-24T13:36:12.345Z",
        },
        "associations": {"contacts": {"results": [{"id": "901", "type": "call_to_contact"}]}},
        "createdAt": "2026-11-24T13:36:00.000Z",
        "updatedAt": "2026-11-24T13:36:12.345Z",
        "archived": False,
    }
    alone = adapter.parse(make_request(dumps([call]), url=URL), CONFIG)
    assert (alone.activities, alone.people_to_look_up) == ((), ("owners/7701", "contacts/901"))
    assert alone.ignored == ("[0] calls/40120009: no owner or contact with an address in this batch or held",)
    held = replace(CONFIG, crm_people={"contacts/901": (None, "+14155552671")})
    (logged,) = adapter.parse(make_request(dumps([call]), url=URL), held).activities
    assert logged.participants == (Participant(phone="+14155552671", role=ParticipantRole.CALLEE),)


def test_people_carried_by_the_batch_or_of_archived_engagements_are_not_looked_up() -> None:
    result = adapter.parse(make_request(fixture("hubspot", "meetings.json"), url=URL), CONFIG)
    archived = {**fixture_json("hubspot", "meetings.json")[0], "archived": True}
    gone = adapter.parse(make_request(dumps([archived]), url=URL), CONFIG)
    assert (result.people_to_look_up, gone.people_to_look_up) == ((), ())


def test_crm_objects_become_entities() -> None:
    result = adapter.parse(make_request(fixture("hubspot", "crm-objects.json"), url=URL), CONFIG)
    company, deal, contact, owner = result.entities
    assert company == AccountV1(
        id="5501",
        updated_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        name="Globex",
        domains=("globex.example",),
    )
    assert deal == DealV1(
        id="3301",
        updated_at=datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC),
        name="Globex renewal 2027",
        account_id="5501",
        owner_rep_id="7701",
        stage="closedwon",
        amount=Decimal("48000.50"),
        is_closed=True,
        is_won=True,
        created_at=datetime(2026, 10, 5, 9, 0, tzinfo=UTC),
        closed_at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
        contacts=(DealContactRole(contact_id="901"),),
    )
    assert contact == ContactV1(
        id="901",
        updated_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
        name="Bo Buyer",
        emails=("bo.buyer@globex.example",),
        phones=("+14155552671", "+33612345678"),
        raw_phones=("(415) 555-2671", "+33 6 12 34 56 78"),
        account_id="5501",
    )
    assert owner.entity_type == "rep"
    assert result.activities == ()


def test_an_archived_owner_is_a_departed_seller_not_a_deleted_one() -> None:
    """HubSpot archives the owner of a deactivated user: inactive, her identities kept."""
    owner_item = fixture_json("hubspot", "crm-objects.json")[3]
    owner_item["archived"] = True
    (owner,) = adapter.parse(make_request(dumps([owner_item]), url=URL), CONFIG).entities
    assert owner == RepV1(
        id="7701",
        updated_at=datetime(2026, 6, 1, 8, 0, tzinfo=UTC),
        name="Ana Seller",
        emails=("ana.seller@acme.example",),
        active=False,
    )


def test_an_archived_engagement_is_a_deletion_of_its_activity() -> None:
    """An engagement read back archived (deleted in HubSpot, in its recycling bin) retracts the call."""
    batch = fixture_json("hubspot", "calls.json")
    batch[0]["archived"] = True
    result = adapter.parse(make_request(dumps(batch), url=URL), CONFIG)
    assert [a.external_id for a in result.activities] == ["40120002"]
    # At the engagement's revision (hs_lastmodifieddate 2026-11-24T13:36:12.345Z, in ms), the
    # number its live revisions carry: a restore is newer, a stale copy of the live one is not.
    assert result.deletions == (SourceDeletion("hubspot", "40120001", 1795527372345),)
    assert result.ignored == ()


def test_an_archived_engagement_is_deleted_at_its_archival_time_when_later() -> None:
    batch = fixture_json("hubspot", "calls.json")[:1]
    batch[0]["archived"] = True
    batch[0]["archivedAt"] = "2026-11-25T08:00:00Z"
    del batch[0]["properties"]
    (deletion,) = adapter.parse(make_request(dumps(batch), url=URL), CONFIG).deletions
    assert deletion == SourceDeletion("hubspot", "40120001", 1795593600000)


def test_native_change_notifications_are_ignored() -> None:
    result = adapter.parse(make_request(fixture("hubspot", "contact.propertyChange.json"), url=URL), CONFIG)
    assert result.ignored == ("[0] contact.propertyChange: a change notification without object data",)


def test_call_still_ringing_is_ignored() -> None:
    batch = fixture_json("hubspot", "calls.json")
    batch[0]["properties"]["hs_call_status"] = "RINGING"
    result = adapter.parse(make_request(dumps(batch), url=URL), CONFIG)
    assert [a.external_id for a in result.activities] == ["40120002"]
    assert result.ignored == ("[0] calls/40120001: hs_call_status=RINGING: the call is still under way",)


def test_bad_signature_is_401() -> None:
    body = fixture("hubspot", "calls.json")
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, hubspot_headers(URL, body, "other"), url=URL), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "x-hubspot-signature-v3")


def test_signature_covers_method_and_uri() -> None:
    body = fixture("hubspot", "calls.json")
    headers = hubspot_headers(URL, body, SECRET)
    with pytest.raises(WebhookRejected):
        adapter.verify(make_request(body, headers, url=URL + "?x=1"), [SECRET], CONFIG)
    with pytest.raises(WebhookRejected):
        adapter.verify(make_request(body, headers, url=URL, method="PUT"), [SECRET], CONFIG)


def test_percent_decoded_uri_is_accepted() -> None:
    url = URL + "?name=a%20b"
    body = fixture("hubspot", "calls.json")
    adapter.verify(
        make_request(body, hubspot_headers(URL + "?name=a b", body, SECRET), url=url), [SECRET], CONFIG
    )


def test_missing_signature_is_401() -> None:
    body = fixture("hubspot", "calls.json")
    headers = hubspot_headers(URL, body, SECRET)
    del headers["x-hubspot-signature-v3"]
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, headers, url=URL), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "x-hubspot-signature-v3")


def test_timestamp_older_than_five_minutes_is_401() -> None:
    body = fixture("hubspot", "calls.json")
    headers = hubspot_headers(URL, body, SECRET, timestamp_ms=(NOW_SECONDS - 301) * 1000)
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify(make_request(body, headers, url=URL), [SECRET], CONFIG)
    assert (caught.value.status_code, caught.value.field) == (401, "x-hubspot-request-timestamp")


def test_two_secrets_are_valid_during_rotation() -> None:
    body = fixture("hubspot", "calls.json")
    for secret in (SECRET, OLD_SECRET):
        adapter.verify(
            make_request(body, hubspot_headers(URL, body, secret), url=URL), [SECRET, OLD_SECRET], CONFIG
        )


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        ("object", 400, "body"),
        ("status", 422, "[0].properties.hs_call_status"),
        ("timestamp", 422, "[0].properties.hs_timestamp"),
        ("number", 422, "[0].properties.hs_call_to_number"),
        ("amount", 422, "[0].properties.amount"),
    ],
)
def test_malformed_bodies_name_the_field(mutate: str, status: int, field: str) -> None:
    calls = fixture_json("hubspot", "calls.json")
    body: object = calls
    if mutate == "object":
        body = {"not": "a batch"}
    elif mutate == "status":
        calls[0]["properties"]["hs_call_status"] = "EXPLODED"
    elif mutate == "timestamp":
        calls[0]["properties"]["hs_timestamp"] = "last week"
    elif mutate == "number":
        calls[0]["properties"]["hs_call_to_number"] = "12"
    else:
        body = fixture_json("hubspot", "crm-objects.json")[1:2]
        body[0]["properties"]["amount"] = "a lot"  # type: ignore[index]
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(body), url=URL), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (status, field)


@pytest.mark.parametrize(
    ("stage", "flags", "state"),
    [
        # The default properties: no hs_is_closed, the stage decides.
        ("closedwon", {}, (True, True, datetime(2026, 11, 24, 10, 0, tzinfo=UTC))),
        ("closedlost", {}, (True, False, datetime(2026, 11, 24, 10, 0, tzinfo=UTC))),
        ("contractsent", {}, (False, False, None)),
        # Sent flags are HubSpot's word, whatever the stage (a custom pipeline's stage ids).
        # Closed without a closedate: at the latest when HubSpot reported it so (updatedAt).
        ("12345678", {"hs_is_closed": "true"}, (True, False, datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC))),
        ("closedwon", {"hs_is_closed": "false", "hs_is_closed_won": "false"}, (False, False, None)),
    ],
)
def test_a_deal_without_the_closed_flags_is_closed_by_its_stage(
    stage: str, flags: dict[str, str], state: tuple[bool, bool, datetime | None]
) -> None:
    """A deal read with HubSpot's default properties has ``dealstage`` and ``closedate`` but no
    ``hs_is_closed``; an open deal's ``closedate`` is its expected close, not a close."""
    (_, deal_item, *_) = fixture_json("hubspot", "crm-objects.json")
    properties = deal_item["properties"]
    for key in ("hs_is_closed", "hs_is_closed_won"):
        del properties[key]
    properties.update(dealstage=stage, **flags)
    if stage == "12345678":
        del properties["closedate"]
    (deal,) = adapter.parse(make_request(dumps([deal_item]), url=URL), CONFIG).entities
    assert isinstance(deal, DealV1)
    assert (deal.is_closed, deal.is_won, deal.closed_at) == state


def test_an_engagement_associated_with_several_deals_names_none_of_them_for_certain() -> None:
    # Attribution takes an explicit deal link as certain (confidence 1.0): the first of two
    # associated deals was credited with the other's calls.
    calls = fixture_json("hubspot", "calls.json")
    first = calls[0]
    first["associations"]["deals"]["results"].append({"id": "3302", "type": "call_to_deal"})
    first["associations"]["companies"]["results"].append({"id": "5502", "type": "call_to_company"})
    body = dumps(calls)
    request = make_request(body, hubspot_headers(URL, body, SECRET), url=URL)

    connected, _ = adapter.parse(request, CONFIG).activities

    assert connected.crm == CrmReferences(contact_ids=("901",), owner_rep_id="7701")


def _notification(subscription: str, object_id: int, **fields: object) -> dict[str, object]:
    base = fixture_json("hubspot", "contact.propertyChange.json")[0]
    del base["propertyName"], base["propertyValue"]
    return {**base, "subscriptionType": subscription, "objectId": object_id, **fields}


def test_deletion_and_merge_notifications_retire_records() -> None:
    """HubSpot's own notifications name the records a deletion or a merge retires."""
    at = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # occurredAt 1795518000000
    batch = [
        _notification("deal.deletion", 3304),
        _notification("company.deletion", 5502),
        _notification("contact.deletion", 905),
        _notification("contact.merge", 903, primaryObjectId=903, mergedObjectIds=[904, "906"]),
        # A merge that made a new record retires both.
        _notification("company.merge", 5501, primaryObjectId=5501, mergedObjectIds=[5503], newObjectId=5509),
        _notification("deal.restore", 3304),
    ]
    result = adapter.parse(make_request(dumps(batch), url=URL), CONFIG)
    assert result.entities == (
        DealV1(id="3304", updated_at=at, deleted=True, created_at=at),
        AccountV1(id="5502", updated_at=at, deleted=True),
        ContactV1(id="905", updated_at=at, deleted=True),
        ContactV1(id="904", updated_at=at, merged_into="903"),
        ContactV1(id="906", updated_at=at, merged_into="903"),
        AccountV1(id="5503", updated_at=at, merged_into="5509"),
        AccountV1(id="5501", updated_at=at, merged_into="5509"),
    )
    assert result.ignored == (
        "[5] deal.restore: a restore; nothing is published (the object comes back with its next sync)",
    )


def test_generic_deletion_notifications_delete_the_engagements_we_ingest() -> None:
    """HubSpot's generic notifications (``object.deletion`` with ``objectTypeId``): a deleted
    call (0-48), email (0-49) or meeting (0-47) is retracted as an archived one is, a deleted
    deal (0-3) retired as by ``deal.deletion``; a note (0-46) or a task (0-27), which are not
    activities here, and a restore are acknowledged and listed as ignored, nothing published.
    Before, each was ignored: a call deleted in HubSpot kept counting."""
    at = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    body = fixture("hubspot", "object.deletion.json")
    result = adapter.parse(make_request(body, hubspot_headers(URL, body, SECRET), url=URL), CONFIG)
    assert result.deletions == (
        SourceDeletion("hubspot", "40120001"),
        SourceDeletion("hubspot", "40130001"),
        SourceDeletion("hubspot", "40140001"),
    )
    assert result.entities == (DealV1(id="3304", updated_at=at, deleted=True, created_at=at),)
    assert result.activities == ()
    assert result.ignored == (
        "[3] object.deletion (objectTypeId 0-46): object type not used",
        "[4] object.deletion (objectTypeId 0-27): object type not used",
        "[6] object.restore (objectTypeId 0-48): a restore; nothing is published "
        "(the object comes back with its next sync)",
    )


def test_a_generic_notification_names_its_fields_when_malformed() -> None:
    batch = [_notification("object.deletion", 1, objectTypeId="0-48")]
    del batch[0]["objectId"]
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(batch), url=URL), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "[0].objectId")
    batch = [_notification("object.deletion", 1, objectTypeId=["0-48"])]
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(batch), url=URL), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "[0].objectTypeId")


def test_a_merge_notification_with_malformed_ids_names_the_field() -> None:
    batch = [_notification("contact.merge", 903, primaryObjectId=903, mergedObjectIds=[904, None])]
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse(make_request(dumps(batch), url=URL), CONFIG)
    assert (caught.value.status_code, caught.value.field) == (422, "[0].mergedObjectIds[1]")


def test_a_companys_additional_domains_are_its_domains_too() -> None:
    company = fixture_json("hubspot", "crm-objects.json")[0]
    company["properties"]["hs_additional_domains"] = (
        "globex.co.uk;https://www.globex.de/;not a domain;globex.example"
    )
    (account,) = adapter.parse(make_request(dumps([company]), url=URL), CONFIG).entities
    assert isinstance(account, AccountV1)
    assert account.domains == ("globex.example", "globex.co.uk", "globex.de")


def test_a_contacts_additional_emails_are_its_emails_too() -> None:
    """HubSpot keeps a contact's other addresses (a former employer's, a personal one) in
    ``hs_additional_emails``, ``;``-separated: each is hers (before, only ``email`` was read, and
    her mail from the others was nobody's)."""
    contact = next(
        item for item in fixture_json("hubspot", "crm-objects.json") if item["objectType"] == "contacts"
    )
    contact["properties"]["hs_additional_emails"] = (
        "Bo@OldJob.example; not an address;bo.buyer@globex.example;Bo Buyer <bo.home@gmail.com>"
    )
    (read,) = adapter.parse(make_request(dumps([contact]), url=URL), CONFIG).entities
    assert isinstance(read, ContactV1)
    assert read.emails == ("bo.buyer@globex.example", "bo@oldjob.example", "bo.home@gmail.com")


def test_a_contacts_addresses_are_capped_at_fifty() -> None:
    """An additional-emails list grown by an import gone wrong: her ``email`` and the first 49
    others are read, the rest left out."""
    contact = next(
        item for item in fixture_json("hubspot", "crm-objects.json") if item["objectType"] == "contacts"
    )
    contact["properties"]["hs_additional_emails"] = ";".join(f"bo{n}@globex.example" for n in range(200))
    (read,) = adapter.parse(make_request(dumps([contact]), url=URL), CONFIG).entities
    assert isinstance(read, ContactV1)
    assert read.emails == ("bo.buyer@globex.example", *(f"bo{n}@globex.example" for n in range(49)))


def test_a_companys_domains_are_capped_at_two_hundred() -> None:
    """An additional-domains list grown by an import gone wrong: its ``domain`` and the first 199
    others are read (the contract's cap), the rest left out, not the batch refused."""
    company = next(
        item for item in fixture_json("hubspot", "crm-objects.json") if item["objectType"] == "companies"
    )
    company["properties"]["hs_additional_domains"] = ";".join(f"globex{n}.example" for n in range(300))
    (read,) = adapter.parse(make_request(dumps([company]), url=URL), CONFIG).entities
    assert isinstance(read, AccountV1)
    assert read.domains == ("globex.example", *(f"globex{n}.example" for n in range(199)))


def _contact_with(results: list[dict[str, object]], **properties: str) -> dict[str, object]:
    contact = next(
        item for item in fixture_json("hubspot", "crm-objects.json") if item["objectType"] == "contacts"
    )
    contact["properties"].update(properties)
    contact["associations"] = {"companies": {"results": results}}
    found: dict[str, object] = contact
    return found


def _account_of(item: dict[str, object]) -> str | None:
    (read,) = adapter.parse(make_request(dumps([item]), url=URL), CONFIG).entities
    assert isinstance(read, ContactV1 | DealV1)
    return read.account_id


@pytest.mark.parametrize("order", [1, -1])
def test_a_contacts_account_is_her_primary_company_in_any_order(order: int) -> None:
    """Two companies associated: the one HubSpot marks primary (``contact_to_company``, typeId 1;
    the other ``contact_to_company_unlabeled``) is her account whichever comes first (the first
    one was taken, and a sync listing them the other way moved her)."""
    results: list[dict[str, object]] = [
        {"id": "5502", "type": "contact_to_company_unlabeled"},
        {"id": "5501", "type": "contact_to_company"},
    ]
    assert _account_of(_contact_with(results[::order])) == "5501"


def test_a_contacts_primary_company_is_read_from_v4_association_types() -> None:
    results: list[dict[str, object]] = [
        {"id": "5502", "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]},
        {
            "id": "5501",
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
                {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
            ],
        },
        {"id": "5503", "associationTypes": [{"category": "USER_DEFINED", "typeId": 1, "label": "Buyer"}]},
    ]
    assert _account_of(_contact_with(results)) == "5501"


def test_without_a_marked_association_her_primary_is_associatedcompanyid_then_the_first() -> None:
    unmarked: list[dict[str, object]] = [{"id": "5502", "type": "x"}, {"id": "5501", "type": "x"}]
    assert _account_of(_contact_with(unmarked, associatedcompanyid="5501")) == "5501"
    assert _account_of(_contact_with(unmarked)) == "5502"
    assert _account_of(_contact_with([], associatedcompanyid="5503")) == "5503"


def test_a_deals_account_is_its_primary_company_in_any_order() -> None:
    deal = next(item for item in fixture_json("hubspot", "crm-objects.json") if item["objectType"] == "deals")
    deal["associations"]["companies"] = {
        "results": [
            {"id": "5502", "type": "deal_to_company_unlabeled"},
            {"id": "5501", "type": "deal_to_company"},
        ]
    }
    assert _account_of(deal) == "5501"
