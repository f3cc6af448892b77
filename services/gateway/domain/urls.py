"""What of a URL may be written down where a secret must not be."""

from __future__ import annotations

from urllib.parse import urlsplit


def audited_url(url: str) -> str:
    """``scheme://host[:port]``, and ``/***`` when the URL has a path or query beyond ``/``."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return origin + ("/***" if parts.path not in ("", "/") or parts.query or parts.fragment else "")
