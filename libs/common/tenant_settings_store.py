"""Where a tenant's :class:`~libs.common.contracts.tenant_settings.TenantSettings` is stored,
how every service reads it (one cache), and how a change is written and versioned.

Storage: ``tenants.timezone`` and ``tenants.fiscal_year_start_month`` (columns other queries
join on), the latest ``insight_thresholds`` version, the latest ``scoring_models`` version (a
reference), and the rest in ``tenants.settings``. Every write appends the whole document to
``tenant_settings_history`` with who and when, in the same transaction.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.audit import Actor, AuditAction, record_admin_action
from libs.common.caching import LoadingCache
from libs.common.contracts.fields import lower_email
from libs.common.contracts.tenant_settings import (
    DEFAULT_TENANT_SETTINGS,
    READ_ONLY,
    InvalidTenantSettings,
    SettingsChangedV1,
    TenantSettings,
    merge_patch,
    read_tenant_settings,
)
from libs.common.jobs import (
    PREVIEWED_BY,
    REATTRIBUTE,
    REATTRIBUTION_PREVIEW_DAYS,
    REBUILD_ROLLUPS,
    REBUILT_BY,
    RECREDIT_REPS,
    RECREDITED_BY,
    REREAD_PHONES,
    QueuedJob,
    queue_job,
)
from libs.common.kafka.failures import TenantSettingsInvalid, TenantUnknown
from libs.common.kafka.runner import ConsumedMessage
from libs.common.phones import e164_or_none
from libs.common.web import field_errors

#: Fields kept outside ``tenants.settings`` (columns and versioned tables).
_OUTSIDE_JSON = frozenset(
    {"time_zone", "fiscal_year_start_month", "insight_thresholds", "scoring_model_version"}
)

_LOAD = """SELECT t.timezone, t.fiscal_year_start_month, t.settings::text AS settings,
       (SELECT i.thresholds::text FROM insight_thresholds i WHERE i.tenant_id = t.tenant_id
        ORDER BY i.version DESC LIMIT 1) AS thresholds,
       (SELECT max(s.version) FROM scoring_models s WHERE s.tenant_id = t.tenant_id) AS scoring_model_version
FROM tenants t WHERE t.tenant_id = :t
"""


def _document(row: Any) -> dict[str, Any]:
    stored = orjson.loads(row.settings or "{}")
    document: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {"(document)": stored}
    document["time_zone"] = row.timezone
    document["fiscal_year_start_month"] = row.fiscal_year_start_month
    if row.thresholds is not None:
        document["insight_thresholds"] = orjson.loads(row.thresholds)
    document["scoring_model_version"] = row.scoring_model_version
    return document


async def load_raw_tenant_settings(conn: AsyncConnection, tenant_id: str) -> dict[str, Any] | None:
    """The stored document as JSON, valid or not; None when there is no such tenant."""
    row = (await conn.execute(text(_LOAD), {"t": tenant_id})).one_or_none()
    return None if row is None else _document(row)


async def load_tenant_settings(conn: AsyncConnection, tenant_id: str) -> TenantSettings | None:
    """The tenant's settings, None when there is no such tenant.

    Raises :class:`InvalidTenantSettings` naming the settings when the stored document does not
    validate (it was written by hand): that tenant waits for a fix, nobody else notices.
    """
    document = await load_raw_tenant_settings(conn, tenant_id)
    return None if document is None else read_tenant_settings(tenant_id, document)


def _unknown_tenant(value: object) -> bool:
    return value is None


class TenantSettingsCache:
    """Every service's copy of its tenants' settings, kept ``ttl_seconds`` at most.

    A ``settings-changed`` event calls :meth:`invalidate`, so a change applies within seconds;
    the TTL only bounds the staleness when an event is missed. An invalid document is cached
    like a valid one (as its error), so a broken tenant costs one query per TTL, not one per
    request; a consumer reads it afresh before parking a batch's messages (:func:`settings_of_tenant`).

    The answer "no such tenant" is cached apart, in at most ``max_unknown`` entries: webhooks
    name their tenant before they are verified, so anyone can make up thousands of tenant ids,
    and those must never push a real tenant's settings out (a full cache drops its least
    recently used entry).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        ttl_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
        max_unknown: int = 1_000,
    ) -> None:
        self.engine = engine
        self.ttl = ttl_seconds
        self._cache: LoadingCache[str, TenantSettings | InvalidTenantSettings | None] = LoadingCache(
            self._load, clock, max_entries, negative=_unknown_tenant, max_negative=max_unknown
        )

    async def get(self, tenant_id: str, *, fresh: bool = False) -> TenantSettings | None:
        """The tenant's settings (None: no such tenant); raises :class:`InvalidTenantSettings`."""
        value = await self._cache.get(tenant_id, fresh=fresh)
        if isinstance(value, InvalidTenantSettings):
            raise value
        return value

    async def get_or_default(self, tenant_id: str) -> TenantSettings:
        """The tenant's settings, or the defaults for a tenant not (yet) in ``tenants``."""
        return await self.get(tenant_id) or DEFAULT_TENANT_SETTINGS

    def invalidate(self, tenant_id: str | None = None) -> None:
        """Forget one tenant's copy (or every copy); the next read loads it again."""
        self._cache.invalidate(tenant_id)

    async def _load(self, tenant_id: str) -> tuple[TenantSettings | InvalidTenantSettings | None, float]:
        async with self.engine.connect() as conn:
            try:
                return await load_tenant_settings(conn, tenant_id), self.ttl
            except InvalidTenantSettings as exc:
                return exc, self.ttl


