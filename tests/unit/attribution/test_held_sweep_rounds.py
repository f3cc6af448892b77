"""The held sweep's rounds against a stubbed store (``repo.tenants_with_ended_meetings`` and
``repo.lock_ended_scheduled_meetings`` as the SQL selects): a tenant whose settings cannot be read
is left out whole before any of its meetings is asked for, however large its backlog, so another
tenant's meetings are held in the same round; meetings that just ended are
held before any backlog; a tenant failing meeting by meeting past ``QUARANTINE_CAP`` is left out
whole and the list sent to the database stays bounded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

import services.attribution.held_sweep as hs
from libs.common.contracts.tenant_settings import InvalidTenantSettings
from services.attribution.adapters import repository as repo

T0 = datetime(2026, 12, 4, 12, tzinfo=UTC)
GRACE = timedelta(minutes=15)
Row = tuple[str, datetime, uuid.UUID]


class _Conn:
    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        yield None


class _Engine:
    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_Conn]:
        yield _Conn()


class _Tenants:
    def __init__(self, broken: str) -> None:
        self.broken = broken
        #: Tenants whose next read fails as the database would for a moment.
        self.blips: set[str] = set()

    async def get(self, tenant_id: str) -> object | None:
        if tenant_id == self.broken:
            raise InvalidTenantSettings(tenant_id, ("privacy.excluded_domain",))
        if tenant_id in self.blips:
            self.blips.discard(tenant_id)
            raise ConnectionError("the pool timed out")
        return None if tenant_id == "gone" else object()


class _Store:
    """Stored scheduled meetings (the earliest first) and those the sweep held."""

    def __init__(
        self,
        rows: list[Row],
        failing: str = "",
        bad: Collection[uuid.UUID] = (),
        erased: Collection[uuid.UUID] = (),
    ) -> None:
        self.rows = sorted(rows, key=lambda r: r[1])
        #: Meetings whose only customer was erased.
        self.erased = set(erased)
        self.done: set[tuple[str, uuid.UUID]] = set()
        self.failing = failing
        self.bad = set(bad)
        self.skipped_sent: list[int] = []
        #: The tenants whose meetings were asked for.
        self.locked_tenants: set[str] = set()

    def _eligible(
        self, tenant: str, at: datetime, activity_id: uuid.UUID, cutoff: datetime, window: tuple[Any, Any]
    ) -> bool:
        after, by = window
        return not (
            (tenant, activity_id) in self.done
            or at > cutoff
            or (after is not None and at <= after)
            or (by is not None and at > by)
        )

    async def tenants(
        self,
        conn: Any,
        cutoff: datetime,
        *,
        started_after: datetime | None = None,
        started_by: datetime | None = None,
        tenants_out: Collection[str] = (),
    ) -> list[str]:
        """As ``repo.tenants_with_ended_meetings``: those with an ended meeting, the earliest first."""
        first: dict[str, datetime] = {}
        for tenant, at, activity_id in self.rows:
            window = (started_after, started_by)
            if (
                tenant not in tenants_out
                and tenant not in first
                and self._eligible(tenant, at, activity_id, cutoff, window)
            ):
                first[tenant] = at
        return sorted(first, key=lambda t: (first[t], t))

    async def lock(
        self,
        conn: Any,
        cutoff: datetime,
        limit: int,
        tenants: Sequence[str],
        *,
        started_after: datetime | None = None,
        started_by: datetime | None = None,
        skipped: Collection[tuple[str, uuid.UUID]] = (),
    ) -> list[tuple[str, uuid.UUID]]:
        """As ``repo.lock_ended_scheduled_meetings``: tenant by tenant, each one's earliest first."""
        self.skipped_sent.append(len(skipped))
        self.locked_tenants.update(tenants)
        out: list[tuple[str, uuid.UUID]] = []
        quarantined = set(skipped)
        for wanted in tenants:
            for tenant, at, activity_id in self.rows:
                if len(out) == limit:
                    return out
                key = (tenant, activity_id)
                window = (started_after, started_by)
                if (
                    tenant == wanted
                    and key not in quarantined
                    and self._eligible(tenant, at, activity_id, cutoff, window)
                ):
                    out.append(key)
        return out

    async def hold(
        self, conn: Any, tenant_id: str, settings: Any, ids: Sequence[uuid.UUID], now: Any
    ) -> tuple[int, int]:
        """As ``HeldSweep._hold``: each meeting stored held, or deleted when an erasure left it
        without an external participant (``erased``); both leave the index."""
        if tenant_id == self.failing or self.bad.intersection(ids):
            raise RuntimeError("a row that does not decode")
        self.done.update((tenant_id, i) for i in ids)
        emptied = self.erased.intersection(ids)
        return len(ids) - len(emptied), len(emptied)

    def held(self, tenant: str) -> int:
        return sum(1 for t, _ in self.done if t == tenant)


