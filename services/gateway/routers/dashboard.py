"""The built-in dashboard: static HTML, CSS and JavaScript, no build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard() -> FileResponse:
    """The dashboard page; it signs in with an API key kept in sessionStorage."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
