"""Held-out call situations, second set, as a dialer admin and a RevOps admin send them: the CRM
through ``POST /v1/crm/sync`` (phones as people type them worldwide), the dialer's calls through
``POST /v1/events``, read back as a manager does through the gateway. The real broker,
attribution, metrics and PostgreSQL; each call's truth is written next to it.

Neither the first set (``test_attribution_held_out_situations_calls.py``) nor our evaluation
world produces these: ``tel:`` URIs, Unicode dashes and spaces, full-width digits, an Excel
apostrophe, ``extn``/``#``/``x 12`` extensions, ``00``/``011`` international prefixes, vanity
numbers, placeholder numbers, a conference bridge on two companies' records, a desk line
forwarded to a mobile, a switchboard transfer on either side, short and failed calls, a contact's
number changing and a number re-issued to someone else.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_held_out_situations_calls import (
    ANA_LINE,
    BO_LINE,
    _account,
    _ana_and_one_contact_each,
    _call,
    _contact,
    _deal,
    _decided,
    _from_ana,
    _membership,
    _rep,
    _setup,
    _sync,
)
from tests.integration.polling import erasure_done
from tests.integration.quarter.quarter_support import get, post

#: Phones as people type them in CRMs around the world, one contact (own account, own deal) each.
TYPED = {
    "tel-uri": "tel:+1-415-555-0121",
    "en-dash": "415\u2013555\u20130122",
    "nbsp": "+1\u00a0415\u00a0555\u00a00123",
    "full-width": "\uff14\uff11\uff15\uff0d\uff15\uff15\uff15\uff0d\uff10\uff11\uff12\uff14",
    "apostrophe": "'4155550125",
    "bidi-marks": "\u202a+1 415 555 0126\u202c",
    "junk-around": "\u260e 415 555 0127 (direct)",
    "extn": "(415) 555-0128 extn 7",
    "hash-ext": "415.555.0129 #12",
    "x-space": "+1 415 555 0130 x 45",
    "zero-zero": "0044 20 7946 0959",
    "eleven": "011 44 20 7946 0960",
    "trunk-bracket": "+44 (0) 20 7946 0961",
    "vanity": "1-800-FLOWERS",
    "paris": "+33 (0)1 42 68 53 00",
}

#: A Zoom dial-in number, copied from meeting invitations onto two companies' contacts.
BRIDGE = "+1 646 558 8656"


async def test_phones_typed_worldwide_and_numbers_that_name_nobody(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Truth: each call is with the contact whose record lists the number, on that contact's deal,
    Ana's, however the record spells it (an extension on the record or dialled is the same line,
    one contact listing it). The dialer's own spellings (a ``tel:`` URI, a national format) are
    the same numbers.

    Placeholders typed into a required field (``000-000-0000``, ``123-456-7890``) are nobody's
    number: dropped with a warning naming them, the contact kept. A conference bridge copied onto
    contacts of two companies names neither: a call to it is not confidently either company's
    deal. A Mexico City contact (country ``MX``) typed ``55 1234 5678`` is that number, not the New
    Jersey number the same digits make in the US: a call to the latter names nobody. A call to an
    emergency short code is refused naming the field."""
    tenant = await _setup(db_engine)
    entities = _ana_and_one_contact_each(TYPED)
    entities += [
        _account("filler"),
        _contact("filler-zero", "filler", "000-000-0000", "415 555 0131"),
        _contact("filler-seq", "filler", "123-456-7890"),
        _deal("filler", "filler", "filler-zero"),
        _account("b1"),
        _account("b2"),
        _contact("b1", "b1", BRIDGE, "415 555 0132"),
        _contact("b2", "b2", BRIDGE),
        _deal("b1", "b1", "b1"),
        _deal("b2", "b2", "b2"),
        # Mexico City typed nationally: the same ten digits are a New Jersey number in the US.
        _account("cdmx"),
        {**_contact("cdmx", "cdmx", "55 1234 5678"), "country": "MX"},
        _deal("cdmx", "cdmx", "cdmx"),
    ]
    calls = [
        _from_ana("tel-uri", "+14155550121"),
        _from_ana("en-dash", "+14155550122"),
        _from_ana("nbsp", "+14155550123"),
        _from_ana("full-width", "+14155550124"),
        _from_ana("apostrophe", "+14155550125"),
        _from_ana("bidi-marks", "+14155550126"),
        _from_ana("junk-around", "+14155550127"),
        _from_ana("extn-bare-line", "+14155550128"),
        _from_ana("hash-ext-dialled", "+14155550129;ext=12"),
        _from_ana("x-space-dialled", "+14155550130,45"),
        _from_ana("zero-zero", "+442079460959"),
        _from_ana("eleven", "+442079460960"),
        _from_ana("trunk-bracket", "+442079460961"),
        _from_ana("vanity", "+18003569377"),
        _from_ana("paris", "+33142685300"),
        # The dialer's own spellings.
        _from_ana("dialer-tel-uri", "tel:+14155550121"),
        _from_ana("dialer-national", "(415) 555-0122"),
        _from_ana("filler-real-line", "+14155550131"),
        _from_ana("bridge", "+16465588656"),
        _from_ana("mexico-city", "+525512345678"),
        _from_ana("new-jersey", "+15512345678"),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await _sync(stack, db_engine, tenant, *entities)
        found = await _decided(stack, kafka_settings, tenant, *calls)
        emergency = await stack.ingest.post(
            "/v1/events", json={"activities": [_from_ana("emergency", "911")]}, headers=tenant.ingest
        )
        filler = await get(stack, tenant, "/v1/contacts?account_id=acc-filler")
    assert emergency.status_code == 422, emergency.text
    assert "activities.0.participants.1.phone" in emergency.text
    assert "short code" in emergency.text
    filler_zero = 1 + 3 * len(TYPED) + 1  # after the rep, the typed ones and the account
    placeholder = "a placeholder, not a phone number; the phone was dropped, the contact accepted"
    assert synced == {
        "accepted": len(entities),
        "warnings": [
            {"index": filler_zero, "field": f"entities.{filler_zero}.phones.0", "reason": placeholder},
            {
                "index": filler_zero + 1,
                "field": f"entities.{filler_zero + 1}.phones.0",
                "reason": placeholder,
            },
        ],
    }
    assert [(c["contact_id"], c["phones"]) for c in filler["items"]] == [
        ("con-filler-seq", []),
        ("con-filler-zero", ["+14155550131"]),
    ]

    def on(key: str) -> tuple[Any, ...]:
        return ("attributed", f"deal-{key}", (), f"acc-{key}", "rep-ana", None)

    assert found == {
        "tel-uri": on("tel-uri"),
        "en-dash": on("en-dash"),
        "nbsp": on("nbsp"),
        "full-width": on("full-width"),
        "apostrophe": on("apostrophe"),
        "bidi-marks": on("bidi-marks"),
        "junk-around": on("junk-around"),
        "extn-bare-line": on("extn"),
        "hash-ext-dialled": on("hash-ext"),
        "x-space-dialled": on("x-space"),
        "zero-zero": on("zero-zero"),
        "eleven": on("eleven"),
        "trunk-bracket": on("trunk-bracket"),
        "vanity": on("vanity"),
        "paris": on("paris"),
        "dialer-tel-uri": on("tel-uri"),
        "dialer-national": on("en-dash"),
        "filler-real-line": on("filler"),
        "bridge": ("ambiguous", "deal-b1", ("deal-b2",), "acc-b1", "rep-ana", None),
        "mexico-city": on("cdmx"),
        "new-jersey": ("unmatched", None, (), None, "rep-ana", None),
    }


#: Ana's own mobile: the desk line forwards to it; no record lists it.
ANA_PERSONAL = "+14155559001"
#: Bo's cell, on his rep record as he typed it.
BO_CELL = "(415) 555-0033 (cell)"
#: The seller's main line; Cy and Di list it with their extensions.
SELLER_MAIN = "+14155550900"


async def test_forwarded_transferred_and_short_calls_credit_the_person_who_took_them(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Truths, as a sales manager reads them:

    * Cal (Bo's deal) rings Ana's desk line, forwarded to her own mobile (the dialer lists both
      numbers as callees; the mobile is on no record): Ana's call, on Cal's deal.
    * Cal rings Bo's desk, forwarded to the cell on his rep record: Bo's. Bo calling Dee (Ana's
      deal) from that cell: Bo's call on Dee's deal.
    * Cal rings the seller's main line; the switchboard transfers him to Ana's desk: Ana's.
    * Ana calls Kim's assistant Pat (a contact at Kim's company with no deal role): Kim's company's
      only deal.
    * Ana rings Lee's and Max's company switchboard (both list it; each on a deal of his own) and is
      put through to Lee's direct line: Lee's deal.
    * Short and failed calls to Dee, all on Dee's deal: a 4-second connected hang-up (a connect,
      no conversation), a connected call the dialer reports with 0 seconds, a busy, a failed, and a
      voicemail drop playing a 28-second recording (a dial: no connect, no talk time).
    """
    tenant = await _setup(db_engine)
    entities: list[dict[str, Any]] = [
        _rep("rep-ana", ANA_LINE),
        _rep("rep-bo", BO_LINE, BO_CELL),
        _rep("rep-cy", "(415) 555-0900 x101"),
        _rep("rep-di", "(415) 555-0900 x102"),
        {"entity_type": "team", "id": "team-a"},
        {"entity_type": "team", "id": "team-b"},
        _membership("m-ana-a", "rep-ana", "team-a", "2026-01-01"),
        _membership("m-bo-b", "rep-bo", "team-b", "2026-01-01"),
        _account("cal"),
        _contact("cal", "cal", "415 555 0400"),
        _deal("cal", "cal", "cal", owner="rep-bo"),
        _account("dee"),
        _contact("dee", "dee", "415 555 0550"),
        _deal("dee", "dee", "dee"),
        _account("kim"),
        _contact("kim", "kim", "415 555 0610"),
        _contact("pat", "kim", "415 555 0611"),
        _deal("kim", "kim", "kim", owner="rep-bo"),
        _account("big"),
        _contact("lee", "big", "415 555 0700", "415 555 0701"),
        _contact("max", "big", "415 555 0700"),
        _deal("lee", "big", "lee"),
        _deal("max", "big", "max"),
    ]
    cal, dee = {"phone": "+14155550400"}, "+14155550550"
    calls = [
        {
            **_call("forwarded-to-ana-mobile", cal, {"phone": ANA_LINE}, direction="inbound"),
            "participants": [
                {**cal, "role": "caller"},
                {"phone": ANA_LINE, "role": "callee"},
                {"phone": ANA_PERSONAL, "role": "callee"},
            ],
        },
        {
            **_call("forwarded-to-bo-cell", cal, {"phone": BO_LINE}, direction="inbound"),
            "participants": [
                {**cal, "role": "caller"},
                {"phone": BO_LINE, "role": "callee"},
                {"phone": "+14155550033", "role": "callee"},
            ],
        },
        _call("bo-cell-to-dee", {"phone": "+14155550033"}, {"phone": dee}),
        {
            **_call("switchboard-to-ana", cal, {"phone": SELLER_MAIN}, direction="inbound"),
            "participants": [
                {**cal, "role": "caller"},
                {"phone": SELLER_MAIN, "role": "callee"},
                {"phone": ANA_LINE, "role": "callee"},
            ],
        },
        _from_ana("ana-to-assistant", "+14155550611"),
        {
            **_from_ana("put-through-to-lee", "+14155550700"),
            "participants": [
                {"phone": ANA_LINE, "role": "caller"},
                {"phone": "+14155550700", "role": "callee"},
                {"phone": "+14155550701", "role": "callee"},
            ],
        },
        _from_ana("hang-up", dee, duration=4),
        _from_ana("zero-connected", dee, duration=0),
        _from_ana("busy", dee, outcome="busy", duration=0),
        _from_ana("failed", dee, outcome="failed", duration=0),
        _from_ana("voicemail-drop", dee, outcome="voicemail", duration=28),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await _sync(stack, db_engine, tenant, *entities)
        found = await _decided(stack, kafka_settings, tenant, *calls)
        scores = await get(
            stack, tenant, "/v1/reps/rep-ana/scores?granularity=month&from=2026-11-01&to=2026-11-30"
        )
    assert synced == {"accepted": len(entities), "warnings": []}
    anas = ("rep-ana", "team-a")
    dees = ("attributed", "deal-dee", (), "acc-dee", *anas)
    assert found == {
        "forwarded-to-ana-mobile": ("attributed", "deal-cal", (), "acc-cal", *anas),
        "forwarded-to-bo-cell": ("attributed", "deal-cal", (), "acc-cal", "rep-bo", "team-b"),
        "bo-cell-to-dee": ("attributed", "deal-dee", (), "acc-dee", "rep-bo", "team-b"),
        "switchboard-to-ana": ("attributed", "deal-cal", (), "acc-cal", *anas),
        "ana-to-assistant": ("attributed", "deal-kim", (), "acc-kim", *anas),
        "put-through-to-lee": ("attributed", "deal-lee", (), "acc-big", *anas),
        "hang-up": dees,
        "zero-connected": dees,
        "busy": dees,
        "failed": dees,
        "voicemail-drop": dees,
    }
    # Ana's outbound calls: the assistant, Lee, and the five to Dee (7 dials); connected: the
    # assistant, Lee, the hang-up and the zero-second one (4); conversations (>= 60 s): 2; talk
    # seconds of her connected calls, inbound included: 60 x 2 (forwarded, transferred) + 60 x 2
    # + 4 + 0 = 244 (the voicemail drop's recording is no talk).
    [november] = scores["periods"]
    counts = november["counts"]
    assert (counts["dials"], counts["connects"], counts["conversations"], counts["talk_seconds"]) == (
        7,
        4,
        2,
        244,
    )


async def _former_phones(engine: AsyncEngine, tenant_id: str) -> list[tuple[Any, ...]]:
    return await rows(
        engine,
        "SELECT phone, contact_id, account_id, shared_with FROM ref_contact_former_phones "
        "WHERE tenant_id = :t ORDER BY phone",
        {"t": tenant_id},
    )


NIA_OLD, NIA_NEW, SHARED_DESK = "+14155550140", "+14155550141", "+14155550150"


async def test_a_number_belongs_to_whoever_held_it_when_the_call_happened(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Truths, by date:

    * Nia's number changes on 10 November (the CRM's new version lists only the new one). Her
      call of the 5th (old number) stays on her deal; a call of the 6th to the old number that the
      dialer posts after the change is hers too (she held it then); the 12th's call to the new
      number is hers.
    * Oli leaves Old Co on 10 November (his record deleted); his desk number goes to Nat, new at
      New Co (Bo's deal). Ana's call of the 5th to it stays on Oli's deal; one of the 7th posted
      after the change is Oli's deal too (he held it then); the 12th's is Nat's deal.

    The numbers each held are kept with the account they were at; Nia erased by her old number
    takes it with her.
    """
    tenant = await _setup(db_engine)
    before: list[dict[str, Any]] = [
        _rep("rep-ana", ANA_LINE),
        _rep("rep-bo", BO_LINE),
        _account("nia"),
        _contact("nia", "nia", "(415) 555-0140"),
        _deal("nia", "nia", "nia"),
        _account("oldco"),
        _contact("oli", "oldco", "415.555.0150"),
        _deal("oldco", "oldco", "oli"),
        _account("newco"),
        _deal("newco", "newco", owner="rep-bo"),
    ]
    changed: list[dict[str, Any]] = [
        _contact("nia", "nia", "(415) 555-0141"),
        {"entity_type": "contact", "id": "con-oli", "deleted": True},
        _contact("nat", "newco", "415 555 0150"),
        _deal("newco", "newco", "nat", owner="rep-bo"),
    ]
    first = [_from_ana("nia-5th", NIA_OLD, at="2026-11-05T17:00:00Z"), _from_ana("oli-5th", SHARED_DESK)]
    later = [
        _from_ana("nia-6th-late", NIA_OLD, at="2026-11-06T17:00:00Z"),
        _from_ana("nia-12th", NIA_NEW, at="2026-11-12T17:00:00Z"),
        _from_ana("oli-7th-late", SHARED_DESK, at="2026-11-07T17:00:00Z"),
        _from_ana("nat-12th", SHARED_DESK, at="2026-11-12T17:00:00Z"),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync(stack, db_engine, tenant, *before)
        early = await _decided(stack, kafka_settings, tenant, *first)
        await _sync(stack, db_engine, tenant, *changed, updated_at="2026-11-10T09:00:00Z")
        await post(stack, tenant, *later)
        found = await _decided(stack, kafka_settings, tenant, *first, *later, post_them=False)
        former = await _former_phones(db_engine, tenant.tenant_id)
        # Nia asks to be forgotten, by the number she no longer has.
        job = await erasure_done(stack.gateway, tenant.admin, {"phone": NIA_OLD}, "Nia's erasure")
        forgotten = await _former_phones(db_engine, tenant.tenant_id)
    assert former == [
        (NIA_OLD, "con-nia", "acc-nia", []),
        (SHARED_DESK, "con-oli", "acc-oldco", []),
    ]
    assert job["counts"]["contacts_deleted"] == 1
    assert forgotten == [(SHARED_DESK, "con-oli", "acc-oldco", [])]
    nias = ("attributed", "deal-nia", (), "acc-nia", "rep-ana", None)
    olis = ("attributed", "deal-oldco", (), "acc-oldco", "rep-ana", None)
    assert early == {"nia-5th": nias, "oli-5th": olis}
    assert found == {
        "nia-5th": nias,
        "oli-5th": olis,
        "nia-6th-late": nias,
        "nia-12th": nias,
        "oli-7th-late": olis,
        "nat-12th": ("attributed", "deal-newco", (), "acc-newco", "rep-ana", None),
    }
