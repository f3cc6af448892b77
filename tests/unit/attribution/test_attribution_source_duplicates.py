"""The second report of one call (``domain.duplicates``): which reports are one call, which one is
kept whatever the arrival order, and that a settled pair stays as it is when re-decided."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from msgspec.structs import replace

from libs.common.contracts.activities import ActivityKind, Direction, ParticipantRole
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.decision import AttributionDecision, next_version
from services.attribution.domain.duplicates import (
    SourceReport,
    counterparts,
    mark_duplicates,
    report_of,
    report_windows,
    same_activity,
    subject_key,
)
from services.attribution.domain.reference import CurrentAttribution

from .builders import ANA_PHONE, activity

T = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)
BUYER = "+14155550100"


def call(
    name: str, source: str, seconds: float = 0, *, rep: str = "rep-1", number: str = BUYER
) -> SourceReport:
    return SourceReport(
        uuid.uuid5(uuid.NAMESPACE_URL, name), source, rep, frozenset({number}), T + timedelta(seconds=seconds)
    )


def kept(result: dict[uuid.UUID, SourceReport | None]) -> dict[uuid.UUID, uuid.UUID | None]:
    return {
        activity_id: None if keeper is None else keeper.activity_id for activity_id, keeper in result.items()
    }


DIAL, LOG = call("dial", "aircall"), call("log", "hubspot", 40)


@pytest.mark.parametrize(
    ("other", "same"),
    [
        (call("log", "hubspot", 120), True),  # at the tolerance
        (call("log", "hubspot", -120), True),
        (call("log", "hubspot", 121), False),
        (call("redial", "aircall", 40), False),  # one source: two calls
        (call("log", "hubspot", 40, rep="rep-2"), False),
        (call("log", "hubspot", 40, number="+14155550199"), False),
        (SourceReport(DIAL.activity_id, "hubspot", "rep-1", frozenset({BUYER}), T), False),  # itself
    ],
)
def test_one_call_is_the_same_rep_and_number_from_another_source_within_two_minutes(
    other: SourceReport, same: bool
) -> None:
    assert same_activity(DIAL, other) is same
    assert same_activity(other, DIAL) is same


def test_the_counterpart_is_the_callee_of_an_outbound_call_and_the_caller_of_an_inbound_one() -> None:
    people = [
        {"phone": ANA_PHONE, "role": "caller"},
        {"phone": BUYER, "role": "callee"},
        {"email": "x@y.z", "role": "callee"},
    ]
    assert counterparts("call", "outbound", people) == frozenset({BUYER})
    assert counterparts("call", "inbound", people) == frozenset({ANA_PHONE})
    assert counterparts("call", "internal", people) == frozenset()
    assert counterparts("meeting", "outbound", people) == frozenset()
    outbound = activity(
        ActivityKind.CALL,
        Direction.OUTBOUND,
        ((ANA_PHONE, ParticipantRole.CALLER), (BUYER, ParticipantRole.CALLEE)),
    )
    report = report_of(outbound, "rep-1")
    assert report is not None
    assert (report.source, report.rep_id, report.counterparts) == ("test", "rep-1", frozenset({BUYER}))
    assert report_of(outbound, None) is None
    by_email = activity(
        ActivityKind.CALL,
        Direction.OUTBOUND,
        ((ANA_PHONE, ParticipantRole.CALLER), ("bo@acme.com", ParticipantRole.CALLEE)),
    )
    assert report_of(by_email, "rep-1") is None


@pytest.mark.parametrize("order", list(itertools.permutations(range(2))))
def test_in_one_batch_the_report_that_arrived_first_is_kept(order: tuple[int, ...]) -> None:
    arrived = [(DIAL, LOG)[i] for i in order]
    first, second = arrived
    assert kept(mark_duplicates(arrived, [])) == {
        first.activity_id: None,
        second.activity_id: first.activity_id,
    }


def test_a_report_attributed_before_is_kept_even_when_it_started_later() -> None:
    # The log (17:00:40) was attributed first; the dialer's report of 17:00:00 comes after.
    assert kept(mark_duplicates([DIAL], [LOG])) == {DIAL.activity_id: LOG.activity_id}
    assert kept(mark_duplicates([LOG], [DIAL])) == {LOG.activity_id: DIAL.activity_id}


def test_a_settled_pair_stays_as_it_is_whatever_is_decided_again() -> None:
    duplicate = replace(LOG, duplicate_of=DIAL.activity_id)
    stored = [DIAL, duplicate]
    # The keeper alone, the duplicate alone, both (in either order): the same pair.
    assert kept(mark_duplicates([DIAL], stored)) == {DIAL.activity_id: None}
    assert kept(mark_duplicates([LOG], stored)) == {LOG.activity_id: DIAL.activity_id}
    both = {DIAL.activity_id: None, LOG.activity_id: DIAL.activity_id}
    assert kept(mark_duplicates([LOG, DIAL], stored)) == both
    assert kept(mark_duplicates([DIAL, LOG], stored)) == both


def test_two_redials_each_logged_pair_one_to_one_and_a_third_source_joins_its_call() -> None:
    first, second = call("dial-1", "aircall"), call("dial-2", "aircall", 60)
    # The CRM logs both at about the same minute; the second log is nearer the first call.
    log_1, log_2 = call("log-1", "hubspot", 10), call("log-2", "hubspot", 20)
    sf = call("sf-1", "salesforce", 5)
    result = kept(mark_duplicates([log_1, log_2, sf], [first, second]))
    assert result == {
        log_1.activity_id: first.activity_id,
        # The first call holds a report of HubSpot already: the second call's.
        log_2.activity_id: second.activity_id,
        sf.activity_id: first.activity_id,
    }


def test_genuine_calls_of_one_source_are_all_kept() -> None:
    calls = [call(f"dial-{n}", "aircall", 180 * n) for n in range(3)] + [call("again", "aircall", 30)]
    assert kept(mark_duplicates(calls, [])) == {c.activity_id: None for c in calls}


def test_marking_and_releasing_a_duplicate_is_a_new_version_and_keeping_it_is_none() -> None:
    decision = AttributionDecision(
        AttributionStatus.ATTRIBUTED, "rep-1", None, "acc-1", "deal-1", 0.9, "contact_role"
    )
    current = CurrentAttribution(
        1, AttributionStatus.ATTRIBUTED, "rep-1", None, "acc-1", "deal-1", (), 0.9, duplicate_of=None
    )
    marked = AttributionDecision(
        AttributionStatus.ATTRIBUTED,
        "rep-1",
        None,
        "acc-1",
        "deal-1",
        0.9,
        "contact_role",
        duplicate_of=DIAL.activity_id,
    )
    assert next_version(current, decision) is None
    assert next_version(current, marked) == 2
    held = CurrentAttribution(
        2,
        AttributionStatus.ATTRIBUTED,
        "rep-1",
        None,
        "acc-1",
        "deal-1",
        (),
        0.9,
        duplicate_of=DIAL.activity_id,
    )
    assert next_version(held, marked) is None
    assert next_version(held, decision) == 3


def test_the_windows_looked_up_are_one_range_per_rep_number_and_overlapping_calls() -> None:
    two_minutes = timedelta(minutes=2)
    reports = [
        call("a", "aircall"),
        call("b", "aircall", 200),  # overlaps a's window: one range
        call("c", "aircall", 600),  # apart
        call("d", "aircall", 0, rep="rep-2"),
        call("e", "aircall", 0, number="+14155550199"),
    ]
    assert report_windows(reversed(reports)) == [
        ("rep-1", "+14155550100", T - two_minutes, T + timedelta(seconds=200) + two_minutes),
        (
            "rep-1",
            "+14155550100",
            T + timedelta(seconds=600) - two_minutes,
            T + timedelta(seconds=600) + two_minutes,
        ),
        ("rep-1", "+14155550199", T - two_minutes, T + two_minutes),
        ("rep-2", "+14155550100", T - two_minutes, T + two_minutes),
    ]


def email(
    name: str,
    source: str,
    seconds: float = 0,
    *,
    subject: str | None = "Pricing",
    to: str = "amy@buyer.example",
) -> SourceReport:
    return SourceReport(
        uuid.uuid5(uuid.NAMESPACE_URL, name),
        source,
        "rep-1",
        frozenset({to}),
        T + timedelta(seconds=seconds),
        None,
        subject_key(subject),
        ActivityKind.EMAIL,
    )


SENT = email("sent", "gmail")


@pytest.mark.parametrize(
    ("other", "same"),
    [
        (email("logged", "hubspot", 3), True),  # the CRM's logged copy, seconds later
        (email("logged", "hubspot", 3, subject="  pricing "), True),
        (email("logged", "hubspot", 60), True),
        (email("logged", "hubspot", 61), False),  # another email to her a minute later
        (email("logged", "hubspot", 3, subject="Contract"), False),  # another email to her
        (email("logged", "hubspot", 3, subject=None), False),
        (email("logged", "hubspot", 3, to="bo@buyer.example"), False),
        (email("again", "gmail", 3), False),  # one mailbox: two emails
        (replace(call("log", "hubspot", 3), counterparts=frozenset({"amy@buyer.example"})), False),  # a call
    ],
)
def test_one_email_is_the_same_rep_recipient_and_subject_from_another_source_within_two_minutes(
    other: SourceReport, same: bool
) -> None:
    assert same_activity(SENT, other) is same
    assert same_activity(other, SENT) is same


def test_an_emails_counterparts_are_its_recipients_when_sent_and_its_sender_when_received() -> None:
    people = [
        {"email": "Ana@Seller.example", "role": "from"},
        {"email": "Amy@Buyer.example", "role": "to"},
        {"email": "cy@buyer.example", "role": "cc"},
        {"email": "dee@buyer.example", "role": "bcc"},
    ]
    assert counterparts("email", "outbound", people) == frozenset(
        {"amy@buyer.example", "cy@buyer.example", "dee@buyer.example"}
    )
    assert counterparts("email", "inbound", people) == frozenset({"ana@seller.example"})
    assert counterparts("email", "internal", people) == frozenset()


@pytest.mark.parametrize(
    ("subject", "key"),
    [
        ("Re: Pricing", "pricing"),
        ("RE: Fwd:  Pricing  for Q1", "pricing for q1"),
        ("AW: WG: Angebot", "angebot"),
        ("Re[2]: Pricing", "pricing"),
        ("Regarding pricing", "regarding pricing"),
        ("", ""),
        (None, ""),
    ],
)
def test_a_subject_compares_without_reply_prefixes_case_or_spaces(subject: str | None, key: str) -> None:
    assert subject_key(subject) == key
