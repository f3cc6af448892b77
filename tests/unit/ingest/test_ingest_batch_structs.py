"""The batch path on msgspec structs publishes what the contract's path publishes, byte for byte,
accepts the same batches and refuses the others with the same answer (``activities_fast``)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.common.contracts.activities import ActivityIn, activity_id_for
from libs.common.contracts.activities_fast import ActivityStruct, decode_activity_batch
from libs.common.contracts.tenant_settings import read_tenant_settings
from libs.common.erasures import ErasedIdentities, IdentityKind, erasure_key, identity_hash
from libs.common.web import Problem
from services.ingest.adapters.repository import TenantContext
from services.ingest.domain.tenant_config import privacy_policy, webhook_config
from services.ingest.handlers import (
    ingested_timestamp,
    parse_activity_batch,
    read_activity_batch,
    screen_activities,
    to_ingested,
)
from services.ingest.settings import IngestOptions

NOW = datetime(2026, 11, 24, 16, 0, 0, 250_000, tzinfo=UTC)
OPTIONS = IngestOptions()
KEY = erasure_key("test-secret-key")
ERASED = ErasedIdentities(
    KEY,
    frozenset(
        {
            identity_hash(KEY, IdentityKind.EMAIL, "bo@buyer.example"),
            identity_hash(KEY, IdentityKind.PHONE, "+14155550100"),
        }
    ),
)

KINDS = {"email": ("sent", "received"), "call": ("connected", "voicemail"), "meeting": ("held", "scheduled")}
ROLES = {"email": ("from", "to", "cc"), "call": ("caller", "callee"), "meeting": ("organizer", "attendee")}
TIMES = [
    "2026-11-02T15:04:05Z",
    "2026-11-02T15:04:05.5Z",
    "2026-11-02T15:04:05.123456+02:00",
    "2026-11-02T09:34:05-05:30",
    "2026-11-02t15:04:05z",
    "2026-11-02 15:04:05+00:00",
    "2026-11-02T15:04:05-00:00",
    "2026-11-02T15:04:05+0100",
    "2026-11-24T16:59:59+14:00",
]
EMAILS = [
    "ana@seller.example",
    " Ana.Núñez@Seller.Example ",
    "no-reply@buyer.example",
    "bo@buyer.example",
    "BO@BUYER.EXAMPLE",
    "cy@legal.example",
    "dee@eu.buyer.example",
    "ünï@çödé.example",
    "Dana Buyer <Dana@Buyer.example>",
    "mailto:bo@buyer.example",
    "bo@buyer.example.",
]
PHONES = [
    "+14155550100",
    "(415) 555-0100",
    "415.555.0101",
    "0044 20 7946 0958",
    "+44 20 7946 0958",
    "tel: 650 555 1234",
]
NAMES = [None, "Ana Ñúñez", 'Bo "the buyer" O\'Neil', "李小龍", "Zoë 😀", "back\\slash", "</script>"]
SUBJECTS = [
    None,
    "Follow-up",
    'Re: "pricing" \\ terms',
    "Contrat signé \u2013 étape 2",
    "Confidential merger",
    "😀" * 30,
]


def _participant(rng: random.Random, role: str) -> dict[str, Any]:
    person: dict[str, Any] = {"role": role}
    shape = rng.randrange(4)
    if shape in (0, 2):
        person["email"] = rng.choice(EMAILS)
    if shape in (1, 2) or "email" not in person:
        person["phone"] = rng.choice(PHONES)
    name = rng.choice(NAMES)
    if name is not None or rng.random() < 0.3:
        person["name"] = name  # absent, null or a value
    if rng.random() < 0.3:
        person["response_status"] = rng.choice(["accepted", "declined", "tentative", "needs_action"])
    return person


def _activity(rng: random.Random, n: int) -> dict[str, Any]:
    kind = rng.choice(sorted(KINDS))
    item: dict[str, Any] = {
        "source": rng.choice(["api", "dialer.v2", "crm_sync-1"]),
        "external_id": f"ext-{n}-{rng.choice(['a', 'Ω', 'x y'])}",
        "kind": kind,
        "direction": rng.choice(["inbound", "outbound", "internal"]),
        "outcome": rng.choice(KINDS[kind]),
        "occurred_at": rng.choice(TIMES),
        "participants": [_participant(rng, role) for role in rng.sample(ROLES[kind], len(ROLES[kind]))],
    }
    optional: dict[str, Any] = {
        "duration_seconds": rng.choice([0, 1, 312, 86_400]),
        "thread_id": rng.choice([None, "thread-1", "<abc@mail.example>"]),
        "ical_uid": rng.choice([None, "uid-1@cal.example"]),
        "subject": rng.choice(SUBJECTS),
        "crm": rng.choice(
            [
                {},
                {"deal_id": "d-1"},
                {"contact_ids": ["c-1", "c-2"], "owner_rep_id": "r-1", "account_id": None},
            ]
        ),
        "revision": rng.choice([0, 7, 2**63 - 1]),
    }
    for name, value in optional.items():
        if rng.random() < 0.6:
            item[name] = value
    return item


def _bodies(items: Sequence[Any], context: TenantContext) -> list[bytes]:
    screened = screen_activities(context, items)
    activity_id = uuid.UUID("2f1d1d2e-8f43-4a34-9a3f-0d1e4c1c7b10")
    return [
        to_ingested(
            a,
            context.tenant_id,
            ingested_timestamp(NOW),
            "canonical/1",
            automated=auto,
            activity_id=activity_id,
        ).body()
        + f"|{own}|{auto}".encode()
        for a, auto, own in screened.kept
    ] + [json.dumps(sorted(screened.exclusions.items())).encode()]


def _context(privacy: dict[str, Any], erased: ErasedIdentities | None = None) -> TenantContext:
    settings = read_tenant_settings("acme", {"internal_domains": ["seller.example"], "privacy": privacy})
    return TenantContext(
        "acme",
        settings,
        webhook_config("acme", settings, frozenset()),
        privacy_policy(settings),
        erased or ErasedIdentities(KEY),
    )


PRIVACY_MODES = [
    {},
    {"keep_subjects": True},
    {"excluded_addresses": ["cy@legal.example", "+14155550101"], "keep_subjects": True},
    {"excluded_domains": ["buyer.example"]},
    {"excluded_subject_keywords": ["confidential", "MERGER"], "keep_subjects": True},
    {"drop_internal_only": True},
]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("privacy", PRIVACY_MODES)
def test_struct_batches_publish_the_contracts_bytes_in_every_privacy_mode(
    seed: int, privacy: dict[str, Any]
) -> None:
    rng = random.Random(seed)
    body = json.dumps(
        {"activities": [_activity(rng, n) for n in range(40)]}, ensure_ascii=seed % 2 == 0
    ).encode()

    fast = read_activity_batch(body, OPTIONS, NOW)
    models = parse_activity_batch(body, OPTIONS, NOW)

    assert [type(a) for a in fast] == [ActivityStruct] * 40
    for erased in (None, ERASED):
        context = _context(privacy, erased)
        assert _bodies(fast, context) == _bodies(list(models), context)


@pytest.mark.parametrize("privacy", PRIVACY_MODES)
def test_screening_with_the_meetings_ids_derived_before_keeps_what_screening_derives(
    privacy: dict[str, Any],
) -> None:
    # ``pipeline.older_than_time_blocks`` derives each meeting's id and hands it on by ``id()``.
    rng = random.Random(7)
    body = json.dumps({"activities": [_activity(rng, n) for n in range(60)]}).encode()
    activities = read_activity_batch(body, OPTIONS, NOW)
    ids = {id(a): activity_id_for("acme", a.source, a.external_id) for a in activities if a.kind == "meeting"}
    assert 0 < len(ids) < len(activities)
    for erased in (None, ERASED):
        context = _context(privacy, erased)
        derived, given = screen_activities(context, activities), screen_activities(context, activities, ids)
        assert given.kept == derived.kept
        assert given.exclusions == derived.exclusions
        assert given.sightings == derived.sightings
    # The ids given are the ones used: another id for the first meeting shows in what is kept.
    first = next(a for a in activities if id(a) in ids)
    other = uuid.UUID("00000000-0000-5000-8000-000000000001")
    kept = screen_activities(_context({"keep_subjects": True}), activities, {id(first): other}).kept
    assert [own for a, _, own in kept if (a.source, a.external_id) == (first.source, first.external_id)] == [
        other
    ]


def test_a_struct_batch_is_read_as_the_contract_reads_it() -> None:
    item = {
        "source": "api",
        "external_id": "call-1",
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": "2026-11-02T15:04:05.5-05:30",
        "participants": [
            {"email": " Ana@Acme.Example", "role": "caller", "name": "Ana"},
            {"phone": "(415) 555-0100", "role": "callee", "email": None},
        ],
        "subject": None,
    }
    [fast] = read_activity_batch(json.dumps({"activities": [item]}).encode(), OPTIONS, NOW)

    assert isinstance(fast, ActivityStruct)
    assert [(p.email, p.phone, p.name) for p in fast.participants] == [
        ("ana@acme.example", None, "Ana"),
        (None, "+14155550100", None),
    ]
    assert fast.occurred_at == datetime(2026, 11, 2, 20, 34, 5, 500_000, tzinfo=UTC)
    assert (fast.duration_seconds, fast.revision, fast.crm.contact_ids) == (0, 0, ())


VALID: dict[str, Any] = {
    "source": "api",
    "external_id": "call-1",
    "kind": "call",
    "direction": "outbound",
    "outcome": "connected",
    "occurred_at": "2026-11-02T15:04:05Z",
    "participants": [
        {"email": "ana@acme.example", "role": "caller"},
        {"phone": "+14155550100", "role": "callee"},
    ],
}


def test_an_activity_in_utc_is_published_as_it_is_and_one_at_another_offset_moved_to_utc() -> None:
    body = {
        "activities": [VALID, {**VALID, "external_id": "call-2", "occurred_at": "2026-11-02T17:04:05+02:00"}]
    }
    in_utc, elsewhere = read_activity_batch(json.dumps(body).encode(), OPTIONS, NOW)
    assert in_utc.occurred_at.tzinfo is UTC
    assert elsewhere.occurred_at.tzinfo is not UTC

    assert to_ingested(in_utc, "acme", ingested_timestamp(NOW), "canonical/1").activity is in_utc
    moved = to_ingested(elsewhere, "acme", ingested_timestamp(NOW), "canonical/1").activity
    assert (moved.occurred_at, moved.occurred_at.tzinfo) == (datetime(2026, 11, 2, 15, 4, 5, tzinfo=UTC), UTC)


#: Bodies the contract accepts and the fast path leaves to it (returned as the contract's models).
LEFT_TO_THE_CONTRACT = {
    "seven fraction digits": {"occurred_at": "2026-11-02T15:04:05.1234567Z"},
    "rounding up a second": {"occurred_at": "2026-11-02T15:04:05.9999999Z"},
    "a comma fraction": {"occurred_at": "2026-11-02T15:04:05,5Z"},
    "no seconds": {"occurred_at": "2026-11-02T15:04Z"},
    "a tab in the subject": {"subject": "a\tb"},
    "a line break in the subject": {"subject": "a\nb", "keep": True},
    "a no-break space in a name": {
        "participants": [{"email": "a@acme.example", "name": "A\u00a0B", "role": "caller"}]
    },
    "Google's needsAction": {
        "participants": [{"email": "a@acme.example", "role": "attendee", "response_status": "needsAction"}]
    },
    "Graph's tentativelyAccepted": {
        "participants": [
            {"email": "a@acme.example", "role": "attendee", "response_status": "tentativelyAccepted"}
        ]
    },
    "DECLINED in capitals": {
        "participants": [{"email": "a@acme.example", "role": "attendee", "response_status": "DECLINED"}]
    },
    "a null response status": {
        "participants": [{"email": "a@acme.example", "role": "attendee", "response_status": None}]
    },
}


@pytest.mark.parametrize("changes", LEFT_TO_THE_CONTRACT.values(), ids=LEFT_TO_THE_CONTRACT.keys())
def test_what_the_fast_path_cannot_vouch_for_is_read_by_the_contract(changes: dict[str, Any]) -> None:
    changes = {k: v for k, v in changes.items() if k != "keep"}
    body = json.dumps({"activities": [VALID, {**VALID, "external_id": "call-2", **changes}]}).encode()

    read = read_activity_batch(body, OPTIONS, NOW)

    assert read == parse_activity_batch(body, OPTIONS, NOW)
    assert [type(a) for a in read] == [ActivityIn, ActivityIn]


def test_an_escaped_digit_or_dot_leaves_the_body_to_the_contract() -> None:
    body = json.dumps({"activities": [VALID]}).encode().replace(b"05Z", b"\\u00305Z")

    assert decode_activity_batch(body) is None
    assert read_activity_batch(body, OPTIONS, NOW) == parse_activity_batch(body, OPTIONS, NOW)


REFUSED = {
    "a NUL in a name": {"participants": [{"email": "a@x.example", "name": "Bo\x00", "role": "caller"}]},
    "an outcome of another kind": {"outcome": "held"},
    "an unknown kind": {"kind": "fax"},
    "a source with capitals": {"source": "API"},
    "a source ending in a line break": {"source": "api\n"},
    "an unknown field": {"colour": "red"},
    "in the future": {"occurred_at": "2026-11-26T16:00:01Z"},
    "too old": {"occurred_at": "2010-01-01T00:00:00Z"},
    "before 1970 in UTC": {"occurred_at": "1970-01-01T00:30:00+01:00"},
    "year 1 ahead of UTC": {"occurred_at": "0001-01-01T00:00:00+01:00"},
    "a naive time": {"occurred_at": "2026-11-02T15:04:05"},
    "a time as a number": {"occurred_at": 1_790_000_000},
    "a short code": {"participants": [{"phone": "12345", "role": "callee"}]},
    "an empty phone": {"participants": [{"phone": "", "role": "callee"}]},
    "no address": {"participants": [{"name": "Bo", "role": "callee"}]},
    "not an email": {"participants": [{"email": "bo at buyer", "role": "callee"}]},
    "a duration as text": {"duration_seconds": "30"},
    "a duration as a float": {"duration_seconds": 30.0},
    "a duration over a day": {"duration_seconds": 86_401},
    "a negative revision": {"revision": -1},
    "a revision past bigint": {"revision": 2**63},
    "a boolean revision": {"revision": True},
    "no participants": {"participants": []},
    "an empty external id": {"external_id": ""},
    "a long subject": {"subject": "x" * 2_001},
    "an unknown crm field": {"crm": {"opportunity": "o-1"}},
    "a control character in a contact id": {"crm": {"contact_ids": ["c\x01"]}},
    "an unknown participant field": {"participants": [{"email": "a@x.example", "role": "caller", "age": 3}]},
    "an unknown role": {"participants": [{"email": "a@x.example", "role": "host"}]},
    "only blank addresses": {"participants": [{"email": " ", "phone": "", "role": "caller"}]},
    "an unknown response status": {
        "participants": [{"email": "a@x.example", "role": "attendee", "response_status": "maybe"}]
    },
    "a response status as a number": {
        "participants": [{"email": "a@x.example", "role": "attendee", "response_status": 1}]
    },
}


def _answer(body: bytes, read: Any) -> tuple[int, str, Any] | list[bytes]:
    try:
        activities = read(body, OPTIONS, NOW)
    except Problem as problem:
        return problem.status, problem.detail, problem.errors
    return _bodies(list(activities), _context({"keep_subjects": True}))


@pytest.mark.parametrize("changes", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_batch_gets_the_contracts_answer(changes: dict[str, Any]) -> None:
    body = json.dumps({"activities": [VALID, {**VALID, "external_id": "bad", **changes}, VALID]}).encode()

    answer = _answer(body, read_activity_batch)

    assert isinstance(answer, tuple)
    assert answer[0] == 422
    assert answer == _answer(body, parse_activity_batch)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"activities": []}',
        b'{"activities": {}}',
        b'{"activities": [], "more": 1}',
        json.dumps({"activities": [VALID] * 1_001}).encode(),
        json.dumps({"activities": [VALID], "extra": True}).encode(),
        b'{"activities": [' + json.dumps(VALID).encode() + b"]",
        b'{"activities": [1e400]}',
    ],
)
def test_a_malformed_body_gets_the_contracts_answer(body: bytes) -> None:
    assert _answer(body, read_activity_batch) == _answer(body, parse_activity_batch)


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [*TIMES, "2026-11-02T15:04:05.1234567Z", "fax", "held", "caller", "", " ", "api", *EMAILS]
    ),
)
_fields = st.sampled_from([*VALID, "subject", "thread_id", "crm", "revision", "duration_seconds", "unknown"])
_participant_fields = st.sampled_from(["email", "phone", "name", "role", "unknown"])


@given(
    changes=st.dictionaries(_fields, _values, max_size=3),
    person=st.dictionaries(_participant_fields, _values, max_size=2),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_whatever_an_item_holds_both_paths_give_one_answer(
    changes: dict[str, Any], person: dict[str, Any]
) -> None:
    item: dict[str, Any] = {**VALID, **changes}
    if person:
        item["participants"] = [{**VALID["participants"][0], **person}, VALID["participants"][1]]
    body = json.dumps({"activities": [VALID, item]}).encode()

    assert _answer(body, read_activity_batch) == _answer(body, parse_activity_batch)


def _held_meeting(occurred_at: str, people: list[dict[str, str]]) -> dict[str, Any]:
    """A held meeting of ``people`` at ``occurred_at``."""
    return {**VALID, "kind": "meeting", "outcome": "held", "occurred_at": occurred_at, "participants": people}


@pytest.mark.parametrize("occurred_at", ["2026-11-02T15:04:05Z", "2026-11-02T15:04:05.1234567Z"])
def test_a_calendar_resource_is_left_out_of_a_meeting_on_both_paths(occurred_at: str) -> None:
    """A booked room or a shared calendar (decorated or not) is no attendee, unless nobody else is."""
    people = [
        {"email": "ana@acme.example", "role": "organizer"},
        {"email": "Room 4A <C_1889@Resource.Calendar.Google.com>", "role": "attendee"},
        {"email": "bo@globex.example", "role": "attendee"},
        {"email": "team@group.calendar.google.com", "role": "attendee"},
    ]
    meeting = _held_meeting(occurred_at, people)
    alone = {**meeting, "external_id": "room-only", "participants": people[1:2]}
    read = read_activity_batch(json.dumps({"activities": [meeting, alone]}).encode(), OPTIONS, NOW)

    assert [[p.email for p in a.participants] for a in read] == [
        ["ana@acme.example", "bo@globex.example"],
        ["c_1889@resource.calendar.google.com"],
    ]
    assert all(isinstance(a, ActivityStruct) for a in read) is occurred_at.endswith(":05Z")


@pytest.mark.parametrize("occurred_at", ["2026-11-02T15:04:05Z", "2026-11-02T15:04:05.1234567Z"])
def test_a_meeting_notetaker_is_left_out_of_a_meeting_on_both_paths(occurred_at: str) -> None:
    """Fireflies' notetaker invited to record an internal review is no outsider: still internal."""
    people = [
        {"email": "ana@acme.example", "role": "organizer"},
        {"email": "sam@acme.example", "role": "attendee"},
        {"email": "Fireflies.ai Notetaker <Fred@Fireflies.ai>", "role": "attendee"},
        # Another person at the notetaker's company stays.
        {"email": "kim@fireflies.ai", "role": "attendee"},
    ]
    meeting = _held_meeting(occurred_at, people)
    read = read_activity_batch(json.dumps({"activities": [meeting]}).encode(), OPTIONS, NOW)

    assert [[p.email for p in a.participants] for a in read] == [
        ["ana@acme.example", "sam@acme.example", "kim@fireflies.ai"]
    ]


