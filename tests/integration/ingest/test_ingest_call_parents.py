"""The parents of Twilio calls between two numbers, kept for their <Dial> legs in the duplicate
ledger's own statement (``SeenLedger.look_up_keeping``), against PostgreSQL: the rendezvous with
the legs' locked fold, shared statements, newest wins, a fold never waited for."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import Direction, Outcome, Participant, ParticipantRole
from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings, KafkaSettings
from services.ingest.adapters.repository import CallParent, SeenLedger, lock_webhook_state, save_webhook_state
from services.ingest.domain.vendors.twilio import TWO_NUMBER_FOLD_RANK, TwilioCallState, TwilioLeg
from tests.integration.polling import eventually, sessions_waiting

from .ingest_integration_support import (
    SECRETS,
    TENANT,
    activities_on_topic,
    fixture,
    ingest_client,
    setup_tenant,
    sign,
    url_for,
)

OTHER = "globex"
#: While a test holds a row, a lookup that waited for it would never be answered: this bounds only
#: how long a failure takes to show, never what passes.
HELD_SECONDS = 30


async def waiting_for_a_lock(engine: AsyncEngine) -> None:
    """Return once a session of this test's database waits for a lock (a fold for the held row)."""
    await eventually(
        lambda: sessions_waiting(engine), lambda n: n > 0, HELD_SECONDS, "a session waiting for the held row"
    )


def _parent(revision: int, call_sid: str = "CA-p", leg: str | None = None) -> CallParent:
    state = orjson.dumps({"call_sid": "CA-p", "revision": revision, "two_numbers": True}).decode()
    return CallParent("twilio", call_sid, state if leg is None else leg, revision)


async def _stored(engine: AsyncEngine, key: str) -> object:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT state FROM webhook_state WHERE tenant_id = :t AND source = 'twilio' AND object_key = :k"
                ),
                {"t": TENANT, "k": key},
            )
        ).one()
    return row.state