async def _nothing_queued(self: hs.HeldSweep, now: object = None) -> int:
    """Publishing the queue (its own integration tests): nothing to publish here."""
    return 0


def _sweep(monkeypatch: pytest.MonkeyPatch, store: _Store, broken: str = "bad") -> hs.HeldSweep:
    monkeypatch.setattr(repo, "tenants_with_ended_meetings", store.tenants)
    monkeypatch.setattr(repo, "lock_ended_scheduled_meetings", store.lock)
    monkeypatch.setattr(hs.HeldSweep, "_hold", store.hold)
    monkeypatch.setattr(hs.HeldSweep, "publish_queued", _nothing_queued)
    return hs.HeldSweep(cast(Any, _Engine()), cast(Any, None), "p.", cast(Any, _Tenants(broken)), grace=GRACE)


async def _interval(sweep: hs.HeldSweep, now: datetime) -> list[hs.SweepReport]:
    """One interval of ``HeldSweep.run``: rounds while one comes back full."""
    reports = []
    for _ in range(hs.MAX_ROUNDS):
        reports.append(await sweep.run_once(now))
        if not reports[-1].full(sweep.batch_size):
            break
    return reports


def _old(tenant: str, n: int, first: int = 0, days: int = 400) -> list[Row]:
    return [
        (tenant, T0 - timedelta(days=days) + timedelta(seconds=i), uuid.UUID(int=first + i)) for i in range(n)
    ]


