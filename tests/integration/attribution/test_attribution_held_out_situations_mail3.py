"""Held-out mail and meeting situations, a third set, through the real API, as a sales manager
preparing 1:1s reads them.

What the generator and the first two held-out files (whose helpers this reuses) do not produce: a
calendar's own invitation mail sent from the organizer's address (Google Calendar's "Invitation:
... @ <date, time>", its updates and cancellations, in English and German; Outlook's invitation
and cancellation carrying the event's iCalendar UID) beside people writing "Invitation:" and
"Einladung:" themselves; deal names in scripts written without spaces (Japanese, Chinese) or with
particles written onto the word (Korean), kana whose voiced mark makes another word; Gong's
assistant on the invite. The CRM through ``POST /v1/crm/sync``, the activities through
``POST /v1/events`` (subjects kept), each answer read back from ``GET /v1/activities/{id}``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_held_out_situations_mail import (
    ANA,
    REPS,
    SAM,
    TENANT,
    _account,
    _contact,
    _deal,
    _mail,
    _meeting,
    _run,
)
from tests.integration.attribution.test_attribution_held_out_situations_mail2 import LATER

KIM, UWE = "kim@kaiju.example", "uwe@ueberland.example"
#: Gong's assistant: one address per customer at assistant.gong.io (help.gong.io).
GONG = "seller-example@assistant.gong.io"


def _world() -> list[dict[str, Any]]:
    """The labelled CRM: one account (one domain) per situation; of two deals, the second newer."""
    return [
        *REPS,
        # C: one open deal each, so any mail counted as the buyer's or the AE's lands on it.
        _account("acc-c1", "Kaiju Foods", "kaiju.example"),
        _contact("con-kim", "acc-c1", KIM),
        _deal("deal-c1", "acc-c1", "Kaiju Foods - Cold chain", "con-kim"),
        _account("acc-c2", "Überland Logistik", "ueberland.example"),
        _contact("con-uwe", "acc-c2", UWE),
        _deal("deal-c2", "acc-c2", "Überland - Wartung", "con-uwe"),
        # J1: Japanese deal names, no account name in them.
        _account("acc-j1", "日本商事", "nihon-shoji.example"),
        _contact("con-sato", "acc-j1", "sato@nihon-shoji.example"),
        _deal("deal-j1-tokyo", "acc-j1", "東京オフィス拡張", "con-sato"),
        _deal("deal-j1-osaka", "acc-j1", "大阪オフィス移転", "con-sato", created=LATER),
        # J2: the account's name written onto each deal's name, no space between.
        _account("acc-j2", "トヨタ", "toyota-ex.example"),
        _contact("con-ito", "acc-j2", "ito@toyota-ex.example"),
        _deal("deal-j2-tokyo", "acc-j2", "トヨタ東京オフィス拡張", "con-ito"),
        _deal("deal-j2-nagoya", "acc-j2", "トヨタ名古屋工場", "con-ito", created=LATER),
        # J3: two names one voiced mark apart ("バス", bus; "パス", pass).
        _account("acc-j3", "関東交通", "kanto-kotsu.example"),
        _contact("con-abe", "acc-j3", "abe@kanto-kotsu.example"),
        _deal("deal-j3-bus", "acc-j3", "バス車両", "con-abe"),
        _deal("deal-j3-pass", "acc-j3", "パス車両", "con-abe", created=LATER),
        # Z: Chinese.
        _account("acc-z", "华东制造", "huadong.example"),
        _contact("con-wang", "acc-z", "wang@huadong.example"),
        _deal("deal-z-sh", "acc-z", "上海工厂自动化", "con-wang"),
        _deal("deal-z-bj", "acc-z", "北京数据中心", "con-wang", created=LATER),
        # K: Korean, words spaced, a particle written onto the last one.
        _account("acc-k", "한빛전자", "hanbit.example"),
        _contact("con-kang", "acc-k", "kang@hanbit.example"),
        _deal("deal-k-seoul", "acc-k", "서울 지사 확장", "con-kang"),
        _deal("deal-k-busan", "acc-k", "부산 지사 이전", "con-kang", created=LATER),
    ]


async def test_calendar_invitation_mail_is_the_calendars_not_the_organizers_email(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    uid = "040000008200E00074C5B7101A82E00800000000B0D6A1C3"
    mail = [
        # Google Calendar's mail from the AE's own address, as it writes its subjects.
        _mail(
            "g-invite",
            ANA,
            [KIM],
            "Invitation: Kaiju weekly @ Tue Nov 3, 2026 10am - 11am (PST) (kim@kaiju.example)",
        ),
        _mail(
            "g-updated",
            ANA,
            [KIM],
            "Updated invitation: Kaiju weekly @ Tue Nov 3, 2026 10:30am - 11:30am (PST)",
        ),
        _mail(
            "g-note",
            ANA,
            [KIM],
            "Updated invitation with note: Kaiju weekly @ Weekly from 10am to 11am on Tuesday (PST) (kim@kaiju.example)",
        ),
        _mail(
            "g-canceled",
            ANA,
            [KIM],
            "Canceled event: Kaiju weekly @ Tue Nov 3, 2026 10am - 11am (PST) (kim@kaiju.example)",
        ),
        _mail("g-all-day", ANA, [KIM], "Invitation: Kaiju site visit @ Thu Nov 5, 2026 (kim@kaiju.example)"),
        _mail(
            "g-de",
            ANA,
            [UWE],
            "Einladung: Wartung @ Di. 3. Nov. 2026 10:00 - 11:00 (MEZ) (uwe@ueberland.example)",
        ),
        _mail(
            "g-de-updated",
            ANA,
            [UWE],
            "Aktualisierte Einladung: Wartung @ Di 10. Nov. 17:00 \u2013 18:00 (Uwe Brandt)",
        ),
        # Outlook's: the invitation is the meeting's title, the cancellation "Canceled:"; the
        # connector sends the event's iCalendar UID with them.
        {**_mail("o-invite", ANA, [KIM], "Kaiju weekly"), "ical_uid": uid},
        {**_mail("o-canceled", ANA, [KIM], "Canceled: Kaiju weekly"), "ical_uid": uid},
        # People writing the same words.
        _mail("p-buyer-summit", KIM, [ANA], "Invitation: join our partner summit"),
        _mail("p-ae-dinner", ANA, [KIM], "Invitation: executive dinner @ 7pm - 10pm at our office"),
        _mail("p-buyer-de", UWE, [ANA], "Einladung: Partnertag @ Berlin"),
        _mail("p-ae-canceled", ANA, [UWE], "Canceled: the on-site visit, let's do a call"),
        _mail("p-forward", ANA, [KIM], "Fwd: Invitation: Kaiju weekly @ Tue Nov 3, 2026 10am - 11am (PST)"),
        # The meeting itself, from the calendar.
        {**_meeting("m-weekly", ANA, [KIM], "Kaiju weekly"), "ical_uid": uid},
    ]

    found = await _run(kafka_settings, database_settings, db_engine, _world(), mail)

    calendar: tuple[str, str | None, list[str], str | None] = ("excluded", None, [], "rep-ana")
    assert found == {
        "g-invite": calendar,
        "g-updated": calendar,
        "g-note": calendar,
        "g-canceled": calendar,
        "g-all-day": calendar,
        "g-de": calendar,
        "g-de-updated": calendar,
        "o-invite": calendar,
        "o-canceled": calendar,
        "p-buyer-summit": ("attributed", "deal-c1", [], "rep-ana"),
        "p-ae-dinner": ("attributed", "deal-c1", [], "rep-ana"),
        "p-buyer-de": ("attributed", "deal-c2", [], "rep-ana"),
        "p-ae-canceled": ("attributed", "deal-c2", [], "rep-ana"),
        "p-forward": ("attributed", "deal-c1", [], "rep-ana"),
        "m-weekly": ("attributed", "deal-c1", [], "rep-ana"),
    }
    # Stored as automated: of the 14 emails, the calendar's 9; the people's 5 and the meeting count.
    stored = await rows(
        db_engine,
        "SELECT kind, automated, count(*) FROM activities WHERE tenant_id = :t GROUP BY 1, 2 ORDER BY 1, 2",
        {"t": TENANT},
    )
    assert stored == [("email", False, 5), ("email", True, 9), ("meeting", False, 1)]


async def test_deal_names_in_scripts_written_without_spaces(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    sato, ito, abe, wang, kang = (
        "sato@nihon-shoji.example",
        "ito@toyota-ex.example",
        "abe@kanto-kotsu.example",
        "wang@huadong.example",
        "kang@hanbit.example",
    )
    mail = [
        _mail("j1-tokyo", sato, [ANA], "Re: 東京オフィス拡張の見積もり"),
        _mail("j1-osaka", ANA, [sato], "【ご確認】大阪オフィス移転のスケジュール"),
        _mail("j1-generic", ANA, [sato], "ご挨拶"),
        # A piece of a name, or a single character of it, names nothing.
        _mail("j1-piece", ANA, [sato], "オフィスの件"),
        _mail("j2-tokyo", ANA, [ito], "東京オフィス拡張の件"),
        _mail("j2-account", ito, [ANA], "トヨタ様 ご挨拶"),
        _mail("j3-pass", abe, [ANA], "パス車両のお見積り"),
        _mail("j3-bus-halfwidth", ANA, [abe], "ﾊﾞｽ車両 納期"),
        _mail("z-sh", wang, [ANA], "关于上海工厂自动化的报价"),
        _mail("z-bj", ANA, [wang], "北京数据中心 - 会议纪要"),
        _mail("k-seoul", kang, [ANA], "서울 지사 확장을 위한 견적 요청"),
        _mail("k-busan", ANA, [kang], "부산 지사 이전 일정"),
        _mail("k-generic", ANA, [kang], "지사 관련 문의"),
    ]

    found = await _run(kafka_settings, database_settings, db_engine, _world(), mail)

    assert found == {
        "j1-tokyo": ("attributed", "deal-j1-tokyo", [], "rep-ana"),
        "j1-osaka": ("attributed", "deal-j1-osaka", [], "rep-ana"),
        # Nothing named: a close call, the newer first.
        "j1-generic": ("ambiguous", "deal-j1-osaka", ["deal-j1-tokyo"], "rep-ana"),
        "j1-piece": ("ambiguous", "deal-j1-osaka", ["deal-j1-tokyo"], "rep-ana"),
        # The account's name written onto the deal's: the rest of it names the deal.
        "j2-tokyo": ("attributed", "deal-j2-tokyo", [], "rep-ana"),
        "j2-account": ("ambiguous", "deal-j2-nagoya", ["deal-j2-tokyo"], "rep-ana"),
        "j3-pass": ("attributed", "deal-j3-pass", [], "rep-ana"),
        "j3-bus-halfwidth": ("attributed", "deal-j3-bus", [], "rep-ana"),
        "z-sh": ("attributed", "deal-z-sh", [], "rep-ana"),
        "z-bj": ("attributed", "deal-z-bj", [], "rep-ana"),
        "k-seoul": ("attributed", "deal-k-seoul", [], "rep-ana"),
        "k-busan": ("attributed", "deal-k-busan", [], "rep-ana"),
        # "지사" (branch) is in both names: it names neither.
        "k-generic": ("ambiguous", "deal-k-busan", ["deal-k-seoul"], "rep-ana"),
    }


async def test_gongs_assistant_on_the_invite_is_nobody(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    meetings = [
        _meeting("b-customer", ANA, [KIM, GONG], "Kaiju weekly"),
        _meeting("b-internal", ANA, [SAM, GONG], "Pipeline review: Kaiju"),
        _meeting("b-alone", ANA, [GONG], "Prep"),
    ]

    found = await _run(kafka_settings, database_settings, db_engine, _world(), meetings)

    assert found == {
        "b-customer": ("attributed", "deal-c1", [], "rep-ana"),
        "b-internal": ("internal", None, [], "rep-ana"),
        "b-alone": ("internal", None, [], "rep-ana"),
    }
    # Gong's assistant is stored on none of them.
    stored = await rows(
        db_engine,
        "SELECT count(*) FROM activities WHERE tenant_id = :t AND payload::text LIKE '%assistant.gong.io%'",
        {"t": TENANT},
    )
    assert stored == [(0,)]
