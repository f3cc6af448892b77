"""Reps' roles, and activity goals per role.

``ref_reps.role`` is the rep's job role as the CRM last reported it (``RepV1.role``; null when
the source has none). A role goal (``activity_goals.scope = 'role'``) names the role in
``activity_goals.role``, and applies to the reps whose current role it is; every other scope
leaves ``role`` null.

Revision ID: 0012_rep_roles
Revises: 0011_insights
Create Date: 2026-12-02
"""

from alembic import op

revision = "0012_rep_roles"
down_revision = "0011_insights"
branch_labels = None
depends_on = None


def _script(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _script(
        """
        ALTER TABLE ref_reps ADD COLUMN role text;
        ALTER TABLE activity_goals ADD COLUMN role text;
        ALTER TABLE activity_goals DROP CONSTRAINT activity_goals_scope_check;
        ALTER TABLE activity_goals ADD CONSTRAINT activity_goals_scope_check
            CHECK (scope IN ('rep', 'team', 'role', 'tenant'));
        ALTER TABLE activity_goals ADD CONSTRAINT activity_goals_role_check
            CHECK ((scope = 'role') = (role IS NOT NULL))
        """
    )


def downgrade() -> None:
    _script(
        """
        DELETE FROM activity_goals WHERE scope = 'role';
        ALTER TABLE activity_goals DROP CONSTRAINT activity_goals_role_check;
        ALTER TABLE activity_goals DROP CONSTRAINT activity_goals_scope_check;
        ALTER TABLE activity_goals ADD CONSTRAINT activity_goals_scope_check
            CHECK (scope IN ('rep', 'team', 'tenant'));
        ALTER TABLE activity_goals DROP COLUMN role;
        ALTER TABLE ref_reps DROP COLUMN role
        """
    )
