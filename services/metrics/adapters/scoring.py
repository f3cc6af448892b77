"""Scoring models and the rescore of a tenant's history, in SQL.

``scoring_state.applied_version`` names the model every stored score was computed with
(0: the built-in default, for a tenant that never saved one). Writers of scores hold that
row FOR SHARE while they compute with it; a rescore holds it FOR UPDATE while it rewrites
every score and moves the version, so the two never interleave.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.db.refresh_state import mark_dirty
from services.metrics.adapters.rollups import COUNTER_COLUMNS
from services.metrics.domain.definitions import Counter
from services.metrics.domain.scoring import DEFAULT_SCORING_MODEL, ScoringModel, weights_by_counter

log = logging.getLogger(__name__)

#: The applied version of a tenant scored with ``DEFAULT_SCORING_MODEL`` because it has none.
DEFAULT_VERSION = 0


@dataclass
class ScoringModelCache:
    """Models by (tenant, version): a stored version never changes, so entries never expire."""

    _models: dict[tuple[str, int], ScoringModel] = field(default_factory=dict)

    async def get(self, conn: AsyncConnection, tenant_id: str, version: int) -> ScoringModel:
        if version == DEFAULT_VERSION:
            return DEFAULT_SCORING_MODEL
        key = (tenant_id, version)
        if key not in self._models:
            model = await load_model(conn, tenant_id, version)
            if model is None:
                raise LookupError(f"scoring model {version} of tenant {tenant_id} is missing or invalid")
            self._models[key] = model
        return self._models[key]


async def load_model(conn: AsyncConnection, tenant_id: str, version: int) -> ScoringModel | None:
    row = (
        await conn.execute(
            text("SELECT model FROM scoring_models WHERE tenant_id = :t AND version = :v"),
            {"t": tenant_id, "v": version},
        )
    ).first()
    if row is None:
        return None
    try:
        return ScoringModel.model_validate({**row.model, "version": version})
    except ValidationError:
        log.exception("invalid scoring model ignored", extra={"version": version})
        return None


async def moved_versions(conn: AsyncConnection, tenant_ids: Sequence[str] | None = None) -> dict[str, int]:
    """Tenants whose newest stored model is newer than the applied one (all tenants when None)."""
    result = await conn.execute(
        text(
            "SELECT m.tenant_id, max(m.version) AS latest FROM scoring_models m "
            "LEFT JOIN scoring_state s ON s.tenant_id = m.tenant_id "
            "WHERE (CAST(:all AS boolean) OR m.tenant_id = ANY(:t)) "
            "GROUP BY m.tenant_id, s.applied_version "
            "HAVING max(m.version) > COALESCE(s.applied_version, 0)"
        ),
        {"all": tenant_ids is None, "t": list(tenant_ids or [])},
    )
    return {row.tenant_id: row.latest for row in result}


async def share_applied_versions(
    conn: AsyncConnection, tenant_ids: Sequence[str], *, skip_busy: bool = False
) -> dict[str, int]:
    """Each tenant's applied version, held FOR SHARE until commit so no rescore runs meanwhile.

    With ``skip_busy``, a tenant whose row a rescore holds (FOR UPDATE, for its whole
    transaction) is left out instead of waited for: the consumer sets its versions aside."""
    ordered = sorted(tenant_ids)
    if not ordered:
        return {}
    await conn.execute(
        text(
            "INSERT INTO scoring_state (tenant_id, applied_version) "
            "SELECT unnest(CAST(:t AS text[])), 0 ON CONFLICT (tenant_id) DO NOTHING"
        ),
        {"t": ordered},
    )
    result = await conn.execute(
        text(
            "SELECT tenant_id, applied_version FROM scoring_state WHERE tenant_id = ANY(:t) "
            f"ORDER BY tenant_id FOR SHARE{' SKIP LOCKED' if skip_busy else ''}"
        ),
        {"t": ordered},
    )
    return {row.tenant_id: row.applied_version for row in result}


def _score_expression(weights: Mapping[Counter, float]) -> tuple[str, dict[str, float]]:
    terms, params = [], {}
    for column in COUNTER_COLUMNS:
        weight = weights.get(Counter(column), 0.0) if column != "activities" else 0.0
        if weight:
            terms.append(f"CAST(:w_{column} AS float8) * {column}")
            params[f"w_{column}"] = weight
    return (" + ".join(terms) or "CAST(0 AS float8)"), params


async def rescore_tenant(
    conn: AsyncConnection, tenant_id: str, latest: int, models: ScoringModelCache
) -> bool:
    """Rewrite every score of the tenant with model ``latest`` unless already applied; True if it did.

    Runs in the caller's transaction, which must commit right after: the FOR UPDATE lock on
    the tenant's scoring_state row keeps score writers out until then.
    """
    await conn.execute(
        text(
            "INSERT INTO scoring_state (tenant_id, applied_version) VALUES (:t, 0) "
            "ON CONFLICT (tenant_id) DO NOTHING"
        ),
        {"t": tenant_id},
    )
    applied = (
        await conn.execute(
            text("SELECT applied_version FROM scoring_state WHERE tenant_id = :t FOR UPDATE"),
            {"t": tenant_id},
        )
    ).scalar_one()
    if applied >= latest:
        return False
    try:
        model = await models.get(conn, tenant_id, latest)
    except LookupError:
        # The gateway validates models before storing them; should one still be unusable,
        # scores stay on the applied model rather than blocking the consumer.
        log.exception("scoring model not applied", extra={"tenant_id": tenant_id, "version": latest})
        return False
    expression, params = _score_expression(weights_by_counter(model))
    for table in ("metric_contributions", "metric_rollups"):
        await conn.execute(
            text(
                f"UPDATE {table} SET score = {expression} "
                f"WHERE tenant_id = :t AND score IS DISTINCT FROM ({expression})"
            ),
            {"t": tenant_id, **params},
        )
    await conn.execute(
        text("UPDATE scoring_state SET applied_version = :v, applied_at = now() WHERE tenant_id = :t"),
        {"t": tenant_id, "v": latest},
    )
    # Rep period stats and insights hold scores too: the refresher recomputes them.
    await mark_dirty(conn, [tenant_id])
    return True


async def rescore_moved(
    engine: AsyncEngine, models: ScoringModelCache, tenant_ids: Sequence[str] | None
) -> int:
    """Rescore every tenant (of ``tenant_ids``, or all) whose model moved; one transaction each."""
    async with engine.connect() as conn:
        moved = await moved_versions(conn, tenant_ids)
    done = 0
    for tenant_id, latest in sorted(moved.items()):
        async with engine.begin() as conn:
            if await rescore_tenant(conn, tenant_id, latest, models):
                done += 1
                log.info("rescored tenant history", extra={"tenant_id": tenant_id, "version": latest})
    return done
