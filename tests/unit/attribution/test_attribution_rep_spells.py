"""A rep who leaves and comes back: her identities credit her only in her active spells."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.contracts.activities import ActivityIngestedV1
from services.attribution.domain.matching import attribute_activity
from services.attribution.domain.reference import Contact, Deal, Rep, TenantAttributionPolicy
from services.attribution.domain.reference_index import ReferenceIndex, attribute_from_index, snapshot_for
from services.attribution.domain.reps import Absence, absences_on_return, departure_marker, in_spell

from .builders import WHEN, email_out

ANA = "ana@seller.example"
POLICY = TenantAttributionPolicy()


def _at(hours: int) -> datetime:
    return WHEN + timedelta(hours=hours)


def test_a_spell_away_runs_from_when_she_left_up_to_her_return() -> None:
    gap = Absence("rep-a", _at(0), _at(10))
    assert [in_spell(_at(h), None, [gap]) for h in (-1, 0, 9, 10)] == [True, False, False, True]
    # Gone again since hour 20: before it only, and outside the earlier gap.
    assert [in_spell(_at(h), _at(20), [gap]) for h in (-1, 5, 19, 20)] == [True, False, True, False]


def test_a_return_records_a_gap_for_each_identity_she_held_when_she_left() -> None:
    held = {ANA: _at(0), "+14155550001": _at(0), "ana@old.example": _at(0)}
    assert absences_on_return("rep-a", held, _at(10)) == {
        identity: Absence("rep-a", _at(0), _at(10)) for identity in held
    }
    # A departure not before the return (a version re-sent) leaves no gap.
    assert absences_on_return("rep-a", {ANA: _at(10)}, _at(10)) == {}


def test_a_rep_who_held_nothing_when_she_left_has_her_gap_and_so_do_addresses_she_returns_with() -> None:
    """Her departure kept under her marker; an address she lists on her return and did not hold
    when she left is not hers in the gap either (from her last departure)."""
    held = {departure_marker("rep-a"): _at(0), "ana@old.example": _at(5)}
    assert absences_on_return("rep-a", held, _at(10), [ANA, "ana@old.example"]) == {
        "rep:rep-a": Absence("rep-a", _at(0), _at(10)),
        "ana@old.example": Absence("rep-a", _at(5), _at(10)),
        ANA: Absence("rep-a", _at(5), _at(10)),
    }
    # No departure before the return: no gap, for what she lists either.
    assert absences_on_return("rep-a", {}, _at(10), [ANA]) == {}


class _Stored:
    """What the repository keeps for Ana's address as she leaves and comes back:
    ``ref_rep_former_identities.until`` while she is gone, ``ref_rep_absences`` once back."""

    def __init__(self) -> None:
        self.until: datetime | None = None
        self.absences: list[Absence] = []

    def leave(self, at: datetime) -> None:
        self.until = at

    def come_back(self, at: datetime) -> None:
        assert self.until is not None
        self.absences.extend(absences_on_return("rep-a", {ANA: self.until}, at).values())
        self.until = None

    def index(self) -> ReferenceIndex:
        """The batch's index as the loader fills it (``reference_loader.reps_by_name``)."""
        index = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
        if self.until is None:
            index.put_rep(Rep("rep-a", "Ana Lopez", (ANA,)))
        else:
            index.put_rep(Rep("rep-a", "Ana Lopez", (), (), False))
            index.departed_addresses[ANA] = [("rep-a", self.until)]
        if self.absences:
            index.absences[ANA] = list(self.absences)
        index.put_rep(Rep("rep-c", "Cy Diaz", ("cy@seller.example",)))
        index.put_contact(Contact("con-1", ("amy@acme.com",), (), "acc-1"))
        index.put_deal(
            Deal("deal-1", "acc-1", "rep-c", "open", False, False, WHEN, None, (("con-1", "champion"),))
        )
        return index


