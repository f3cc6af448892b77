"""What the system knows of the CRM: accounts and contacts, a page at a time (deals: ``deals.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from libs.common.contracts.crm import Relationship
from services.gateway.adapters import crm
from services.gateway.auth import ReaderDep
from services.gateway.deps import (
    PROBLEM_RESPONSES,
    ConnDep,
    CursorQuery,
    LimitQuery,
    OptionsDep,
    decode_cursor,
    encode_cursor,
    page_size,
)
from services.gateway.schemas import AccountPage, AccountRead, ContactPage, ContactRead

router = APIRouter(tags=["crm"], responses=PROBLEM_RESPONSES)


@router.get("/v1/accounts", response_model=AccountPage)
async def list_accounts(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    relationship: Annotated[
        Relationship | None,
        Query(description="Only accounts of this relationship: customer, prospect, partner, vendor or other"),
    ] = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> AccountPage:
    """Accounts (not deleted or merged away) ordered by id, a page at a time."""
    size = page_size(limit, options)
    after = decode_cursor(cursor, 1)[0] if cursor else None
    rows = await crm.list_accounts(
        conn, principal.tenant_id, relationship=relationship, after=after, limit=size + 1
    )
    items = [AccountRead(**row) for row in rows[:size]]
    return AccountPage(
        items=items, next_cursor=encode_cursor([items[-1].account_id]) if len(rows) > size else None
    )


@router.get("/v1/contacts", response_model=ContactPage)
async def list_contacts(
    principal: ReaderDep,
    conn: ConnDep,
    options: OptionsDep,
    account_id: Annotated[str | None, Query(description="Only this account's contacts")] = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> ContactPage:
    """Contacts (not deleted or merged away) ordered by id, a page at a time."""
    size = page_size(limit, options)
    after = decode_cursor(cursor, 1)[0] if cursor else None
    rows = await crm.list_contacts(
        conn, principal.tenant_id, account_id=account_id, after=after, limit=size + 1
    )
    items = [ContactRead(**row) for row in rows[:size]]
    return ContactPage(
        items=items, next_cursor=encode_cursor([items[-1].contact_id]) if len(rows) > size else None
    )
