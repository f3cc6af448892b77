"""Which activities a deal change re-decides, and that a person's override survives every one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.attribution.domain.decision import next_version
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import (
    CurrentAttribution,
    Deal,
    ManualOverride,
    TenantAttributionPolicy,
)
from services.attribution.domain.reference_index import ReferenceIndex, resolve_references, snapshot_for
from services.attribution.domain.rematch import (
    RematchWindow,
    day_start,
    deal_rematch_window,
    identity_rematch_window,
    merged_windows,
    narrowing_domains,
    windows_as_parameters,
    windows_from_parameters,
)

from .builders import ACCOUNTS, CONTACTS, DEALS, MEMBERSHIPS, REPS, WHEN, email_out

NOW = datetime(2026, 11, 20, tzinfo=UTC)
POLICY = TenantAttributionPolicy()
OPEN = Deal(
    "deal-x", "acc-acme", "rep-ana", "discovery", False, False, datetime(2026, 3, 1, tzinfo=UTC), None,
    (("con-amy", "champion"),),
)  # fmt: skip
CLOSED = replace(OPEN, is_closed=True, stage="closed_lost", closed_at=datetime(2026, 5, 1, tzinfo=UTC))


def test_a_new_deal_re_decides_its_account_and_contacts_over_its_life_plus_grace() -> None:
    assert deal_rematch_window(None, CLOSED, POLICY, NOW) == RematchWindow(
        frozenset({"acc-acme"}),
        frozenset({"con-amy"}),
        datetime(2026, 2, 15, tzinfo=UTC),
        datetime(2026, 5, 15, tzinfo=UTC),
    )


def test_reopening_a_deal_re_decides_up_to_now_and_the_window_is_bounded() -> None:
    window = deal_rematch_window(CLOSED, OPEN, POLICY, NOW, max_days=100)
    assert window == RematchWindow(
        frozenset({"acc-acme"}), frozenset({"con-amy"}), NOW - timedelta(days=100), None
    )


def test_a_new_role_re_decides_the_new_contact_and_the_account() -> None:
    with_role = replace(CLOSED, contacts=(*CLOSED.contacts, ("con-al", "economic_buyer")))
    window = deal_rematch_window(CLOSED, with_role, POLICY, NOW)
    assert window is not None
    assert (window.account_ids, window.contact_ids) == (frozenset({"acc-acme"}), frozenset({"con-al"}))


def test_another_account_re_decides_both_accounts() -> None:
    moved = replace(CLOSED, account_id="acc-globex")
    window = deal_rematch_window(CLOSED, moved, POLICY, NOW)
    assert window is not None
    assert window.account_ids == frozenset({"acc-acme", "acc-globex"})


def test_a_team_change_re_decides_from_the_start_of_its_day_in_the_tenants_time() -> None:
    """A membership dated 3 November changes the team of activities from local midnight: in
    Berlin that is 23:00 UTC the day before, in Los Angeles 08:00 UTC (07:00 in summer time)."""
    day = date(2026, 11, 3)
    assert day_start(day, "UTC") == datetime(2026, 11, 3, tzinfo=UTC)
    assert day_start(day, "Europe/Berlin") == datetime(2026, 11, 2, 23, tzinfo=UTC)
    assert day_start(day, "America/Los_Angeles") == datetime(2026, 11, 3, 8, tzinfo=UTC)
    assert day_start(date(2026, 3, 9), "America/Los_Angeles") == datetime(2026, 3, 9, 7, tzinfo=UTC)


def test_a_new_stage_amount_or_role_name_re_decides_nothing() -> None:
    assert deal_rematch_window(OPEN, replace(OPEN, stage="proposal"), POLICY, NOW) is None
    assert deal_rematch_window(OPEN, replace(OPEN, contacts=(("con-amy", "buyer"),)), POLICY, NOW) is None
    assert deal_rematch_window(OPEN, replace(OPEN), POLICY, NOW) is None


def test_a_lost_role_re_decides_the_contact_and_the_account() -> None:
    """Mail decided by con-amy's role (rules 2026.12.14): without it, it may be another deal's."""
    window = deal_rematch_window(CLOSED, replace(CLOSED, contacts=()), POLICY, NOW)
    assert window == RematchWindow(
        frozenset({"acc-acme"}),
        frozenset({"con-amy"}),
        datetime(2026, 2, 15, tzinfo=UTC),
        datetime(2026, 5, 15, tzinfo=UTC),
    )


def test_a_role_lost_by_a_contact_now_of_another_account_went_with_her() -> None:
    """Amy took a new job (her contact now of another account): her role on deal-x left with her,
    and the mail of her time at Acme stays as decided; a role gained alongside still counts."""
    assert deal_rematch_window(CLOSED, replace(CLOSED, contacts=()), POLICY, NOW, left={"con-amy"}) is None
    moved = replace(CLOSED, contacts=(("con-al", "buyer"),))
    window = deal_rematch_window(CLOSED, moved, POLICY, NOW, left={"con-amy"})
    assert window is not None
    assert window.contact_ids == frozenset({"con-al"})


def test_a_new_name_re_decides_the_account_over_the_deals_life() -> None:
    """A subject naming the deal (or its old name) may decide otherwise (rules 2026.12.14)."""
    window = deal_rematch_window(CLOSED, replace(CLOSED, name="Acme - Expansion 2027"), POLICY, NOW)
    assert window is not None
    assert (window.account_ids, window.contact_ids, window.until) == (
        frozenset({"acc-acme"}),
        frozenset(),
        datetime(2026, 5, 15, tzinfo=UTC),
    )


def _index() -> ReferenceIndex:
    index = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    for rep in REPS:
        index.put_rep(rep)
    for membership in MEMBERSHIPS:
        index.add_membership(membership)
    for account in ACCOUNTS:
        index.put_account(account)
    for contact in CONTACTS:
        index.put_contact(contact)
    for deal in DEALS:
        index.put_deal(deal)
    return index


def _triggers(days: int, contact: str) -> dict[str, tuple[Deal | None, Deal]]:
    """Every kind of deal change that re-decides activities, around the activity time."""
    new = Deal(
        "deal-new", "acc-acme", "rep-bo", "discovery", False, False, WHEN - timedelta(days=days), None,
        ((contact, "champion"),),
    )  # fmt: skip
    held = next(d for d in DEALS if d.id == "deal-acme-old")
    return {
        "created": (None, new),
        "reopened": (held, replace(held, is_closed=False, closed_at=None, stage="discovery")),
        "role": (new, replace(new, contacts=(*new.contacts, ("con-ann", "decision_maker")))),
        "account": (new, replace(new, account_id="acc-globex")),
        "dates": (new, replace(new, created_at=WHEN - timedelta(days=days + 30))),
    }


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.integers(0, 60),
    st.sampled_from(["con-amy", "con-al", "con-gia"]),
    st.sampled_from(["deal-acme-exp", "deal-globex", None]),
    st.sampled_from(["rep-cy", None]),
)
def test_an_override_survives_every_rematch_trigger(
    days: int, contact: str, override_deal: str | None, override_rep: str | None
) -> None:
    mail = email_out("ana@seller.example", "amy@acme.com", "al@acme.com")
    index = _index()
    index.overrides[mail.activity_id] = ManualOverride(
        deal_id=override_deal, rep_id=override_rep, account_id=None if override_deal else "acc-acme"
    )
    first = attribute_activity(mail, snapshot_for(mail, index), POLICY)
    current = CurrentAttribution(
        version=3,
        status=first.status,
        rep_id=first.rep_id,
        team_id=first.team_id,
        account_id=first.account_id,
        deal_id=first.deal_id,
        confidence=first.confidence,
        overridden=True,
    )
    assert (first.overridden, first.deal_id) == (True, override_deal)
    for name, (before, after) in _triggers(days, contact).items():
        window = deal_rematch_window(before, after, POLICY, NOW)
        assert window is not None, name
        index.put_deal(after)
        resolved = resolve_references(mail, index)
        again = attribute_activity(resolved, snapshot_for(resolved, index), POLICY)
        assert (again.overridden, again.deal_id, again.status) == (True, override_deal, first.status), name
        assert next_version(current, again) is None, name


def test_a_domain_gained_under_another_held_domain_narrows_it() -> None:
    """A subsidiary's ``eu.acme.com`` under ``acme.com``, or deeper: its mail is re-decided; a
    domain under none held, or one held itself (a duplicate account), narrows nothing."""
    held = {"acme.com", "globex.com", "eu.acme.com"}
    gained = ["eu.acme.com", "sales.eu.acme.com", "initech.com", "globex.com", "acme.com.br"]
    assert narrowing_domains(gained, held) == {"eu.acme.com", "sales.eu.acme.com"}
    assert narrowing_domains([], held) == frozenset()


def test_a_contacts_new_identities_re_decide_their_activities_of_the_last_400_days() -> None:
    """A new contact, or an address or number added to one: every activity of the re-match reach
    with a participant holding it, whatever it was decided; nothing gained, nothing re-decided."""
    assert identity_rematch_window({"bo@globex.com", "+12125550100"}, NOW) == RematchWindow(
        frozenset(),
        frozenset(),
        NOW - timedelta(days=400),
        None,
        frozenset({"bo@globex.com", "+12125550100"}),
    )
    window = identity_rematch_window(["bo@globex.com"], NOW, max_days=30)
    assert window is not None
    assert window.since == NOW - timedelta(days=30)
    assert identity_rematch_window(set(), NOW) is None


def test_windows_travel_through_a_jobs_json_parameters_unchanged() -> None:
    """The windows a batch past ``ATTRIBUTION_REMATCH_LIMIT`` hands to its ``rematch`` job are the
    ones the job re-decides: open-ended or closed, accounts and contacts as they were."""
    windows = [
        RematchWindow(frozenset({"acc-2", "acc-1"}), frozenset({"con-1"}), NOW - timedelta(days=14), None),
        RematchWindow(frozenset(), frozenset({"con-9"}), NOW - timedelta(days=400), NOW),
    ]
    sent = windows_as_parameters(windows)
    assert sent[0] == {
        "accounts": ["acc-1", "acc-2"],
        "contacts": ["con-1"],
        "since": "2026-11-06T00:00:00+00:00",
        "until": None,
    }
    assert windows_from_parameters(orjson.loads(orjson.dumps(sent))) == windows
    # A contact's new identities travel too; a job queued before them reads none.
    gained = [
        RematchWindow(frozenset(), frozenset(), NOW - timedelta(days=400), None, frozenset({"b@x.com", "+1"}))
    ]
    sent = windows_as_parameters(gained)
    assert sent[0]["identities"] == ["+1", "b@x.com"]
    assert windows_from_parameters(orjson.loads(orjson.dumps(sent))) == gained


def test_a_coalesced_jobs_windows_of_one_deal_are_re_decided_once() -> None:
    """A queued ``rematch`` job holds the windows of every batch merged into it (twenty close-date
    pushes on one deal): those of the same accounts and contacts that overlap or touch are one
    window, an open end wins; others (another account, a gap) stay apart; duplicates go."""
    acme, globex = frozenset({"acc-1"}), frozenset({"acc-2"})
    day = timedelta(days=1)
    windows = [
        RematchWindow(acme, frozenset(), NOW - 30 * day, NOW - 10 * day),
        RematchWindow(acme, frozenset(), NOW - 20 * day, NOW - 5 * day),
        RematchWindow(acme, frozenset(), NOW - 20 * day, NOW - 5 * day),
        RematchWindow(acme, frozenset(), NOW - 5 * day, None),
        RematchWindow(acme, frozenset(), NOW - 90 * day, NOW - 60 * day),
        RematchWindow(globex, frozenset(), NOW - 25 * day, NOW - 10 * day),
        RematchWindow(acme, frozenset({"con-1"}), NOW - 25 * day, NOW - 10 * day),
    ]
    assert merged_windows(windows) == [
        RematchWindow(acme, frozenset(), NOW - 90 * day, NOW - 60 * day),
        RematchWindow(acme, frozenset(), NOW - 30 * day, None),
        RematchWindow(acme, frozenset({"con-1"}), NOW - 25 * day, NOW - 10 * day),
        RematchWindow(globex, frozenset(), NOW - 25 * day, NOW - 10 * day),
    ]
    assert merged_windows([]) == []


def test_a_coalesced_jobs_windows_of_new_identities_merge_only_with_the_same_identities() -> None:
    day = timedelta(days=1)
    bo, dee = frozenset({"bo@globex.com"}), frozenset({"dee@globex.com"})
    windows = [
        RematchWindow(frozenset(), frozenset(), NOW - 400 * day, None, bo),
        RematchWindow(frozenset(), frozenset(), NOW - 399 * day, None, bo),
        RematchWindow(frozenset(), frozenset(), NOW - 399 * day, None, dee),
    ]
    assert merged_windows(windows) == [
        RematchWindow(frozenset(), frozenset(), NOW - 400 * day, None, bo),
        RematchWindow(frozenset(), frozenset(), NOW - 399 * day, None, dee),
    ]
