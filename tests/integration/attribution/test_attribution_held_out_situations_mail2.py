"""More held-out mail and meeting situations, through the real API, as a sales manager preparing
1:1s and a RevOps admin read them.

A second labelled world that neither the evaluation generator nor the first held-out file
(``test_attribution_held_out_situations_mail.py``, whose helpers this reuses) produces: account
names spelt differently across deal names and subjects (legal suffixes, capitals, an account name
in one deal's name only), accents typed or not and decomposed (NFD), Turkish and German case
folding, emoji; a qualifier ("2027") beside the word that names another deal; out-of-office
replies, read receipts, calendar answers and delivery failures; a customer's group addresses alone
on a thread; rooms and a notetaker bot on the invite; a customer with a partner that holds no role,
and with a partner listed on the customer's deal and on its own; forwards by
the buyer's colleague and by the rep's; internal mail naming a deal. The CRM through
``POST /v1/crm/sync``, the activities through ``POST /v1/events`` (subjects kept), each answer read
back from the gateway's ``GET /v1/activities/{id}``. Each account has its own domain.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from tests.integration.attribution.test_attribution_held_out_situations_mail import (
    ANA,
    MAX,
    REPS,
    SAM,
    _account,
    _contact,
    _deal,
    _mail,
    _meeting,
    _run,
)

LATER = "2026-10-05T00:00:00Z"
FRED = "fred@fireflies.ai"  # Fireflies' notetaker, invited to record the meeting


def _world() -> list[dict[str, Any]]:
    """The labelled CRM: one account (one domain) per situation; of two deals, the second newer."""
    return [
        *REPS,
        # N1: the account spelt three ways across its deals and the mail.
        _account("acc-n1", "ACME Corporation", "acme-corporation.example"),
        _contact("con-al", "acc-n1", "al@acme-corporation.example"),
        _deal("deal-n1-plat", "acc-n1", "Acme Corp - Platform", "con-al"),
        _deal("deal-n1-dw", "acc-n1", "ACME Corporation – Data Warehouse", "con-al", created=LATER),  # noqa: RUF001
        # N2: the account's name in one deal's name only (a renewal workflow names it, a rep did not).
        _account("acc-n2", "Northwind Traders", "northwind.example"),
        _contact("con-nan", "acc-n2", "nan@northwind.example"),
        _deal("deal-n2-ren", "acc-n2", "Northwind Traders - Renewal", "con-nan"),
        _deal("deal-n2-exp", "acc-n2", "Expansion 2027", "con-nan", created=LATER),
        # N3: accents, typed or not.
        _account("acc-n3", "Société Générale Conseil", "sgconseil.example"),
        _contact("con-sol", "acc-n3", "sol@sgconseil.example"),
        _deal("deal-n3-data", "acc-n3", "Société Générale - Données clients", "con-sol"),
        _deal("deal-n3-sec", "acc-n3", "Société Générale - Sécurité", "con-sol", created=LATER),
        # N4: Turkish capitals (İ).
        _account("acc-n4", "Yıldız İnşaat", "yildiz.example"),  # noqa: RUF001
        _contact("con-yil", "acc-n4", "yil@yildiz.example"),
        _deal("deal-n4-ist", "acc-n4", "Yıldız İnşaat - İstanbul Ofis", "con-yil"),  # noqa: RUF001
        _deal("deal-n4-ank", "acc-n4", "Yıldız İnşaat - Ankara Depo", "con-yil", created=LATER),  # noqa: RUF001
        # N5: a German legal suffix in one deal's name, ß written ss.
        _account("acc-n5", "Müller GmbH", "mueller.example"),
        _contact("con-mue", "acc-n5", "mue@mueller.example"),
        _deal("deal-n5-wart", "acc-n5", "Müller GmbH - Wartung", "con-mue"),
        _deal("deal-n5-liz", "acc-n5", "MÜLLER - Straßenbau Lizenzen", "con-mue", created=LATER),
        # H: generic deal names, no account name at all.
        _account("acc-h", "Contoso", "contoso.example"),
        _contact("con-con", "acc-h", "con@contoso.example"),
        _deal("deal-h-ren", "acc-h", "Renewal", "con-con"),
        _deal("deal-h-exp", "acc-h", "Expansion 2027", "con-con", created=LATER),
        # G1: one open deal, nobody at the account holds a role; G3: two deals, two owners.
        _account("acc-g1", "Vandal Industries", "vandal.example"),
        _deal("deal-g1", "acc-g1", "Vandal - Fleet tracking"),
        _account("acc-g3", "Pied Piper", "piedpiper.example"),
        _contact("con-ric", "acc-g3", "ric@piedpiper.example"),
        _deal("deal-g3-a", "acc-g3", "Pied Piper - Compression API", "con-ric"),
        _deal("deal-g3-b", "acc-g3", "Pied Piper - Storage", owner="rep-ben", created=LATER),
        # M: two buyers of one account, each on a deal of Ana's.
        _account("acc-m", "Umbrella Health", "umbrella-health.example"),
        _contact("con-uma", "acc-m", "uma@umbrella-health.example"),
        _contact("con-ugo", "acc-m", "ugo@umbrella-health.example"),
        _deal("deal-m-tel", "acc-m", "Umbrella Health - Telemetry", "con-uma"),
        _deal("deal-m-bill", "acc-m", "Umbrella Health - Billing", "con-ugo", created=LATER),
        # P: a customer and a reseller, both deals Ana's; the partner's person holds no role.
        _account("acc-p1", "Hooli Health", "hoolihealth.example"),
        _contact("con-hh", "acc-p1", "hh@hoolihealth.example"),
        _deal("deal-p1", "acc-p1", "Hooli Health - Analytics", "con-hh"),
        _account("acc-p2", "Bridge Partners", "bridge.example"),
        _contact("con-bp", "acc-p2", "bp@bridge.example"),
        _deal("deal-p2", "acc-p2", "Bridge Partners - Reseller agreement"),
        # P3: a reseller's person listed on the customer's deal too (an influencer), and on the
        # reseller's own deal, both Ana's.
        _account("acc-p3", "Wayne Health", "waynehealth.example"),
        _contact("con-wh", "acc-p3", "wh@waynehealth.example"),
        _account("acc-p4", "Alliance Partners", "alliance.example"),
        _contact("con-ap", "acc-p4", "ap@alliance.example"),
        _deal("deal-p3", "acc-p3", "Wayne Health - Analytics", "con-wh", "con-ap"),
        _deal("deal-p4", "acc-p4", "Alliance Partners - Reseller agreement", "con-ap"),
    ]


async def test_account_names_accents_and_case_folding_in_subjects(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    al, nan, sol, yil, mue, con = (
        "al@acme-corporation.example",
        "nan@northwind.example",
        "sol@sgconseil.example",
        "yil@yildiz.example",
        "mue@mueller.example",
        "con@contoso.example",
    )
    mail = [
        _mail("n1-plat", ANA, [al], "ACME Corporation platform pricing"),
        _mail("n1-dw", al, [ANA], "Re: Acme, Inc. data warehouse sizing"),
        _mail("n1-generic", ANA, [al], "Acme Corp check-in"),
        _mail("n1-fw-colleague", "greta@acme-corporation.example", [ANA], "FW: Platform pricing", cc=(al,)),
        _mail("n2-generic", ANA, [nan], "Northwind Traders quick question"),
        _mail("n2-renewal", nan, [ANA], "Northwind renewal paperwork"),
        _mail("n3-unaccented", sol, [ANA], "Donnees clients - devis"),
        _mail("n3-nfd", ANA, [sol], unicodedata.normalize("NFD", "Sécurité : planning")),
        _mail("n3-emoji", ANA, [sol], "🔒 Sécurité – kickoff 🚀"),  # noqa: RUF001
        _mail("n4-capitals", ANA, [yil], "ISTANBUL OFIS teklif"),
        _mail("n4-lower", yil, [ANA], "ankara depo"),
        _mail("n5-suffix", mue, [ANA], "AW: Wartung Angebot"),
        _mail("n5-eszett", ANA, [mue], "WG: STRASSENBAU LIZENZEN – Angebot"),  # noqa: RUF001
        _mail("h-2027-renewal", con, [ANA], "2027 renewal terms"),
        _mail("h-expansion", ANA, [con], "Expansion kickoff"),
        _mail("h-other-account", ANA, [al], "Renewal of the NDA"),
    ]

    found = await _run(kafka_settings, database_settings, db_engine, _world(), mail)

    assert found == {
        "n1-plat": ("attributed", "deal-n1-plat", [], "rep-ana"),
        "n1-dw": ("attributed", "deal-n1-dw", [], "rep-ana"),
        # The account's name, however spelt, names neither of its deals: a close call, the newer first.
        "n1-generic": ("ambiguous", "deal-n1-dw", ["deal-n1-plat"], "rep-ana"),
        # The buyer's colleague forwards, the buyer copied: the deal the subject names.
        "n1-fw-colleague": ("attributed", "deal-n1-plat", [], "rep-ana"),
        "n2-generic": ("ambiguous", "deal-n2-exp", ["deal-n2-ren"], "rep-ana"),
        "n2-renewal": ("attributed", "deal-n2-ren", [], "rep-ana"),
        "n3-unaccented": ("attributed", "deal-n3-data", [], "rep-ana"),
        "n3-nfd": ("attributed", "deal-n3-sec", [], "rep-ana"),
        "n3-emoji": ("attributed", "deal-n3-sec", [], "rep-ana"),
        "n4-capitals": ("attributed", "deal-n4-ist", [], "rep-ana"),
        "n4-lower": ("attributed", "deal-n4-ank", [], "rep-ana"),
        "n5-suffix": ("attributed", "deal-n5-wart", [], "rep-ana"),
        "n5-eszett": ("attributed", "deal-n5-liz", [], "rep-ana"),
        # "2027" qualifies the renewal it stands beside; it does not name "Expansion 2027".
        "h-2027-renewal": ("attributed", "deal-h-ren", [], "rep-ana"),
        "h-expansion": ("attributed", "deal-h-exp", [], "rep-ana"),
        # Another account's generic deal name in the subject: not a candidate, nothing named.
        "h-other-account": ("ambiguous", "deal-n1-dw", ["deal-n1-plat"], "rep-ana"),
    }


async def test_automatic_mail_group_addresses_rooms_bots_partners_and_forwards(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    al, uma, ugo, hh, bp = (
        "al@acme-corporation.example",
        "uma@umbrella-health.example",
        "ugo@umbrella-health.example",
        "hh@hoolihealth.example",
        "bp@bridge.example",
    )
    room = "c_1882a7f3b2@resource.calendar.google.com"
    first = [
        # Automatic mail: replies, calendar answers, delivery failures.
        _mail("o-ooo", al, [ANA], "Automatic reply: Platform pricing"),
        _mail("o-ooo-outlook", "nan@northwind.example", [ANA], "Out of Office: RE: Renewal"),
        _mail("o-ooo-de", "mue@mueller.example", [ANA], "Abwesenheitsnotiz: Wartung Angebot"),
        _mail("o-ooo-fr", "sol@sgconseil.example", [ANA], "Réponse automatique : Données clients"),
        _mail(
            "o-accepted", al, [ANA], "Accepted: ACME Corporation weekly @ Tue Nov 3, 2026 10am - 11am (PST)"
        ),
        _mail(
            "o-ndr-exchange",
            "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@seller.example",
            [ANA],
            "Undeliverable: Platform pricing",
        ),
        _mail("o-ndr-gmail", "mailer-daemon@googlemail.com", [ANA], "Delivery Status Notification (Failure)"),
        # A customer's group addresses.
        _mail("g1-procurement", ANA, ["procurement@vandal.example"], "PO request"),
        _mail(
            "g1-info-inbound", "info@vandal.example", ["sales@seller.example"], "Question about our invoice"
        ),
        _mail("g3-sales-list", ANA, ["sales@piedpiper.example"], "Partnership question"),
        _mail(
            "g3-first",
            ANA,
            ["ric@piedpiper.example"],
            "Contract redlines",
            at="2026-11-02T09:00:00Z",
            thread_id="t-g3",
        ),
        # Rooms and a notetaker on the invite.
        _meeting("m-bot-room", ANA, [uma, FRED, room], "Umbrella Health sync"),
        _meeting("m-bot-both", ANA, [uma, ugo, FRED], "Umbrella Health sync"),
        _meeting("m-internal-bot", ANA, [SAM, FRED], "Pipeline review: Umbrella Health telemetry"),
        _meeting("m-internal-room", ANA, [MAX, "room-berlin-4.12@seller.example"], "1:1"),
        _meeting("m-customer-room", ANA, [ugo, "boardroom@umbrella-health.example"], "On site"),
        # A customer and its reseller, whose person holds no role.
        _meeting("p-customer-partner", ANA, [hh, bp], "Weekly sync"),
        _meeting("p-customer-partner-unknown", ANA, [hh, "zed@bridge.example"], "Weekly sync"),
        _meeting("p-partner-only", ANA, [bp], "Co-sell planning"),
        _meeting(
            "p3-customer-partner", ANA, ["wh@waynehealth.example", "ap@alliance.example"], "Weekly sync"
        ),
        _mail("p3-partner-alone", ANA, ["ap@alliance.example"], "Quick question"),
        _mail("o-read-receipt", al, [ANA], "Read: Platform pricing"),
        # Forwards and internal mail naming a deal.
        _mail("f-se-forward", SAM, [ANA], "FW: Data warehouse sizing"),
        _meeting("i-deal-review", MAX, [ANA], "Deal review: Northwind Expansion 2027"),
    ]
    replies = [
        _mail("g3-legal-reply", "legal@piedpiper.example", [ANA], "Re: Contract redlines", thread_id="t-g3"),
    ]

    found = await _run(kafka_settings, database_settings, db_engine, _world(), first, replies)

    assert found == {
        # Written by the buyer's mail system, not the buyer: counted as automated, no deal.
        "o-ooo": ("excluded", None, [], "rep-ana"),
        "o-ooo-outlook": ("excluded", None, [], "rep-ana"),
        "o-ooo-de": ("excluded", None, [], "rep-ana"),
        "o-ooo-fr": ("excluded", None, [], "rep-ana"),
        "o-accepted": ("excluded", None, [], "rep-ana"),
        "o-ndr-exchange": ("excluded", None, [], "rep-ana"),
        "o-ndr-gmail": ("excluded", None, [], "rep-ana"),
        # The account's only open deal; the shared inbox's mail credited to its owner.
        "g1-procurement": ("attributed", "deal-g1", [], "rep-ana"),
        "g1-info-inbound": ("attributed", "deal-g1", [], "rep-ana"),
        # Of the account's two deals, the one whose owner wrote.
        "g3-sales-list": ("attributed", "deal-g3-a", [], "rep-ana"),
        "g3-first": ("attributed", "deal-g3-a", [], "rep-ana"),
        # The legal team's list answers the thread: the thread's deal.
        "g3-legal-reply": ("attributed", "deal-g3-a", [], "rep-ana"),
        # A room and a notetaker are nobody: the buyer's deal; two buyers, a close call.
        "m-bot-room": ("attributed", "deal-m-tel", [], "rep-ana"),
        "m-bot-both": ("ambiguous", "deal-m-bill", ["deal-m-tel"], "rep-ana"),
        "m-internal-bot": ("internal", None, [], "rep-ana"),
        "m-internal-room": ("internal", None, [], "rep-ana"),
        "m-customer-room": ("attributed", "deal-m-bill", [], "rep-ana"),
        # The customer's deal: the partner's person holds no role on the reseller's deal.
        "p-customer-partner": ("attributed", "deal-p1", [], "rep-ana"),
        "p-customer-partner-unknown": ("attributed", "deal-p1", [], "rep-ana"),
        "p-partner-only": ("attributed", "deal-p2", [], "rep-ana"),
        # Everyone in the meeting is on the customer's deal, the partner alone on its own.
        "p3-customer-partner": ("attributed", "deal-p3", [], "rep-ana"),
        # The partner alone, on both deals: a close call.
        "p3-partner-alone": ("ambiguous", "deal-p4", ["deal-p3"], "rep-ana"),
        # "Read: Platform pricing" from the buyer's own address: nothing the event carries tells an
        # Outlook read receipt from the buyer writing (a sender of the mail system's, a calendar's
        # date and time): the buyer's mail, and it names the Platform deal.
        "o-read-receipt": ("attributed", "deal-n1-plat", [], "rep-ana"),
        "f-se-forward": ("internal", None, [], "rep-sam"),
        "i-deal-review": ("internal", None, [], "rep-max"),
    }