def _spells(changes: list[int], asked: int) -> tuple[_Stored, bool]:
    """Ana leaving and coming back in turn at ``changes`` (hours): what is stored, and whether she
    was active at ``asked``."""
    hours = sorted(changes)
    stored = _Stored()
    for turn, hour in enumerate(hours):
        (stored.leave if turn % 2 == 0 else stored.come_back)(_at(hour))
    return stored, sum(1 for hour in hours if hour <= asked) % 2 == 0


def _assert_hers_when_active(sent: ActivityIngestedV1, index: ReferenceIndex, active_then: bool) -> None:
    """``sent`` is Ana's (from her) when she was active then, else the deal owner's (Cy's), on the
    indexed path and on the snapshot's alike."""
    decision = attribute_from_index(sent, index, POLICY)
    expected = ("rep-a", "from") if active_then else ("rep-c", "deal_owner")
    assert (decision.rep_id, decision.explanation["rep"]["via"], decision.deal_id) == (*expected, "deal-1")
    assert attribute_activity(sent, snapshot_for(sent, index), POLICY) == decision


@settings(max_examples=200, deadline=None)
@given(
    changes=st.lists(st.integers(min_value=1, max_value=2_000), min_size=1, max_size=6, unique=True),
    asked=st.integers(min_value=-10, max_value=2_010),
)
def test_her_address_is_hers_exactly_in_her_active_spells_however_often_she_leaves(
    changes: list[int], asked: int
) -> None:
    """Ana leaves and comes back in turn at ``changes`` (hours); her mail at ``asked`` is hers when
    she was active then, else the deal's owner's (Cy's), on both decision paths."""
    stored, active_then = _spells(changes, asked)
    sent = email_out(ANA, "amy@acme.com", at=_at(asked))
    index = stored.index()
    _assert_hers_when_active(sent, index, active_then)


def test_a_gap_of_another_rep_or_another_address_changes_nothing() -> None:
    stored = _Stored()
    index = stored.index()
    index.absences[ANA] = [Absence("rep-b", _at(0), _at(10))]
    index.absences["ana@old.example"] = [Absence("rep-a", _at(0), _at(10))]
    decision = attribute_from_index(email_out(ANA, "amy@acme.com", at=_at(5)), index, POLICY)
    assert decision.rep_id == "rep-a"


#: Addresses no source lists that name Ana: the tenant's mapping, and her name's convention.
MAPPED = "ana.l@seller.example"
NAMED = "ana.lopez@seller.example"


def _alias_index(stored: _Stored) -> ReferenceIndex:
    """``stored.index()`` with the tenant mapping ``MAPPED`` to Ana, and her departure and gaps
    as the loader reads them for such an address (``reference_loader.departures``)."""
    index = stored.index()
    index.mapped_addresses = {MAPPED: "rep-a"}
    if stored.until is not None:
        index.rep_left["rep-a"] = stored.until
    if stored.absences:
        index.rep_absences["rep-a"] = list(stored.absences)
    return index


@settings(max_examples=200, deadline=None)
@given(
    changes=st.lists(st.integers(min_value=1, max_value=2_000), min_size=1, max_size=6, unique=True),
    asked=st.integers(min_value=-10, max_value=2_010),
    alias=st.sampled_from([MAPPED, NAMED]),
)
def test_an_alias_no_source_lists_is_hers_exactly_in_her_active_spells(
    changes: list[int], asked: int, alias: str
) -> None:
    """Ana leaves and comes back in turn at ``changes`` (hours); mail from her mapped or
    name-convention address at ``asked`` is hers when she was active then, else the deal's
    owner's (Cy's), as mail from her own address is, on both decision paths."""
    stored, active_then = _spells(changes, asked)
    sent = email_out(alias, "amy@acme.com", at=_at(asked))
    index = _alias_index(stored)
    _assert_hers_when_active(sent, index, active_then)
    assert index.rep_by_name_address(alias, _at(asked)) == ("rep-a" if active_then else None)
    # Whatever the time, the loader reads her (her memberships, her spells).
    assert index.reps_by_name_address(alias) == ("rep-a",)