async def settings_of_batch(
    messages: Sequence[ConsumedMessage[Any]], cache: TenantSettingsCache
) -> dict[str, TenantSettings]:
    """The settings of every tenant in a consumer batch.

    A tenant whose stored settings do not validate raises
    :class:`~libs.common.kafka.failures.TenantSettingsInvalid` naming the settings, and a tenant
    that does not exist (only a buggy producer writes for one) raises
    :class:`~libs.common.kafka.failures.TenantUnknown`: the runner then parks that tenant's
    messages (to the DLQ, with this error) and hands the rest of the batch back, so the other
    tenants are processed as if the broken one did not exist.
    """
    return {
        tenant_id: await settings_of_tenant(tenant_id, cache)
        for tenant_id in sorted({m.payload.tenant_id for m in messages})
    }


async def settings_of_tenant(tenant_id: str, cache: TenantSettingsCache) -> TenantSettings:
    """One tenant's settings, refused as :func:`settings_of_batch` refuses them."""
    try:
        found = await _current_settings(tenant_id, cache)
    except InvalidTenantSettings as exc:
        raise TenantSettingsInvalid(tenant_id, ", ".join(exc.settings), "; ".join(exc.reasons)) from exc
    if found is None:
        raise TenantUnknown(tenant_id)
    return found


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """One saved version of a tenant's settings."""

    tenant_id: str
    version: int
    settings: TenantSettings
    #: Top-level settings whose value changed (``privacy``, ``time_zone``, ...).
    changed: tuple[str, ...]
    changed_by: str
    changed_at: datetime
    #: Background jobs the change queued (a rebuild of period rollups, a re-attribution preview).
    jobs: tuple[QueuedJob, ...] = ()
    #: False when the request changed nothing: ``version`` is the current one, nothing to announce.
    saved: bool = True
    #: What was saved but deserves a look (``{"field", "reason"}``): an alias the change adds or
    #: re-points to a rep id the tenant's CRM data does not hold (yet).
    warnings: tuple[dict[str, str], ...] = ()

    def event(self) -> SettingsChangedV1:
        """The ``settings-changed`` event to publish once the change committed."""
        return SettingsChangedV1(
            tenant_id=self.tenant_id,
            version=self.version,
            changed=self.changed,
            changed_by=self.changed_by,
            changed_at=self.changed_at,
        )


def changed_fields(before: dict[str, Any] | None, after: TenantSettings) -> tuple[str, ...]:
    new = after.model_dump(mode="json")
    if before is None:
        return tuple(new)
    return tuple(name for name, value in new.items() if before.get(name) != value)


async def _lock_tenant(conn: AsyncConnection, tenant_id: str) -> bool:
    """Lock the tenant row so concurrent writers take consecutive versions; False: no such tenant."""
    locked = await conn.execute(
        text("SELECT 1 FROM tenants WHERE tenant_id = :t FOR UPDATE"), {"t": tenant_id}
    )
    return locked.first() is not None


