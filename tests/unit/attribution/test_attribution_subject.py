"""The ``subject`` signal: a subject (kept by the tenant) naming one of two otherwise equal deals."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from libs.common.contracts.activities import ActivityIngestedV1
from libs.common.contracts.attribution import AttributionStatus
from services.attribution.domain.matching import attribute_activity, subject_names
from services.attribution.domain.reference import AttributionSnapshot, Deal, TenantAttributionPolicy

from .builders import email_out, snapshot

NAMES = {"deal-acme-new": "Acme - Analytics add-on", "deal-acme-exp": "Acme - Platform renewal"}


def named_snapshot() -> AttributionSnapshot:
    base = snapshot()
    return replace(base, deals=tuple(replace(d, name=NAMES.get(d.id, "")) for d in base.deals))


def with_subject(activity: ActivityIngestedV1, subject: str | None) -> ActivityIngestedV1:
    return activity.model_copy(update={"subject": subject})


def _deal(deal_id: str, name: str, account_name: str = "", account_id: str = "acc") -> Deal:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return Deal(
        deal_id, account_id, None, "discovery", False, False, created, name=name, account_name=account_name
    )


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Platform renewal - pricing", {"b": 1.0}),
        # One deal alone named, by a word that is no qualifier: named (rules 2026.12.41; was 0.5).
        ("Analytics questions", {"a": 1.0}),
        # The account's name is shared by both deals' names: it names neither.
        ("Acme catch-up", {}),
        ("", {}),
        (None, {}),
    ],
)
def test_subject_names_the_words_that_set_a_deal_apart(
    subject: str | None, expected: dict[str, float]
) -> None:
    deals = [_deal("a", "Acme - Analytics add-on"), _deal("b", "Acme - Platform renewal"), _deal("c", "")]

    assert subject_names(subject, deals) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        # The year qualifies the name: the subject says every other word setting the deal apart.
        ("RE: FW: Acme Expansion", {"x": 1.0}),
        ("Acme - Expansion 2027", {"x": 1.0}),
        # A qualifier alone counts its share of the words, as any word does.
        ("2027 budget", {"x": 0.5}),
        ("Platform rollout", {"p": 1.0}),
    ],
)
def test_a_year_or_quarter_in_a_deal_name_qualifies_it(subject: str, expected: dict[str, float]) -> None:
    deals = [_deal("x", "Acme - Expansion 2027"), _deal("p", "Acme - Platform")]

    assert subject_names(subject, deals) == expected


def test_a_plural_and_its_singular_are_one_word() -> None:
    deals = [_deal("c", "Acme - Data connectors"), _deal("i", "Acme - Integration service")]

    assert subject_names("Data connector pricing", deals) == {"c": 1.0}
    assert subject_names("Integration services scope", deals) == {"i": 1.0}
    # A word ending in "ss" is no plural.
    assert subject_names("Access", [_deal("a", "Acme - Access"), _deal("b", "Acme - Acce")]) == {"a": 1.0}


def test_deals_told_apart_by_their_year_alone_are_named_by_it() -> None:
    deals = [_deal("a", "Acme - Renewal FY26"), _deal("b", "Acme - Renewal FY27")]

    assert subject_names("Renewal FY27 quote", deals) == {"b": 1.0}
    assert subject_names("Renewal quote", deals) == {}


def test_a_subject_naming_one_of_two_equal_deals_decides_between_them() -> None:
    # cy owns neither deal, zed is no contact: only the domain finds the account, a close call.
    email = email_out("cy@seller.example", "zed@acme.com")
    without = attribute_activity(with_subject(email, None), named_snapshot(), TenantAttributionPolicy())
    named = attribute_activity(
        with_subject(email, "Re: Platform renewal - pricing"), named_snapshot(), TenantAttributionPolicy()
    )

    assert (without.status, without.deal_id, without.secondary_deal_ids) == (
        AttributionStatus.AMBIGUOUS,
        "deal-acme-new",
        ("deal-acme-exp",),
    )
    assert (named.status, named.deal_id, named.secondary_deal_ids, named.rule_path) == (
        AttributionStatus.ATTRIBUTED,
        "deal-acme-exp",
        (),
        "subject",
    )
    assert 0.55 <= named.confidence <= 0.6


def test_a_subject_never_outweighs_a_contacts_role_on_another_deal() -> None:
    # amy holds a role on deal-acme-new only; the subject names the other deal outright. The role's
    # deal stays the primary; since rules 2026.12.39 it is a close call measured as a tie, the
    # named deal surfaced beside it (it was attributed to deal-acme-new at 0.95: a person reads the
    # subject, and the role may be the stale record).
    email = with_subject(email_out("ana@seller.example", "amy@acme.com"), "Platform renewal")

    decision = attribute_activity(email, named_snapshot(), TenantAttributionPolicy())

    assert (
        decision.status,
        decision.deal_id,
        decision.secondary_deal_ids,
        decision.rule_path,
        decision.confidence,
    ) == (AttributionStatus.AMBIGUOUS, "deal-acme-new", ("deal-acme-exp",), "contact_role", 0.475)


def test_names_are_read_case_folded_and_without_accents() -> None:
    deals = [_deal("d", "Société Générale - Données clients"), _deal("s", "Société Générale - Sécurité")]
    turkish = [_deal("i", "Yıldız İnşaat - İstanbul Ofis"), _deal("a", "Yıldız İnşaat - Ankara Depo")]  # noqa: RUF001

    assert subject_names("Donnees clients - devis", deals) == {"d": 1.0}
    assert subject_names(unicodedata.normalize("NFD", "Sécurité : planning"), deals) == {"s": 1.0}
    assert subject_names("ISTANBUL OFIS teklif", turkish) == {"i": 1.0}
    assert subject_names(
        "WG: STRASSENBAU", [_deal("x", "Müller - Straßenbau"), _deal("y", "Müller - Hochbau")]
    ) == {"x": 1.0}


def test_legal_forms_are_no_words_of_a_name() -> None:
    deals = [_deal("p", "Acme Corp - Platform"), _deal("w", "ACME Corporation – Data Warehouse")]  # noqa: RUF001

    assert subject_names("ACME Corporation platform pricing", deals) == {"p": 1.0}
    assert subject_names("Acme Corp check-in", deals) == {}
    assert subject_names(
        "AW: Wartung", [_deal("w", "Müller GmbH - Wartung"), _deal("l", "Müller - Lizenzen")]
    ) == {"w": 1.0}


def test_the_accounts_name_tells_accounts_apart_not_its_deals() -> None:
    northwind = [
        _deal("r", "Northwind Traders - Renewal", "Northwind Traders", "acc-n"),
        _deal("x", "Expansion 2027", "Northwind Traders", "acc-n"),
    ]
    # A partner's deal beside a customer's one deal: the customer's name still names it.
    meeting = [
        _deal("h", "Hooli - Mobile rollout", "Hooli", "acc-h"),
        _deal("c", "Channel Partner - Reseller agreement", "Channel Partner", "acc-c"),
    ]

    assert subject_names("Northwind Traders quick question", northwind) == {}
    assert subject_names("Northwind renewal paperwork", northwind) == {"r": 1.0}
    # Hooli's deal alone is named (rules 2026.12.41: was 2/3 of its words).
    assert subject_names("Hooli rollout plan", meeting) == {"h": 1.0}


def test_a_qualifier_beside_another_deals_word_names_nothing() -> None:
    deals = [_deal("r", "Renewal"), _deal("x", "Expansion 2027")]

    assert subject_names("2027 renewal terms", deals) == {"r": 1.0}
    assert subject_names("2027 budget", deals) == {"x": 0.5}


def test_names_in_scripts_written_without_spaces_are_found_inside_the_subject() -> None:
    """Japanese and Chinese write no spaces between words, Korean writes its particles onto the
    word: a run of such a script names a deal when the deal's run is inside the subject's; one
    character alone names nothing (rules 2026.12.23)."""
    tokyo = [_deal("t", "東京オフィス拡張"), _deal("o", "大阪オフィス移転")]
    shanghai = [_deal("s", "上海工厂自动化"), _deal("b", "北京数据中心")]
    seoul = [_deal("s", "서울 사무소 확장"), _deal("b", "부산 물류센터 구축")]

    assert subject_names("Re: 東京オフィス拡張の見積もり", tokyo) == {"t": 1.0}
    assert subject_names("【至急】大阪オフィス移転について", tokyo) == {"o": 1.0}
    # Words both names share, or a piece of one, name neither.
    assert subject_names("オフィスの件", tokyo) == {}
    assert subject_names("東京の件", tokyo) == {}
    assert subject_names("关于上海工厂自动化的报价", shanghai) == {"s": 1.0}
    assert subject_names("서울 사무소 확장 견적 요청", seoul) == {"s": 1.0}
    # A particle written onto the last word ("확장을": the expansion, as object).
    assert subject_names("서울 사무소 확장을 위한 미팅", seoul) == {"s": 1.0}
    # One character is in every other subject: it names nothing.
    assert subject_names("RE: 東", [_deal("e", "東"), _deal("w", "西")]) == {}


def test_the_accounts_name_written_onto_a_deals_name_without_a_space_is_not_the_deals() -> None:
    deals = [
        _deal("t", "トヨタ東京オフィス拡張", "トヨタ", "acc-t"),
        _deal("n", "トヨタ名古屋工場", "トヨタ", "acc-t"),
    ]

    assert subject_names("東京オフィス拡張の見積もり", deals) == {"t": 1.0}
    assert subject_names("トヨタ様 ご挨拶", deals) == {}


def test_dakuten_and_handakuten_make_another_letter() -> None:
    """A voiced mark makes another kana ("バス", bus, is not "パス", pass, nor "ハス", lotus):
    read without it, the two names were one and a subject named neither. Half-width kana and a
    decomposed mark are the same letter."""
    deals = [_deal("b", "バス車両"), _deal("p", "パス車両")]

    assert subject_names("バス車両のお見積り", deals) == {"b": 1.0}
    assert subject_names("ﾊﾟｽ車両", deals) == {"p": 1.0}
    assert subject_names(unicodedata.normalize("NFD", "パス車両の件"), deals) == {"p": 1.0}
    assert subject_names("ハス車両", deals) == {}


#: Two deals of one account each, named by the account and two characters ("京都", Kyoto).
KYOTO = [_deal("k", "トヨタ 京都", "トヨタ"), _deal("o", "トヨタ 大阪", "トヨタ")]
HAINAN = [_deal("h", "华为 海南", "华为"), _deal("b", "华为 北京", "华为")]
SEOUL = [_deal("s", "서울"), _deal("b", "부산")]
#: One name written inside the other.
TOKYO = [_deal("t", "東京"), _deal("o", "東京オフィス")]


@pytest.mark.parametrize(
    ("subject", "deals", "expected"),
    [
        # "京都" (Kyoto) is written inside "東京都庁" (the Tokyo Metropolitan Government).
        ("東京都庁向け見積", KYOTO, {}),
        # "海南" (Hainan) is written across "上海" and "南京路" (Shanghai, Nanjing Road).
        ("上海南京路门店报价", HAINAN, {}),
        # Two characters set apart by a change of script, or standing alone, are a word.
        ("京都の件", KYOTO, {"k": 1.0}),
        ("Re: 京都 見積", KYOTO, {"k": 1.0}),
        ("北京 - 会议纪要", HAINAN, {"b": 1.0}),
        # Chinese changes no script: two characters inside a run could be a compound's.
        ("关于北京的报价", HAINAN, {}),
        # A Korean word starts its phrase, its particle written on: "서울을" names "서울".
        ("서울을 위한 견적", SEOUL, {"s": 1.0}),
        ("경서울 견적", SEOUL, {}),
        # The shorter name read inside the longer one, at the same place, is the longer one's.
        ("東京オフィスの件", TOKYO, {"o": 1.0}),
        # ... but where it is written on its own it still names its deal.
        ("東京の件と東京オフィスの件", TOKYO, {"t": 1.0, "o": 1.0}),
        # Three characters or more are named inside a longer run.
        ("東京都庁向け見積", [_deal("t", "東京都"), _deal("o", "大阪府")], {"t": 1.0}),
    ],
)
def test_a_short_name_in_a_script_without_spaces_is_named_only_where_it_is_a_word(
    subject: str, deals: list[Deal], expected: dict[str, float]
) -> None:
    """Two characters of Han are inside every other compound ("京都" in "東京都庁"): such a name
    is named where it stands apart, by the run's edges or a change of script (kana after it);
    a Korean one where its phrase starts. A name read inside another candidate's longer name at
    the same place is the longer one's (rules 2026.12.27)."""
    assert subject_names(subject, deals) == expected
