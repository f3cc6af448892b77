"""What metrics consumes, declared as data."""

from __future__ import annotations

from libs.common.topics import ACTIVITY_ATTRIBUTED

CONSUMES = (ACTIVITY_ATTRIBUTED,)
PRODUCES = ()