async def save_tenant_settings(
    conn: AsyncConnection, tenant_id: str, settings: TenantSettings, changed_by: str
) -> SettingsChange | None:
    """Store ``settings`` as the tenant's new version, in the caller's transaction.

    Returns None when there is no such tenant. A change of the insight thresholds appends an
    ``insight_thresholds`` version too, as ``PUT /v1/insight-thresholds`` does.
    """
    if not await _lock_tenant(conn, tenant_id):
        return None
    before = await load_raw_tenant_settings(conn, tenant_id)
    return await _save(
        conn, tenant_id, settings, changed_by, before, _changed_since(tenant_id, before, settings)
    )


def _changed_since(
    tenant_id: str, before: dict[str, Any] | None, settings: TenantSettings
) -> tuple[str, ...]:
    """The top-level settings ``settings`` changes over the stored document ``before``."""
    try:
        current = None if before is None else read_tenant_settings(tenant_id, before).model_dump(mode="json")
    except InvalidTenantSettings:
        current = None
    # Written by hand and invalid: compare with what the admin saw (the raw document).
    return tuple(changed_fields(current if current is not None else before, settings))


async def _save(
    conn: AsyncConnection,
    tenant_id: str,
    settings: TenantSettings,
    changed_by: str,
    before: dict[str, Any] | None,
    changed: tuple[str, ...],
    *,
    version_thresholds: bool = False,
) -> SettingsChange:
    document = settings.model_dump(mode="json")
    await conn.execute(
        text(
            "UPDATE tenants SET timezone = :tz, fiscal_year_start_month = :fy, settings = CAST(:s AS jsonb) "
            "WHERE tenant_id = :t"
        ),
        {
            "t": tenant_id,
            "tz": settings.time_zone,
            "fy": settings.fiscal_year_start_month,
            # What the previous release can read too (``OMITTED_AT_DEFAULT``).
            "s": orjson.dumps(
                {k: v for k, v in settings.stored().items() if k not in _OUTSIDE_JSON}
            ).decode(),
        },
    )
    if version_thresholds or "insight_thresholds" in changed:
        await conn.execute(
            text(
                "INSERT INTO insight_thresholds (tenant_id, version, thresholds, created_by) "
                "SELECT :t, coalesce(max(version), 0) + 1, CAST(:doc AS jsonb), :by "
                "FROM insight_thresholds WHERE tenant_id = :t"
            ),
            {"t": tenant_id, "doc": orjson.dumps(document["insight_thresholds"]).decode(), "by": changed_by},
        )
    row = (
        await conn.execute(
            text(
                "INSERT INTO tenant_settings_history (tenant_id, version, settings, changed, changed_by) "
                "SELECT :t, coalesce(max(version), 0) + 1, CAST(:doc AS jsonb), :changed, :by "
                "FROM tenant_settings_history WHERE tenant_id = :t RETURNING version, changed_at"
            ),
            {
                "t": tenant_id,
                "doc": orjson.dumps(document).decode(),
                "changed": list(changed),
                "by": changed_by,
            },
        )
    ).one()
    jobs = await _queue_consequences(conn, tenant_id, changed, changed_by, row.version, before, settings)
    return SettingsChange(tenant_id, row.version, settings, changed, changed_by, row.changed_at, jobs)


#: The most ``rep_aliases`` a change may save (the model reads up to 10,000, what earlier
#: releases saved): one per rep and source that names reps its own way.
MAX_REP_ALIASES = 5_000
#: The most bytes a saved document may take as JSON: each change stores it whole (a version, and
#: twice in the audit log), and every process reloads it on each change.
MAX_SETTINGS_BYTES = 512 * 1024