def test_a_name_one_rep_held_before_she_left_and_another_holds_now_is_each_ones_in_turn() -> None:
    """Ana Lopez left at hour 10; Alvaro Lopez, hired, shares ``a.lopez@``: before hour 10 the
    name is both reps' and names nobody, from then on it is his. Another rep's departure or
    gap changes nothing for Ana's mapped address."""
    stored = _Stored()
    stored.leave(_at(10))
    index = _alias_index(stored)
    index.put_rep(Rep("rep-v", "Alvaro Lopez", ("alvaro@seller.example",)))
    assert index.reps_by_name_address("a.lopez@seller.example") == ("rep-a", "rep-v")
    assert [index.rep_by_name_address("a.lopez@seller.example", _at(h)) for h in (9, 10)] == [None, "rep-v"]
    assert index.rep_by_name_address("a.lopez@seller.example") is None

    back = _alias_index(_Stored())
    back.rep_left["rep-c"] = _at(0)
    back.rep_absences["rep-c"] = [Absence("rep-c", _at(0), _at(10))]
    assert back.rep_by_name_address(MAPPED, _at(5)) == "rep-a"


def test_a_departed_reps_name_is_not_read_while_a_live_rep_holds_the_same_name() -> None:
    """HubSpot owner 111 Ana Lopez is archived at hour 10 and re-added as owner 222: mail to
    ``ana.lopez@`` before hour 10 is 222's (not both, naming nobody), as it was before departed
    names were read. Without a live namesake, the departed name is hers before she left only;
    a name that only shares a mailbox with hers (Alvaro's ``a.lopez@``) leaves it hers too."""
    index = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    index.put_departed_name("111", "Ana Lopez")
    index.rep_left["111"] = _at(10)
    assert index.reps_by_name_address(NAMED) == ("111",)
    assert [index.rep_by_name_address(NAMED, _at(h)) for h in (-100, 9, 10)] == ["111", "111", None]

    index.put_rep(Rep("222", "Ana López", (ANA,)))
    assert index.reps_by_name_address(NAMED) == ("222",)
    assert [index.rep_by_name_address(NAMED, _at(h)) for h in (-100, 9, 10)] == ["222"] * 3

    shared = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    shared.put_departed_name("111", "Ana Lopez")
    shared.rep_left["111"] = _at(10)
    shared.put_rep(Rep("rep-v", "Alvaro Lopez", ("alvaro@seller.example",)))
    assert shared.reps_by_name_address("a.lopez@seller.example") == ("111", "rep-v")
    assert shared.reps_by_name_address(NAMED) == ("111",)
    # Her person through an alias: the live rep of the same name is the same person.
    merged = ReferenceIndex(internal_domains=frozenset({"seller.example"}), rep_aliases={"111": "222"})
    merged.put_rep(Rep("222", "Ana Lopez", (ANA,)))
    merged.put_departed_name("111", "Ana Lopez")
    assert merged.reps_by_name_address(NAMED) == ("222",)
    # Umlauts: the departed "Jürgen Müller" derives ``jurgen.muller@`` and ``juergen.mueller@``;
    # the re-added "Jurgen Muller" holds one spelling of the name whole: the name is his.
    umlaut = ReferenceIndex(internal_domains=frozenset({"seller.example"}))
    umlaut.put_departed_name("111", "Jürgen Müller")
    umlaut.rep_left["111"] = _at(10)
    umlaut.put_rep(Rep("222", "Jurgen Muller", ("jm@seller.example",)))
    assert umlaut.reps_by_name_address("jurgen.muller@seller.example") == ("222",)
    assert umlaut.rep_by_name_address("jurgen.muller@seller.example", _at(5)) == "222"
    # The same name: the departed one is not read, in the spelling he does not hold either.
    assert umlaut.reps_by_name_address("juergen.mueller@seller.example") == ()