@pytest.mark.parametrize("occurred_at", ["2026-11-02T15:04:05Z", "2026-11-02T15:04:05.1234567Z"])
def test_a_crms_logging_mailbox_copied_on_a_mail_is_left_out_on_both_paths(occurred_at: str) -> None:
    """A rep copies HubSpot's BCC address (or Email to Salesforce, Pipedrive's Smart BCC) to file
    the mail: no person, so mail among colleagues so copied stays among colleagues."""
    people = [
        {"email": "ana@acme.example", "role": "from"},
        {"email": "sam@acme.example", "role": "to"},
        {"email": "123456@BCC.HubSpot.com", "role": "bcc"},
        {"email": "emailtosalesforce@x1y2.na1.le.salesforce.com", "role": "bcc"},
        {"email": "Acme <acme@pipedrivemail.com>", "role": "cc"},
        # A person at a look-alike domain stays.
        {"email": "lee@nothubspot.com", "role": "cc"},
    ]
    mail = {**VALID, "kind": "email", "outcome": "sent", "occurred_at": occurred_at, "participants": people}
    read = read_activity_batch(json.dumps({"activities": [mail]}).encode(), OPTIONS, NOW)

    assert [[p.email for p in a.participants] for a in read] == [
        ["ana@acme.example", "sam@acme.example", "lee@nothubspot.com"]
    ]
    assert _answer(json.dumps({"activities": [mail]}).encode(), read_activity_batch) == _answer(
        json.dumps({"activities": [mail]}).encode(), parse_activity_batch
    )