async def test_a_parent_is_kept_with_its_lookup_until_its_legs_are_and_a_fold_is_never_waited_for(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Kept when new, in the statement answering its lookup; a newer callback replaces it, an
    older one (or the same one of two in one statement) does not; once a leg is stored, the
    answer sends the parent to the locked fold. A parent arriving while a leg folds under the row
    lock does not wait for it (nor does another tenant's lookup sharing the statement): it is not
    written, and the answer sends it to the locked fold, which waits for the leg and sees it."""
    await setup_tenant(db_engine)
    await setup_tenant(db_engine, tenant=OTHER)
    engine = make_engine(database_settings, "tests")
    ledger = SeenLedger(engine)
    known, fresh = (uuid.uuid4(), 3), (uuid.uuid4(), 3)
    try:
        await ledger.record(TENANT, [known])
        first = await ledger.look_up_keeping(TENANT, [known, fresh], _parent(3))
        concurrent = await asyncio.gather(
            ledger.look_up_keeping(TENANT, [], _parent(2)),
            ledger.look_up_keeping(TENANT, [fresh], _parent(4)),
            ledger.look_up_keeping(TENANT, [], _parent(1, "CA-q")),
            ledger.already_seen(TENANT, [known]),
        )
        newest = await _stored(db_engine, "CA-p")
        async with db_engine.begin() as conn:  # a leg of CA-q folding: the row is held
            stored = await lock_webhook_state(conn, TENANT, "twilio", "CA-q")
            # Answered while this transaction holds the row (a lookup waiting for it never would).
            during_fold = await asyncio.wait_for(
                asyncio.gather(
                    ledger.look_up_keeping(TENANT, [known], _parent(5, "CA-q")),
                    ledger.already_seen(OTHER, [known]),
                ),
                HELD_SECONDS,
            )
            await save_webhook_state(
                conn,
                TENANT,
                "twilio",
                "CA-q",
                orjson.dumps({**(stored or {}), "legs": {"CA-l": {}}}).decode(),
            )
        after_leg = await ledger.look_up_keeping(TENANT, [], _parent(6, "CA-q"))
        left_to_fold = await _stored(db_engine, "CA-q")
    finally:
        await ledger.close()
        await engine.dispose()
    assert first == ({known}, False)
    assert list(concurrent) == [(set(), False), (set(), False), (set(), False), {known}]
    assert newest == {"parent": {"call_sid": "CA-p", "revision": 4, "two_numbers": True}}
    assert (during_fold[0], during_fold[1]) == (({known}, True), set())
    assert after_leg == (set(), True)
    # Neither revision 5 nor 6 is written: the locked fold, which emits the call, keeps them.
    assert left_to_fold == {
        "parent": {"call_sid": "CA-p", "revision": 1, "two_numbers": True},
        "legs": {"CA-l": {}},
    }


async def test_every_waiting_caller_gets_the_database_error_and_a_refused_parent_fails_only_its_own(
    database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The database down: each caller waiting on the shared statement gets the error (the route
    answers 503 and Twilio retries); the next call reconnects. A value the database refuses (a
    parent that is not JSON) fails its own caller only, not the lookups and parents sharing its
    statement, whatever their tenant."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = make_engine(
        DatabaseSettings(url=f"postgresql+asyncpg://spm:spm@127.0.0.1:{closed_port}/spm"), "tests"
    )
    ledger = SeenLedger(down)
    try:
        answers = await asyncio.gather(
            ledger.look_up_keeping(TENANT, [], _parent(1, "CA-a")),
            ledger.already_seen(OTHER, [(uuid.uuid4(), 1)]),
            return_exceptions=True,
        )
        with pytest.raises(ConnectionRefusedError):
            await ledger.look_up_keeping(TENANT, [], _parent(1, "CA-a"))
    finally:
        await ledger.close()
        await down.dispose()
    assert [type(a).__name__ for a in answers] == ["ConnectionRefusedError", "ConnectionRefusedError"]

    await setup_tenant(db_engine)
    await setup_tenant(db_engine, tenant=OTHER)
    engine = make_engine(database_settings, "tests")
    ledger = SeenLedger(engine)
    known = (uuid.uuid4(), 1)
    try:
        await ledger.record(OTHER, [known])
        mixed = await asyncio.gather(
            ledger.look_up_keeping(TENANT, [known], _parent(1, "CA-a", leg="not json")),
            ledger.look_up_keeping(TENANT, [], _parent(1, "CA-b")),
            ledger.already_seen(OTHER, [known]),
            return_exceptions=True,
        )
        with pytest.raises(ValueError, match="control character"):
            await ledger.look_up_keeping(TENANT, [], _parent(1, "CA\x00c"))
    finally:
        await ledger.close()
        await engine.dispose()
    assert (type(mixed[0]).__name__, mixed[1], mixed[2]) == ("DBAPIError", (set(), False), {known})


def _completed(call_sid: str) -> bytes:
    """The ``completed`` fixture (a call between two numbers) for another call."""
    return fixture("twilio", "completed.txt").replace(
        b"CA5f1c3b0a7e9d4c2b8a6f0e1d2c3b4a59", call_sid.encode()
    )


async def test_a_callback_whose_call_a_leg_is_folding_is_folded_after_it_and_holds_up_no_other(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Through ingest: a call's "completed" arriving while a leg of it folds (the row held)
    waits for that fold in its own transaction, then publishes the call as it says and the call
    its leg made; another call's "completed", arriving meanwhile, is answered without waiting."""
    await setup_tenant(db_engine)
    call, other = "CA" + "5" * 32, "CA" + "6" * 32
    leg = TwilioLeg(
        call_sid="CA-leg",
        parent_call_sid=call,
        revision=3,
        direction=Direction.OUTBOUND,
        outcome=Outcome.CONNECTED,
        occurred_at=datetime(2026, 11, 24, 15, 10, 20, tzinfo=UTC),
        duration_seconds=300,
        participants=(Participant(phone="+14155550100", role=ParticipantRole.CALLEE),),
    )
    token = SECRETS["twilio"][0]
    async with ingest_client(kafka_settings, database_settings) as client:

        async def post(body: bytes) -> dict[str, int]:
            answer = await client.post(url_for("twilio"), content=body, headers=sign("twilio", body, token))
            assert answer.status_code == 200, answer.text
            return {k: answer.json()[k] for k in ("accepted", "duplicates")}

        async with db_engine.begin() as conn:  # the leg folding: the row is held
            await lock_webhook_state(conn, TENANT, "twilio", call)
            parent = asyncio.create_task(post(_completed(call)))
            await waiting_for_a_lock(db_engine)
            meanwhile = await asyncio.wait_for(post(_completed(other)), 5)
            waiting = not parent.done()
            await save_webhook_state(
                conn, TENANT, "twilio", call, TwilioCallState(legs={leg.call_sid: leg}).model_dump_json()
            )
        after_leg = await parent
        published = sorted(
            (a["external_id"], a["revision"]) for a in await activities_on_topic(kafka_settings)
        )
    assert (meanwhile, waiting, after_leg) == (
        {"accepted": 1, "duplicates": 0},
        True,
        {"accepted": 2, "duplicates": 0},
    )
    assert published == [(call, 3), (call, TWO_NUMBER_FOLD_RANK + 1), (other, 3)]
    stored = TwilioCallState.model_validate(await _stored(db_engine, call))
    assert (stored.parent is not None and stored.parent.revision, list(stored.legs)) == (3, ["CA-leg"])


@pytest.mark.parametrize("deleter", ["erasure", "retention"])
async def test_a_parent_arriving_while_an_erasure_or_the_purge_deletes_its_row_holds_up_nothing(
    database_settings: DatabaseSettings, db_engine: AsyncEngine, deleter: str
) -> None:
    """An erasure (or the retention purge) deleting a call's stored state holds the row's fold
    lock until it commits: a callback of that call arriving meanwhile skips the row in the shared
    statement (the answer sends it to the locked fold, which waits for the erasure) instead of
    waiting there, holding up every request sharing the statement (another tenant's lookup)."""
    from services.attribution.adapters.erasure import delete_webhook_states
    from services.metrics.adapters.retention import purge_webhook_state

    await setup_tenant(db_engine)
    await setup_tenant(db_engine, tenant=OTHER)
    engine = make_engine(database_settings, "tests")
    ledger = SeenLedger(engine)
    known = (uuid.uuid4(), 3)
    try:
        await ledger.record(TENANT, [known])
        await ledger.look_up_keeping(TENANT, [], _parent(1, "CA-e"))
        async with db_engine.begin() as conn:
            if deleter == "erasure":
                await delete_webhook_states(conn, TENANT, [("twilio", "CA-e")])
            else:
                assert await purge_webhook_state(conn, TENANT, datetime.now(UTC).replace(year=2100)) == 1
            # Answered while this transaction holds the row (a lookup waiting for it never would).
            answers = await asyncio.wait_for(
                asyncio.gather(
                    ledger.look_up_keeping(TENANT, [known], _parent(2, "CA-e")),
                    ledger.already_seen(OTHER, [known]),
                ),
                HELD_SECONDS,
            )
    finally:
        await ledger.close()
        await engine.dispose()
    assert (answers[0], answers[1]) == (({known}, True), set())