class SettingsRefused(ValueError):
    """The requested settings do not validate; ``errors`` name each field and the reason."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


def next_settings(
    current: dict[str, Any] | None,
    *,
    document: dict[str, Any] | None = None,
    patch: dict[str, Any] | None = None,
) -> TenantSettings:
    """The settings a PUT (``document``: what is left out takes its default) or a PATCH (``patch``,
    an RFC 7396 merge patch onto the stored document, valid or not) asks for.

    Read-only settings keep their stored value; asking to change one is refused.
    Raises :class:`SettingsRefused`.
    """
    stored = current or {}
    requested = dict(document) if document is not None else merge_patch(stored, patch or {})
    errors = []
    for name in READ_ONLY:
        if name in requested and requested[name] != stored.get(name):
            errors.append(
                {"in": "body", "field": name, "reason": "is read-only here: it follows /v1/scoring-model"}
            )
        requested[name] = stored.get(name)
    try:
        settings = TenantSettings.model_validate(requested)
    except ValidationError as exc:
        errors += field_errors(exc) + _aliases_listed_as_menus(requested)
    if errors:
        raise SettingsRefused(errors)
    if too_large := _too_large(settings):
        raise SettingsRefused(too_large)
    if padded := _padded_aliases(settings, stored):
        raise SettingsRefused(padded)
    if unreadable := _unreadable_exclusions(settings, stored):
        raise SettingsRefused(unreadable)
    return settings


def _unreadable_exclusions(settings: TenantSettings, stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of ``privacy.excluded_addresses`` the change adds that are neither an email
    address nor a phone number read in the tenant's phone region (``ana@``, ``415-55``): ingest
    compares participants' addresses and numbers with them, so such an entry excludes nobody.
    Only what the change brings is refused (a document saved before is read)."""
    kept = _stored_exclusions(stored)
    region = settings.phone_region
    refused = []
    for position, entry in enumerate(settings.privacy.excluded_addresses):
        if entry in kept or _email_or_none(entry) is not None or e164_or_none(entry, region) is not None:
            continue
        hint = " (a domain goes in privacy.excluded_domains)" if entry.strip().startswith("@") else ""
        reason = (
            f"{entry!r} is neither an email address nor a phone number (numbers without + are read "
            f"in the tenant's phone region, {region}){hint}"
        )
        refused.append({"in": "body", "field": f"privacy.excluded_addresses.{position}", "reason": reason})
    return refused


def _stored_exclusions(document: dict[str, Any]) -> set[str]:
    """The entries of a stored document's ``privacy.excluded_addresses``. A document broken by hand
    may hold anything there (a mapping, a number): only its strings count."""
    privacy = document.get("privacy")
    held = privacy.get("excluded_addresses") if isinstance(privacy, dict) else None
    return {entry for entry in held if isinstance(entry, str)} if isinstance(held, list) else set()


def _email_or_none(entry: str) -> str | None:
    """``entry`` as a participant's address is read (``lower_email``), None when it is none."""
    try:
        address = lower_email(entry)
    except ValueError:
        return None
    return None if any(c.isspace() for c in address) else address


