"""How far a tenant's data has got through the pipeline, so a sync job knows when it is visible."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from services.gateway.adapters import crm
from services.gateway.auth import ReaderDep
from services.gateway.deps import PROBLEM_RESPONSES, ConnDep
from services.gateway.schemas import CrmCountsRead, PipelineStageRead, PipelineStatusRead

router = APIRouter(prefix="/v1/pipeline", tags=["pipeline"], responses=PROBLEM_RESPONSES)


@router.get("/status", response_model=PipelineStatusRead)
async def pipeline_status(principal: ReaderDep, conn: ConnDep) -> PipelineStatusRead:
    """Per stage: activities processed, waiting, and how long the oldest has waited."""
    row, counts = await crm.pipeline_status(conn, principal.tenant_id)
    now = row["as_of"]

    def waited(oldest: datetime | None) -> float:
        return 0.0 if oldest is None else max(0.0, round((now - oldest).total_seconds(), 3))

    stages = [
        PipelineStageRead(
            stage="ingest",
            processed=row["accepted"],
            pending=0,
            oldest_pending_seconds=0.0,
            latest_at=row["accepted_latest"],
        ),
        PipelineStageRead(
            stage="attribution",
            processed=row["attributed"],
            pending=row["attribution_pending"],
            oldest_pending_seconds=waited(row["attribution_oldest"]),
            latest_at=row["attributed_latest"],
        ),
        PipelineStageRead(
            stage="metrics",
            processed=row["counted"],
            pending=row["metrics_pending"],
            oldest_pending_seconds=waited(row["metrics_oldest"]),
            latest_at=None,
        ),
    ]
    return PipelineStatusRead(
        as_of=now,
        # Counted activities show in scores at once, in insights once the read models caught up.
        up_to_date=all(s.pending == 0 for s in stages)
        and row["jobs_pending"] == 0
        and row["dirty_since"] is None
        and (row["counted"] == 0 or row["refreshed_at"] is not None),
        stages=stages,
        read_models_refreshed_at=row["refreshed_at"],
        read_models_dirty_since=row["dirty_since"],
        settings_jobs_pending=row["jobs_pending"],
        rematch_jobs_failed=row["rematch_failed"],
        crm=CrmCountsRead(**counts),
    )
