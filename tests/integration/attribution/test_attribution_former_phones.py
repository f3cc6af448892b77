"""A contact's former phones through the real broker and database: a call to a number a contact
held before her record changed is decided as things stood then (the account she was at, the
contact she was merged into since), and a correction re-sent under the same ``updated_at``
changes no number."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_held_out_situations_calls import (
    ANA_LINE,
    _account,
    _contact,
    _deal,
    _decided,
    _from_ana,
    _rep,
    _setup,
    _sync,
)
from tests.integration.quarter.quarter_support import post


async def test_a_former_number_is_decided_as_things_stood_when_the_call_happened(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Truth:

    * Nia moves from Old Co to New Co on 10 November, her number changing with it. Both companies
      have a deal of Ana's listing no contact. Ana's call of the 7th to the old number, posted
      after the change, is Old Co's deal (she was there then), not New Co's.
    * Pia's number changes on the 10th and goes to Zed (Zed Co, his deal); on the 11th Pia's
      record is merged into Pib's (Pia Co). Ana's call of the 7th to Pia's old number is Pia Co's
      deal, not Zed's.
    * Lea is a Lead (no account) until the 10th, when she is converted into a Contact at Lea Co
      (Lea Co's deal lists her) and the CRM says no more than that the Lead is deleted (a
      Salesforce Lead converted without ``ConvertedContactId`` in the message), her phones and
      email still on it; the Contact arrives after. Ana's call of the 7th to her number is Lea
      Co's deal: the Contact is the same person (the Lead's email), not a new holder of the number.
    * Ria's record is re-sent under the same ``updated_at`` with another number (ingest read her
      phone again): a correction, so her first reading is no former number of hers.
    """
    tenant = await _setup(db_engine)
    before: list[dict[str, Any]] = [
        _rep("rep-ana", ANA_LINE),
        _account("old"),
        _account("new"),
        _contact("nia", "old", "415 555 0160"),
        _deal("old", "old"),
        _deal("new", "new"),
        _account("pia"),
        _contact("pia", "pia", "415 555 0170"),
        _contact("pib", "pia", "415 555 0172"),
        _deal("pia", "pia"),
        _account("zed"),
        _deal("zed", "zed"),
        _account("ria"),
        _contact("ria", "ria", "415 555 0180"),
        {**_contact("lea", "none", "415 555 0190", emails=("lea@lea.example",)), "account_id": None},
        _account("lea"),
    ]
    changed: list[dict[str, Any]] = [
        _contact("nia", "new", "415 555 0161"),
        _contact("pia", "pia", "415 555 0171"),
        _contact("zed", "zed", "415 555 0170"),
        _deal("zed", "zed", "zed"),
        {
            **_contact("lea", "none", "415 555 0190", emails=("lea@lea.example",)),
            "account_id": None,
            "deleted": True,
        },
    ]
    converted = [
        _contact("lea-c", "lea", "415 555 0190", emails=("Lea@lea.example",)),
        _deal("lea", "lea", "lea-c"),
    ]
    later = [
        _from_ana("nia-7th", "+14155550160", at="2026-11-07T17:00:00Z"),
        _from_ana("nia-12th", "+14155550161", at="2026-11-12T17:00:00Z"),
        _from_ana("pia-7th", "+14155550170", at="2026-11-07T17:00:00Z"),
        _from_ana("zed-12th", "+14155550170", at="2026-11-12T17:00:00Z"),
        _from_ana("lea-7th", "+14155550190", at="2026-11-07T17:00:00Z"),
        _from_ana("lea-12th", "+14155550190", at="2026-11-12T17:00:00Z"),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync(stack, db_engine, tenant, *before)
        await _sync(stack, db_engine, tenant, _contact("ria", "ria", "415 555 0181"))
        await _sync(stack, db_engine, tenant, *changed, updated_at="2026-11-10T09:00:00Z")
        merged = {"entity_type": "contact", "id": "con-pia", "merged_into": "con-pib"}
        await _sync(stack, db_engine, tenant, merged, *converted, updated_at="2026-11-11T09:00:00Z")
        await post(stack, tenant, *later)
        found = await _decided(stack, kafka_settings, tenant, *later, post_them=False)
        former = await rows(
            db_engine,
            "SELECT phone, contact_id, account_id, shared_with FROM ref_contact_former_phones "
            f"WHERE tenant_id = '{tenant.tenant_id}' ORDER BY phone",
        )
    assert former == [
        ("+14155550160", "con-nia", "acc-old", []),
        ("+14155550170", "con-pia", "acc-pia", []),
        ("+14155550190", "con-lea", None, []),
    ]
    assert found == {
        "nia-7th": ("attributed", "deal-old", (), "acc-old", "rep-ana", None),
        "nia-12th": ("attributed", "deal-new", (), "acc-new", "rep-ana", None),
        "pia-7th": ("attributed", "deal-pia", (), "acc-pia", "rep-ana", None),
        "zed-12th": ("attributed", "deal-zed", (), "acc-zed", "rep-ana", None),
        "lea-7th": ("attributed", "deal-lea", (), "acc-lea", "rep-ana", None),
        "lea-12th": ("attributed", "deal-lea", (), "acc-lea", "rep-ana", None),
    }
