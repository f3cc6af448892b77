"""``spm renormalize-phones``: read the stored CRM phones of one tenant again as E.164.

Contacts and reps stored before ingest read every phone (``(415) 555-0100`` kept as sent) never
match a call until the CRM sends them again. This one-off pass reads each stored phone (the raw
form when kept) as ingest reads new records (``libs.common.phones.parse_phone``): a
contact's national-format phones in its country, else its account's, else the tenant's phone
region (``services.ingest.domain.countries.phone_regions_of``: a number valid only in a later of
these is read there); a rep's in the tenant's region. It
rewrites ``phones`` (E.164), ``raw_phones`` (as sent), ``phone_extensions`` (each line
listed with an extension keyed with it, ``+14155550100;ext=12``) and a contact's
``unread_phones`` (what no region read yet, read again with them). ``updated_at`` is left alone, so a later CRM update still wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

#: The tables holding CRM phones, with their key column.
PHONE_TABLES = (("ref_contacts", "contact_id"), ("ref_reps", "rep_id"))

#: Each table's rows with the countries their phones are read in (a contact's own, its account's).
_PHONE_ROWS = {
    "ref_contacts": "SELECT c.contact_id AS key, c.phones, c.raw_phones, c.phone_extensions, c.unread_phones, "
    "c.country, a.country AS account_country "
    "FROM ref_contacts c LEFT JOIN ref_accounts a "
    "ON a.tenant_id = c.tenant_id AND a.account_id = c.account_id AND NOT a.deleted "
    "WHERE c.tenant_id = :t ORDER BY c.contact_id",
    "ref_reps": "SELECT rep_id AS key, phones, raw_phones, phone_extensions, NULL AS unread_phones, "
    "NULL AS country, NULL AS account_country "
    "FROM ref_reps WHERE tenant_id = :t ORDER BY rep_id",
}


@dataclass
class PhoneReport:
    """What a pass found (dry run) or did: per table, rows rewritten; phones that cannot be read."""

    tenant_id: str
    region: str
    dry_run: bool
    rewritten: dict[str, int] = field(default_factory=dict)
    dropped: list[tuple[str, str, str]] = field(default_factory=list)

    def render(self) -> str:
        verb = "would rewrite" if self.dry_run else "rewrote"
        counts = ", ".join(f"{n} {table}" for table, n in self.rewritten.items())
        lines = [f"tenant {self.tenant_id} (region {self.region}): {verb} {counts}"]
        lines += [f"dropped {table} {key}: {raw!r} is not a phone number" for table, key, raw in self.dropped]
        if not self.dry_run and any(self.rewritten.values()):
            lines.append(
                "run `spm reattribute --tenant ... --since ...` to re-decide the activities they match"
            )
        return "\n".join(lines)


def renormalized(
    phones: Sequence[str],
    raw_phones: Sequence[str],
    region: str | tuple[str, ...],
    unread_phones: Sequence[str] = (),
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``(E.164 phones, as sent, unreadable, lines listed with an extension, unread)`` for a
    stored row, read as ingest reads a record (``normalize.read_phones``) from what it was sent
    as (``normalize.stored_phone_sources``: the raw forms when kept alongside, else the stored
    values, then a contact's ``unread_phones``): a number kept twice in two formats is kept once;
    a value listing several numbers gives each; an extension is keyed with its line
    (``+14155550100;ext=12``, ``phone_extensions``); ``unread`` are the values another region
    may read (kept by a contact), ``unreadable`` every value no region read."""
    from services.ingest.domain.normalize import read_phones, stored_phone_sources

    read = read_phones(stored_phone_sources(phones, raw_phones, unread_phones), region)
    unreadable = tuple(refused.raw for refused in read.refused)
    return read.phones, read.raw_phones, unreadable, read.phone_extensions, read.unread


async def tenant_phone_region(engine: AsyncEngine, tenant_id: str) -> str:
    """The region ingest reads this tenant's phones in (its setting, else its time zone's)."""
    from libs.common.tenant_settings_store import load_tenant_settings

    async with engine.connect() as conn:
        settings = await load_tenant_settings(conn, tenant_id)
    if settings is None:
        raise typer.BadParameter(f"no tenant {tenant_id!r}", param_hint="--tenant")
    return settings.phone_region


async def renormalize_stored_phones(
    engine: AsyncEngine, tenant_id: str, region: str, *, dry_run: bool = False
) -> PhoneReport:
    """Rewrite the tenant's stored contact and rep phones as E.164 in one transaction; a contact's
    national-format phones read in its country, else its account's, else ``region``."""
    from sqlalchemy import text

    from services.ingest.domain.countries import phone_regions_of

    report = PhoneReport(tenant_id, region, dry_run)
    async with engine.begin() as conn:
        for table, key in PHONE_TABLES:
            rows = await conn.execute(text(_PHONE_ROWS[table]), {"t": tenant_id})
            changes: list[dict[str, object]] = []
            contacts = table == "ref_contacts"
            for row in rows:
                regions = phone_regions_of(row.country, row.account_country, region)
                held_unread = list(row.unread_phones or ())
                phones, raw, unreadable, keyed, unread = renormalized(
                    list(row.phones), list(row.raw_phones), regions, held_unread
                )
                # A contact keeps what another region may read (``unread_phones``); a rep's are
                # read in the tenant's region only.
                kept = list(unread) if contacts else []
                report.dropped += [(table, row.key, value) for value in unreadable if value not in kept]
                held = (list(row.phones), list(row.raw_phones), list(row.phone_extensions), held_unread)
                if (list(phones), list(raw), list(keyed), kept) != held:
                    changes.append(
                        {"t": tenant_id, "k": row.key, "p": list(phones), "r": list(raw), "x": list(keyed)}
                        | ({"u": kept} if contacts else {})
                    )
            report.rewritten[table] = len(changes)
            if changes and not dry_run:
                unread_set = ", unread_phones = :u" if contacts else ""
                await conn.execute(
                    text(
                        f"UPDATE {table} SET phones = :p, raw_phones = :r, phone_extensions = :x{unread_set} "
                        f"WHERE tenant_id = :t AND {key} = :k"
                    ),
                    changes,
                )
    return report


async def _run(tenant: str, region: str | None, dry_run: bool) -> PhoneReport:
    from libs.common.db.engine import make_engine
    from services.attribution.settings import AttributionSettings

    engine = make_engine(AttributionSettings().database, "renormalize-phones")
    try:
        chosen = region.upper() if region else await tenant_phone_region(engine, tenant)
        return await renormalize_stored_phones(engine, tenant, chosen, dry_run=dry_run)
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("renormalize-phones")
    def renormalize_phones_command(
        tenant: Annotated[str, typer.Option(help="tenant id")],
        region: Annotated[
            str | None,
            typer.Option(help="ISO 3166 region for numbers without +; default: the tenant's setting"),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="report what would change; write nothing")
        ] = False,
    ) -> None:
        """Read the tenant's stored CRM phones again as E.164 (a one-off after upgrading)."""
        if region is not None and len(region) != 2:
            raise typer.BadParameter("a two-letter ISO 3166 region such as US", param_hint="--region")
        typer.echo(asyncio.run(_run(tenant, region, dry_run)).render())