@pytest.mark.parametrize("occurred_at", ["2026-11-02T15:04:05Z", "2026-11-02T15:04:05.1234567Z"])
def test_a_blank_thread_id_or_ical_uid_is_none_on_both_paths(occurred_at: str) -> None:
    blank = {**VALID, "occurred_at": occurred_at, "thread_id": "", "ical_uid": "  "}
    kept = {
        **VALID,
        "occurred_at": occurred_at,
        "external_id": "call-2",
        "thread_id": "t-1",
        "ical_uid": " u-1",
    }
    read = read_activity_batch(json.dumps({"activities": [blank, kept]}).encode(), OPTIONS, NOW)

    assert [(a.thread_id, a.ical_uid) for a in read] == [(None, None), ("t-1", " u-1")]
    assert all(isinstance(a, ActivityStruct) for a in read) is occurred_at.endswith(":05Z")


def test_a_blank_email_phone_or_name_of_a_participant_is_none() -> None:
    """An export's empty column (a call's callee with ``"email": ""`` and a phone) is no value: the
    participant stands on what it has, on either path, and a participant with only blanks is refused."""
    blanks = {
        **VALID,
        "participants": [
            {"email": "ana@acme.example", "phone": " ", "name": "", "role": "caller"},
            {"email": "", "phone": "+14155550100", "name": "  ", "role": "callee"},
        ],
    }
    read = read_activity_batch(json.dumps({"activities": [blanks, VALID]}).encode(), OPTIONS, NOW)
    assert [(p.email, p.phone, p.name) for p in read[0].participants] == [
        ("ana@acme.example", None, None),
        (None, "+14155550100", None),
    ]
    assert [(p.email, p.phone) for p in read[1].participants] == [
        ("ana@acme.example", None),
        (None, "+14155550100"),
    ]


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("accepted", "accepted"),
        ("declined", "declined"),
        ("Declined", "declined"),
        ("needsAction", "needs_action"),
        ("NEEDS_ACTION", "needs_action"),
        ("tentative", "tentative"),
        ("tentativelyAccepted", "tentative"),
        ("organizer", "accepted"),
        ("none", "needs_action"),
        ("notResponded", "needs_action"),
        (None, None),
    ],
)
def test_a_response_status_is_read_in_any_vendor_spelling_and_published_as_ours(
    sent: str | None, read: str | None
) -> None:
    invitee = {"email": "bo@buyer.example", "role": "attendee", "response_status": sent}
    meeting = {**VALID, "kind": "meeting", "outcome": "held", "participants": [invitee]}
    for reader in (read_activity_batch, parse_activity_batch):
        [activity] = reader(json.dumps({"activities": [meeting]}).encode(), OPTIONS, NOW)
        [published, _] = _bodies([activity], _context({}))
        participant = json.loads(published.split(b"|")[0])["participants"][0]
        # Written only when known: an activity without it is the JSON it always was.
        assert participant == {
            "email": "bo@buyer.example",
            "phone": None,
            "name": None,
            "role": "attendee",
            **({} if read is None else {"response_status": read}),
        }


