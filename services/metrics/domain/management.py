"""Who a manager manages: the reps reporting to them, directly or through other managers.

Pure rules over the CRM's ``manager_id`` of each rep (``RepV1.manager_id``), as it stands today.
A manager's weekly digest lists these reps (``adapters.digests``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: How many levels of management below a manager their reps are read to. No real organisation
#: is this deep; a chain of 1,000 reps, each the manager of the next, gave 999 digests listing
#: half a million rows together (each manager's digest every rep below them), recomputed by a
#: recursive query per manager that read every rep of the tenant at each of its 1,000 steps.
MAX_MANAGEMENT_LEVELS = 20


def reports_of(
    managers: Iterable[str], manager_of: Mapping[str, str], levels: int = MAX_MANAGEMENT_LEVELS
) -> dict[str, list[str]]:
    """Each of ``managers`` -> the reps reporting to them within ``levels`` levels, sorted.

    ``manager_of`` maps each rep the CRM has not deleted to the rep it reports to: a deleted
    rep reports to no one and manages no one here, so the reps below them are no longer reached
    through them. A cycle the CRM may hold ends the walk (the manager is among their own reps
    when it leads back to them, as before).
    """
    managed: dict[str, list[str]] = {}
    for rep_id, manager_id in manager_of.items():
        managed.setdefault(manager_id, []).append(rep_id)
    found: dict[str, list[str]] = {}
    for manager_id in managers:
        seen: set[str] = set()
        level = managed.get(manager_id, [])
        for _ in range(levels):
            fresh = [rep for rep in level if rep not in seen]
            if not fresh:
                break
            seen.update(fresh)
            level = [rep for above in fresh for rep in managed.get(above, ())]
        found[manager_id] = sorted(seen)
    return found