async def test_a_tenant_with_broken_settings_and_a_huge_backlog_stops_no_other(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # 400,000 old meetings of a tenant whose settings are broken; the good tenant's: three that
    # ended an hour ago, and one older than any of the broken tenant's backlog after them.
    rows = _old("bad", 400_000)
    rows += [("good", T0 - timedelta(hours=1), uuid.UUID(int=10**9 + i)) for i in range(3)]
    rows += [("good", T0 - timedelta(days=300), uuid.UUID(int=2 * 10**9))]
    store = _Store(rows)
    sweep = _sweep(monkeypatch, store)

    first = await sweep.run_once(T0)
    # Its settings are read before any of its meetings: the first round holds all the good
    # tenant's, the backlog's one included, and never asks for one of the broken tenant's.
    assert (first.recent, first.backlog, first.held) == (3, 1, 4)
    assert first.tenants_failed == ["bad"]
    assert store.locked_tenants == {"good"}
    rest = await _interval(sweep, T0)
    assert sum(r.held for r in rest) == 0
    assert store.held("good") == 4
    assert store.held("bad") == 0
    # Left out whole: nothing more of it is looked at; no meeting list grows.
    later = await sweep.run_once(T0 + timedelta(minutes=30))
    assert (later.found, later.tenants_failed, max(store.skipped_sent)) == (0, [], 0)
    assert [r.getMessage() for r in caplog.records if "tenant left out" in r.getMessage()] == [
        "held sweep: tenant left out until the quarantine ends"
    ]


async def test_meetings_that_just_ended_are_held_before_the_backlog(monkeypatch: pytest.MonkeyPatch) -> None:
    # First deploy: 100,000 past meetings synced ahead; one of another tenant just ended.
    store = _Store(
        [*_old("acme", 100_000, days=30), ("globex", T0 - timedelta(minutes=30), uuid.UUID(int=10**9))]
    )
    sweep = _sweep(monkeypatch, store)

    report = await sweep.run_once(T0)

    assert (report.recent, report.backlog, report.held) == (1, 500, 501)
    assert store.held("globex") == 1
    # The backlog goes on a batch a round, the earliest first.
    assert sorted(i.int for t, i in store.done if t == "acme") == list(range(500))


async def test_a_tenant_failing_meeting_by_meeting_is_left_out_past_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _Store([*_old("flaky", 3_000), *_old("good", 10, first=10**6, days=1)], failing="flaky")
    sweep = _sweep(monkeypatch, store)

    reports = await _interval(sweep, T0)

    failed = [key for r in reports for key in r.failed]
    assert len(failed) == hs.QUARANTINE_CAP
    assert [t for r in reports for t in r.tenants_failed] == ["flaky"]
    assert max(store.skipped_sent) == hs.QUARANTINE_CAP
    assert store.held("good") == 10


async def test_a_tenant_gone_is_left_out_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _Store([*_old("gone", 600), *_old("acme", 2, first=10**6, days=1)])
    sweep = _sweep(monkeypatch, store, broken="")

    reports = await _interval(sweep, T0)

    assert [t for r in reports for t in r.tenants_failed] == ["gone"]
    assert (store.held("acme"), store.held("gone")) == (2, 0)


async def test_a_moments_failure_to_read_settings_leaves_no_tenant_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only invalid settings or a tenant gone leave a tenant out: a blip of the database while
    reading them fails the round, and the next interval holds the meetings."""
    store = _Store(_old("acme", 3, days=1))
    tenants = _Tenants(broken="")
    tenants.blips.add("acme")
    monkeypatch.setattr(repo, "tenants_with_ended_meetings", store.tenants)
    monkeypatch.setattr(repo, "lock_ended_scheduled_meetings", store.lock)
    monkeypatch.setattr(hs.HeldSweep, "_hold", store.hold)
    monkeypatch.setattr(hs.HeldSweep, "publish_queued", _nothing_queued)
    sweep = hs.HeldSweep(cast(Any, _Engine()), cast(Any, None), "p.", cast(Any, tenants), grace=GRACE)

    with pytest.raises(ConnectionError):
        await sweep.run_once(T0)
    report = await sweep.run_once(T0 + timedelta(minutes=1))

    assert (report.held, report.tenants_failed, store.held("acme")) == (3, [], 3)


async def test_one_tenants_failing_meetings_do_not_use_up_anothers_quarantine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cap counts a tenant's own meetings: "flaky" filling it leaves "other", with one meeting
    that fails alone, in the sweep: its 49 others are held."""
    other = _old("other", 50, first=10**6, days=2)
    store = _Store([*_old("flaky", 3_000), *other], failing="flaky", bad=[other[7][2]])
    sweep = _sweep(monkeypatch, store)

    reports = await _interval(sweep, T0)

    assert [t for r in reports for t in r.tenants_failed] == ["flaky"]
    assert [key for r in reports for key in r.failed if key[0] == "other"] == [("other", other[7][2])]
    assert store.held("other") == 49


async def test_a_backlog_of_meetings_whose_customers_were_erased_stops_no_other_tenant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three batches of acme's meetings an erasure left without a customer, older than globex's:
    each is deleted when taken (counted apart, not held), so the rounds of one interval go on past
    them and hold globex's."""
    rows = [*_old("acme", 1_500), *_old("globex", 1, first=10**6, days=300)]
    store = _Store(rows, erased={i for _, _, i in rows[:1_500]})
    sweep = _sweep(monkeypatch, store)

    reports = await _interval(sweep, T0)

    assert [(r.backlog, r.held, r.erased) for r in reports] == [(500, 0, 500)] * 3 + [(1, 1, 0)]
    assert store.held("globex") == 1
    assert (await sweep.run_once(T0 + timedelta(minutes=1))).found == 0
