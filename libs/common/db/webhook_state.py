"""The advisory lock of one ``webhook_state`` row, shared by every writer of the table.

Ingest's fold of a vendor's callbacks holds it (``lock_webhook_state``) until it commits; the
duplicate ledger's statement, shared by every request in flight, try-locks it and skips a row held
(``SeenLedger.look_up_keeping``); an erasure and the retention purge take it before deleting a row,
so that the shared statement skips the row rather than wait behind their transaction.
"""

from __future__ import annotations


def webhook_state_lock(tenant_id: str, source: str, object_key: str) -> str:
    """The SQL expression of the lock's key for a row, from three SQL text expressions (bind
    parameters such as ``":t"``, or column names)."""
    return f"hashtextextended('webhook_state/' || {tenant_id} || '/' || {source} || '/' || {object_key}, 0)"