def _padded_aliases(settings: TenantSettings, stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of ``rep_aliases`` the change adds or re-points whose source id or rep id is
    blank or padded with spaces (a spreadsheet's empty cell), or holds an invisible (format)
    character (a zero-width space, a byte order mark): ids are compared as written, so such an
    entry maps nobody. Only what the change brings is refused (a document saved before is read)."""
    held = stored.get("rep_aliases")
    if not isinstance(held, dict):
        held = {}
    refused = []
    for key, rep_id in settings.rep_aliases.items():
        if held.get(key) == rep_id:
            continue
        if key.strip() != key or rep_id.strip() != rep_id or not rep_id.strip():
            why = "is blank or padded with spaces"
        elif (hidden := next((c for c in key + rep_id if unicodedata.category(c) == "Cf"), None)) is not None:
            # A zero-width space or a byte order mark pasted with the id: it looks right, maps nobody.
            why = f"holds an invisible character (U+{ord(hidden):04X})"
        else:
            continue
        reason = f"{why}: write the source's id and the rep id as they are"
        refused.append({"in": "body", "field": f"rep_aliases.{key}", "reason": reason})
    return refused


def _too_large(settings: TenantSettings) -> list[dict[str, Any]]:
    """The refusal of a document past ``MAX_REP_ALIASES`` or ``MAX_SETTINGS_BYTES`` (naming the
    setting taking the most bytes), else nothing."""
    if len(settings.rep_aliases) > MAX_REP_ALIASES:
        reason = f"holds {len(settings.rep_aliases)} aliases; at most {MAX_REP_ALIASES} may be saved"
        return [{"in": "body", "field": "rep_aliases", "reason": reason}]
    document = settings.model_dump(mode="json")
    size = len(orjson.dumps(document))
    if size <= MAX_SETTINGS_BYTES:
        return []
    sizes = {name: len(orjson.dumps(value)) for name, value in document.items()}
    largest = max(sizes, key=lambda name: sizes[name])
    reason = (
        f"the settings take {size} bytes as JSON, {sizes[largest]} of them here; at most "
        f"{MAX_SETTINGS_BYTES} may be saved"
    )
    return [{"in": "body", "field": largest, "reason": reason}]


def _aliases_listed_as_menus(requested: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of ``rep_aliases`` whose key ``menu_extensions`` lists too. The model refuses the
    pair on ``menu_extensions`` (it reads ``rep_aliases`` first); the admin may have changed either,
    so the error names the alias too."""
    aliases, menus = requested.get("rep_aliases"), requested.get("menu_extensions")
    if not isinstance(aliases, dict) or not isinstance(menus, list | tuple):
        return []
    listed = {menu.strip() for menu in menus if isinstance(menu, str)}
    return [
        {
            "in": "body",
            "field": f"rep_aliases.{key}",
            "reason": f"{key!r} is listed in menu_extensions too: a menu answers for nobody, so list "
            "it in one of the two",
        }
        for key in aliases
        if key in listed
    ]


async def _reps_extensions_listed_as_menus(
    conn: AsyncConnection, tenant_id: str, settings: TenantSettings
) -> list[dict[str, Any]]:
    """The listed menu extensions that a live rep's CRM record gives as her own
    (``phone_extensions``, ``<line>;ext=<digits>``): a call she answered would read as a menu's,
    not connected."""
    if not settings.menu_extensions:
        return []
    rows = await conn.execute(
        text(
            "SELECT DISTINCT split_part(e, ';ext=', 2) AS extension, r.rep_id "
            "FROM ref_reps r CROSS JOIN LATERAL unnest(r.phone_extensions) AS e "
            "WHERE r.tenant_id = :t AND r.active AND NOT r.deleted AND r.merged_into IS NULL "
            "AND split_part(e, ';ext=', 2) = ANY(:menus) ORDER BY 1, 2"
        ),
        {"t": tenant_id, "menus": list(settings.menu_extensions)},
    )
    return [
        {
            "in": "body",
            "field": "menu_extensions",
            "reason": f"{row.extension!r} is the extension of rep {row.rep_id!r} (her CRM record's "
            "phone_extensions): a menu answers for nobody, so the calls she answers would read not "
            "connected",
        }
        for row in rows
    ]


async def unknown_zone(conn: AsyncConnection, zone: str) -> str | None:
    """Why ``zone`` cannot be a tenant's time zone, when PostgreSQL does not know it; else None.
    Python's zoneinfo opens any file of the zone directory (``right/UTC``, ``posix/Europe/Paris``,
    ``posixrules``, the machine's ``localtime``) and may know a zone newer than the database's;
    the database buckets the funnel and rebuilds rollups in the tenant's zone, and failed on each."""
    known = await conn.scalar(
        text("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = :zone)"), {"zone": zone}
    )
    return (
        None if known else f"{zone!r} is not a time zone the database knows: write an IANA zone, Europe/Paris"
    )


async def _zone_unknown_to_database(conn: AsyncConnection, settings: TenantSettings) -> list[dict[str, Any]]:
    """The refusal of a ``time_zone`` PostgreSQL does not know (``unknown_zone``), else nothing."""
    reason = await unknown_zone(conn, settings.time_zone)
    return [] if reason is None else [{"in": "body", "field": "time_zone", "reason": reason}]


async def change_tenant_settings(
    conn: AsyncConnection,
    tenant_id: str,
    changed_by: str,
    *,
    document: dict[str, Any] | None = None,
    patch: dict[str, Any] | None = None,
    rebuild: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    version_thresholds: bool = False,
    actor: Actor | None = None,
) -> SettingsChange | None:
    """Validate and save a PUT (``document``, or ``rebuild`` of the stored one) or a PATCH, in the
    caller's transaction, under the tenant's lock; None when there is no such tenant. A request that
    changes nothing saves nothing: it answers the current version with ``saved`` False.

    ``version_thresholds`` appends an ``insight_thresholds`` version even when they did not change
    (``PUT /v1/insight-thresholds`` always versions). ``actor`` records the change in the audit log
    (the settings that changed, before and after) in the same transaction. The caller publishes
    ``settings-changed`` once the transaction committed.
    """
    if not await _lock_tenant(conn, tenant_id):
        return None
    current = await load_raw_tenant_settings(conn, tenant_id)
    if rebuild is not None:
        document = rebuild(current or {})
    settings = next_settings(current, document=document, patch=patch)
    changed = _changed_since(tenant_id, current, settings)
    if "menu_extensions" in changed and (
        refused := await _reps_extensions_listed_as_menus(conn, tenant_id, settings)
    ):
        raise SettingsRefused(refused)
    if "time_zone" in changed and (refused := await _zone_unknown_to_database(conn, settings)):
        raise SettingsRefused(refused)
    if not changed and not version_thresholds:
        latest = await settings_history(conn, tenant_id, 1)
        if latest:
            # Nothing changes: no new version, no audit row, nothing to announce.
            return SettingsChange(
                tenant_id,
                latest[0].version,
                settings,
                (),
                latest[0].changed_by,
                latest[0].changed_at,
                saved=False,
            )
    change = await _save(
        conn, tenant_id, settings, changed_by, current, changed, version_thresholds=version_thresholds
    )
    if "rep_aliases" in changed and (
        warnings := await _aliases_to_unknown_reps(conn, tenant_id, settings, current)
    ):
        change = replace(change, warnings=warnings)
    if reread := _exclusions_read_in_a_new_region(settings, current):
        change = replace(change, warnings=change.warnings + reread)
    if actor is not None:
        before, after = current or {}, settings.model_dump(mode="json")
        await record_admin_action(
            conn,
            tenant_id,
            actor,
            AuditAction.SETTINGS_CHANGED,
            "settings",
            before={"version": change.version - 1, **{k: before.get(k) for k in change.changed}},
            after={"version": change.version, **{k: after.get(k) for k in change.changed}},
        )
    return change


#: The most aliases to unknown reps a change names one by one; the rest are counted in one warning.
MAX_ALIAS_WARNINGS = 50


async def _aliases_to_unknown_reps(
    conn: AsyncConnection, tenant_id: str, settings: TenantSettings, before: dict[str, Any] | None
) -> tuple[dict[str, str], ...]:
    """Warnings for the entries of ``rep_aliases`` the change adds or re-points to a rep id that no
    live rep of the tenant's CRM data holds (``ref_reps``, not deleted) nor another entry maps on
    (a chain, ``{"u-9": "7701", "7701": "rep-a"}``). Saved all the same: a rep may arrive from the
    CRM after the mapping naming it (the people are resolved again then), but a typo maps nobody."""
    held = (before or {}).get("rep_aliases")
    old = held if isinstance(held, dict) else {}
    brought = {key: rep_id for key, rep_id in settings.rep_aliases.items() if old.get(key) != rep_id}
    targets = sorted({rep_id for rep_id in brought.values() if rep_id not in settings.rep_aliases})
    if not targets:
        return ()
    rows = await conn.execute(
        text("SELECT rep_id FROM ref_reps WHERE tenant_id = :t AND rep_id = ANY(:ids) AND NOT deleted"),
        {"t": tenant_id, "ids": targets},
    )
    known = {row.rep_id for row in rows}
    unknown = [
        (key, rep_id) for key, rep_id in sorted(brought.items()) if rep_id in targets and rep_id not in known
    ]
    warnings = [
        {
            "field": f"rep_aliases.{key}",
            "reason": f"maps to {rep_id!r}, which is no rep in the tenant's CRM data (yet): saved, and "
            "applied once the CRM sync brings that rep; if the id is a typo, correct it",
        }
        for key, rep_id in unknown[:MAX_ALIAS_WARNINGS]
    ]
    if len(unknown) > MAX_ALIAS_WARNINGS:
        more = len(unknown) - MAX_ALIAS_WARNINGS
        warnings.append(
            {
                "field": "rep_aliases",
                "reason": f"{more} more entries map to rep ids the CRM data does not hold (yet)",
            }
        )
    return tuple(warnings)


def _exclusions_read_in_a_new_region(
    settings: TenantSettings, before: dict[str, Any] | None
) -> tuple[dict[str, str], ...]:
    """Warnings for the stored entries of ``privacy.excluded_addresses`` written without ``+`` that
    a change of the tenant's phone region (``default_phone_region``, or the time zone it follows)
    makes read as another number: ``(415) 555-2671`` saved under US reads as a German number under
    DE. Saved all the same (the entries were valid); E.164 keeps its reading."""
    try:
        old_region = TenantSettings.model_validate(before or {}).phone_region
    except ValidationError:
        return ()  # a document broken by hand: its region cannot be told
    region = settings.phone_region
    stored = _stored_exclusions(before or {})
    if region == old_region or not stored:
        return ()
    warnings = []
    for position, entry in enumerate(settings.privacy.excluded_addresses):
        if entry not in stored or "@" in entry or entry.strip().startswith("+"):
            continue
        was, now = e164_or_none(entry, old_region), e164_or_none(entry, region)
        if was == now:
            continue
        reads = f"now reads as {now}" if now is not None else "now reads as no number (it excludes nobody)"
        reason = (
            f"{entry!r} is read in the tenant's phone region, now {region}: it {reads}, not {was or 'no number'} "
            f"as in {old_region}; write it in E.164 (with + and the country code) to keep it"
        )
        warnings.append({"field": f"privacy.excluded_addresses.{position}", "reason": reason})
    return tuple(warnings)


def remapped_names(before: dict[str, Any] | None, after: TenantSettings) -> list[str]:
    """The rep ids and addresses whose entry of ``rep_aliases`` was added, removed or re-pointed
    (both sides of each such entry), sorted."""
    held = (before or {}).get("rep_aliases")
    old = {(str(k), str(v)) for k, v in held.items()} if isinstance(held, dict) else set()
    return sorted({name for pair in old ^ set(after.rep_aliases.items()) for name in pair})


async def _queue_consequences(
    conn: AsyncConnection,
    tenant_id: str,
    changed: tuple[str, ...],
    changed_by: str,
    version: int,
    before: dict[str, Any] | None,
    settings: TenantSettings,
) -> tuple[QueuedJob, ...]:
    jobs = []
    if REBUILT_BY.intersection(changed):
        # Period rollups are bucketed by local day and fiscal quarter: rebuild them exactly. A
        # rebuild reads the calendar when it runs: one still queued does all this one would (it
        # holds the tenant's rollup lock, and the metrics batches holding its messages, throughout).
        job_id = await queue_job(
            conn, tenant_id, REBUILD_ROLLUPS, changed_by, settings_version=version, unless_waiting=True
        )
        jobs.append(QueuedJob(job_id, REBUILD_ROLLUPS))
    if PREVIEWED_BY.intersection(changed):
        # New activities follow the new policy at once; history only moves on request, so
        # count first what a re-attribution would move.
        since = datetime.now(UTC).date() - timedelta(days=REATTRIBUTION_PREVIEW_DAYS)
        parameters = {"since": since.isoformat(), "until": None, "dry_run": True}
        job_id = await queue_job(
            conn, tenant_id, REATTRIBUTE, changed_by, parameters=parameters, settings_version=version
        )
        jobs.append(QueuedJob(job_id, REATTRIBUTE))
    if RECREDITED_BY.intersection(changed) and (names := remapped_names(before, settings)):
        # Who a person is applies to history at once, as a merge from the CRM does.
        job_id = await queue_job(
            conn, tenant_id, RECREDIT_REPS, changed_by, parameters={"names": names}, settings_version=version
        )
        jobs.append(QueuedJob(job_id, RECREDIT_REPS))
    if _phone_region_of(tenant_id, before) not in (
        None,
        settings.phone_region,
    ) and await _holds_unread_phones(conn, tenant_id):
        # Numbers no region read (a UK ``020 ...`` synced while the tenant was read as US) are
        # read again in the new region by ingest; the calls to them parked are re-matched.
        job_id = await queue_job(
            conn,
            tenant_id,
            REREAD_PHONES,
            changed_by,
            parameters={"region": settings.phone_region},
            settings_version=version,
            # One still queued for the region (flipped away and back) reads it when it runs.
            unless_waiting=True,
        )
        jobs.append(QueuedJob(job_id, REREAD_PHONES))
    return tuple(jobs)


def _phone_region_of(tenant_id: str, document: dict[str, Any] | None) -> str | None:
    """The phone region of a stored settings document; None when it is unknown or unreadable."""
    if document is None:
        return None
    try:
        return read_tenant_settings(tenant_id, document).phone_region
    except InvalidTenantSettings:
        return None


async def _holds_unread_phones(conn: AsyncConnection, tenant_id: str) -> bool:
    held = await conn.execute(
        text(
            "SELECT 1 FROM ref_contacts WHERE tenant_id = :t AND cardinality(unread_phones) > 0 "
            "AND NOT deleted UNION ALL SELECT 1 FROM ref_reps WHERE tenant_id = :t "
            "AND cardinality(unread_phones) > 0 AND NOT deleted LIMIT 1"
        ),
        {"t": tenant_id},
    )
    return held.first() is not None


@dataclass(frozen=True, slots=True)
class SettingsVersion:
    version: int
    settings: dict[str, Any]
    changed: tuple[str, ...]
    changed_by: str
    changed_at: datetime


async def settings_history(
    conn: AsyncConnection, tenant_id: str, limit: int, before_version: int | None = None
) -> list[SettingsVersion]:
    """The tenant's saved versions, newest first, older than ``before_version`` when given."""
    return (await settings_history_page(conn, tenant_id, limit, before_version))[0]


async def settings_history_page(
    conn: AsyncConnection,
    tenant_id: str,
    limit: int,
    before_version: int | None = None,
    max_bytes: int | None = None,
) -> tuple[list[SettingsVersion], bool]:
    """Up to ``limit`` saved versions, newest first, older than ``before_version`` when given, and
    whether older ones remain. With ``max_bytes``, the page stops before its documents (as
    stored) pass it, one version at least: a document may be megabytes (``rep_aliases``), and
    every change stores it whole again, so a page of them could be gigabytes. Only the documents
    kept are read out."""
    rows = await conn.execute(
        text(
            "SELECT version, settings::text AS settings, changed, changed_by, changed_at, remaining FROM ("
            "  SELECT version, settings, changed, changed_by, changed_at, count(*) OVER () AS remaining,"
            "         sum(pg_column_size(settings)) OVER (ORDER BY version DESC) - pg_column_size(settings) AS ahead"
            "  FROM tenant_settings_history WHERE tenant_id = :t"
            "  AND (CAST(:before AS integer) IS NULL OR version < :before) ORDER BY version DESC LIMIT :limit"
            ") page WHERE CAST(:budget AS bigint) IS NULL OR ahead < :budget ORDER BY version DESC"
        ),
        {"t": tenant_id, "before": before_version, "limit": limit, "budget": max_bytes},
    )
    versions: list[SettingsVersion] = []
    remaining = 0
    for r in rows:
        remaining = r.remaining
        versions.append(
            SettingsVersion(r.version, orjson.loads(r.settings), tuple(r.changed), r.changed_by, r.changed_at)
        )
    return versions, remaining > len(versions)


async def _current_settings(tenant_id: str, cache: TenantSettingsCache) -> TenantSettings | None:
    """The cached settings, read afresh once when the copy held is an absence or an invalid document.

    A tenant created since its absence was cached, or whose settings were fixed since its broken
    document was cached, must not be refused: its messages would go to the DLQ again. The runbook's
    "fix the setting, then replay the DLQ" replays at once, and a replica that has not heard the
    ``settings-changed`` event yet would still hold the broken copy for up to the cache's TTL. It
    costs one read per batch holding a tenant whose settings are broken, the batch's messages
    being parked anyway.
    """
    try:
        cached = await cache.get(tenant_id)
    except InvalidTenantSettings:
        cached = None
    return cached or await cache.get(tenant_id, fresh=True)