def test_an_unknown_response_status_is_a_422_naming_the_field_and_the_reason() -> None:
    invitee = {"email": "bo@buyer.example", "role": "attendee", "response_status": "maybe"}
    meeting = {
        **VALID,
        "kind": "meeting",
        "outcome": "held",
        "participants": [VALID["participants"][0], invitee],
    }
    with pytest.raises(Problem) as refused:
        read_activity_batch(json.dumps({"activities": [meeting]}).encode(), OPTIONS, NOW)
    assert refused.value.status == 422
    assert refused.value.errors == [
        {
            "in": "body",
            "field": "activities.0.participants.1.response_status",
            "reason": "unknown response status 'maybe': use accepted, declined, tentative or needs_action "
            "(Google's needsAction and Graph's tentativelyAccepted, organizer, none and notResponded are read too)",
        }
    ]


@pytest.mark.parametrize("occurred_at", ["2026-11-02T15:04:05Z", "2026-11-02T15:04:05.1234567Z"])
@pytest.mark.parametrize("withheld", ["anonymous", " Restricted ", "UNKNOWN", "private", "+266696687"])
def test_a_withheld_number_is_no_phone_on_both_paths(occurred_at: str, withheld: str) -> None:
    """The markers the vendor adapters read as a withheld number (``normalize.WITHHELD_NUMBERS``):
    a participant with an email keeps it, one with nothing else is left out; the call stays."""
    alone = {
        **VALID,
        "occurred_at": occurred_at,
        "participants": [
            {"email": "ana@acme.example", "role": "callee"},
            {"phone": withheld, "name": "Caller", "role": "caller"},
        ],
    }
    known = {
        **alone,
        "external_id": "call-2",
        "participants": [
            {"email": "ana@acme.example", "role": "callee"},
            {"email": "bo@globex.example", "phone": withheld, "role": "caller"},
        ],
    }
    body = json.dumps({"activities": [alone, known]}).encode()

    read = read_activity_batch(body, OPTIONS, NOW)

    assert [[(p.email, p.phone, p.role) for p in a.participants] for a in read] == [
        [("ana@acme.example", None, "callee")],
        [("ana@acme.example", None, "callee"), ("bo@globex.example", None, "caller")],
    ]
    assert all(isinstance(a, ActivityStruct) for a in read) is occurred_at.endswith(":05Z")
    assert _answer(body, read_activity_batch) == _answer(body, parse_activity_batch)


