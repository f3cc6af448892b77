"""The team tree and the management chain, as SQL fragments the read queries share.

Teams form a tree through ``ref_teams.parent_id``, reps a chain through ``ref_reps.manager_id``.
Both are read as they stand today (the CRM keeps no history of them); which team a piece of
work belongs to is the rep's membership at the activity time, fixed when it was attributed.
``UNION`` (not ``UNION ALL``) makes the recursion stop on a cycle a CRM may hold.
"""

from __future__ import annotations

#: ``subtree(team_id)``: ``:team`` and every team below it (nothing when ``:team`` is null),
#: teams the CRM deleted included: a team dissolved in a re-org keeps its history under the teams
#: that were above it (a tombstone keeps its parent, ``repository._apply_teams``). Needs ``:t`` and ``:team``; goes after ``WITH RECURSIVE``.
SUBTREE = """
    subtree(team_id) AS (
        SELECT CAST(:team AS text) WHERE CAST(:team AS text) IS NOT NULL
        UNION
        SELECT c.team_id FROM ref_teams c JOIN subtree s ON c.parent_id = s.team_id
        WHERE c.tenant_id = :t
    )"""

#: ``reports(rep_id)``: the reps managed by ``:manager``, directly or through other managers.
#: Needs ``:t`` and ``:manager``; goes after ``WITH RECURSIVE``.
REPORTS = """
    reports(rep_id) AS (
        SELECT r.rep_id FROM ref_reps r
        WHERE r.tenant_id = :t AND r.manager_id = CAST(:manager AS text) AND NOT r.deleted
        UNION
        SELECT r.rep_id FROM ref_reps r JOIN reports x ON r.manager_id = x.rep_id
        WHERE r.tenant_id = :t AND NOT r.deleted
    )"""

#: Joins a team id and a rep id in a ``team_rep`` rollup's entity id (the metrics service's
#: ``TEAM_REP_SEPARATOR``).
TEAM_REP_SEPARATOR = "\x1f"
