"""Fixtures of the security tier (defined in ``stack.py``, shared by its modules)."""

from .stack import json_log, services

__all__ = ["json_log", "services"]