@pytest.mark.parametrize(
    ("phones", "field", "reason"),
    [
        # Junk that is no withheld marker: refused as before, naming the field.
        (["+14155550100", "anonymous caller"], "activities.0.participants.1.phone", "not a phone number"),
        # Nobody left once the withheld numbers are no phones.
        (["anonymous", "blocked"], "activities.0.participants.0.phone", "a withheld number, and nobody else"),
    ],
)
def test_junk_phones_and_calls_with_nobody_left_are_refused_naming_the_field(
    phones: list[str], field: str, reason: str
) -> None:
    call = {
        **VALID,
        "participants": [
            {"phone": phone, "role": role} for phone, role in zip(phones, ("caller", "callee"), strict=True)
        ],
    }
    body = json.dumps({"activities": [call]}).encode()

    answer = _answer(body, read_activity_batch)

    assert isinstance(answer, tuple)
    assert answer[0] == 422
    assert [e["field"] for e in answer[2]] == [field]
    assert answer[2][0]["reason"].startswith(reason)
    assert answer == _answer(body, parse_activity_batch)


@pytest.mark.parametrize("occurred_at", ["2026-11-02T15:04:05Z", "2026-11-02T15:04:05.1234567Z"])
def test_an_extension_dialled_is_kept_apart_from_the_line_on_both_paths(occurred_at: str) -> None:
    """A dialer's ``;ext=12``, ``,34``, ``x56`` and an ``extension`` sent as such: the line in
    ``phone``, the digits in ``extension``; a bare line publishes no ``extension``."""
    call = {
        **VALID,
        "occurred_at": occurred_at,
        "participants": [
            {"email": "ana@acme.example", "role": "caller"},
            {"phone": "+14155550200;ext=12", "role": "callee"},
            {"phone": "+14155550200,34", "role": "callee"},
            {"phone": "415 555 0200 x56", "role": "callee"},
            {"phone": "+14155550300", "extension": "78", "role": "callee"},
            {"phone": "+14155550400", "role": "callee"},
        ],
    }
    body = json.dumps({"activities": [call]}).encode()

    read = read_activity_batch(body, OPTIONS, NOW)

    assert [(p.phone, getattr(p, "extension", None) or None) for p in read[0].participants][1:] == [
        ("+14155550200", "12"),
        ("+14155550200", "34"),
        ("+14155550200", "56"),
        ("+14155550300", "78"),
        ("+14155550400", None),
    ]
    published = _answer(body, read_activity_batch)
    assert published == _answer(body, parse_activity_batch)
    assert isinstance(published, list)
    participants = json.loads(published[0].split(b"|")[0])["participants"]
    assert [p.get("extension") for p in participants] == [None, "12", "34", "56", "78", None]


@pytest.mark.parametrize(
    ("participant", "field", "reason"),
    [
        (
            {"email": "bo@globex.example", "extension": "12", "role": "callee"},
            "activities.0.participants.1",
            "an extension needs the phone it is dialled on",
        ),
        (
            {"phone": "+14155550200", "extension": "12a", "role": "callee"},
            "activities.0.participants.1.extension",
            "String should match pattern",
        ),
    ],
)
def test_an_extension_without_a_line_or_not_digits_is_refused_naming_the_participant(
    participant: dict[str, Any], field: str, reason: str
) -> None:
    call = {**VALID, "participants": [VALID["participants"][0], participant]}
    body = json.dumps({"activities": [call]}).encode()

    answer = _answer(body, read_activity_batch)

    assert answer == _answer(body, parse_activity_batch)
    assert isinstance(answer, tuple)
    assert answer[0] == 422
    [error] = answer[2]
    assert error["field"] == field
    assert reason in error["reason"]
