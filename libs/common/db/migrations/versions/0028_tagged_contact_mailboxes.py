"""A contact's ``+tagged`` address is held as its mailbox too (``pia+crm@plume.example`` also as
``pia@plume.example``; a Gmail one without its dots at ``gmail.com``), as
``personal_domains.mailbox_forms`` now holds a record's addresses: the rows the contacts stored
before would have had (``ref_contact_identities``). Nothing is re-decided: ``spm reattribute``
re-decides a period's activities when wanted (docs/attribution.md).

The downgrade removes the email identities the rule before did not hold: a contact's listed
addresses and the dotless mailbox of an untagged Gmail one stay.

Revision ID: 0028_tagged_contact_mailboxes
Revises: 0027_contacts_by_account
Create Date: 2026-12-04
"""

from alembic import op

revision = "0028_tagged_contact_mailboxes"
down_revision = "0027_contacts_by_account"
branch_labels = None
depends_on = None

#: The mailbox of a lower-cased ``identity`` holding a ``+tag`` (``mailbox_address``).
_MAILBOX = """
    CASE WHEN split_part(identity, '@', 2) IN ('gmail.com', 'googlemail.com')
         THEN replace(split_part(split_part(identity, '@', 1), '+', 1), '.', '') || '@gmail.com'
         ELSE split_part(split_part(identity, '@', 1), '+', 1) || '@' || split_part(identity, '@', 2)
    END
"""


def upgrade() -> None:
    op.execute(
        f"""
        INSERT INTO ref_contact_identities (tenant_id, identity, contact_id)
        SELECT DISTINCT tenant_id, mailbox, contact_id FROM (
            SELECT tenant_id, contact_id, {_MAILBOX} AS mailbox
            FROM ref_contact_identities
            WHERE identity LIKE '%+%@%' AND identity NOT LIKE '+%'
        ) tagged
        WHERE mailbox NOT LIKE '@%'
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM ref_contact_identities i
        USING ref_contacts c
        WHERE c.tenant_id = i.tenant_id AND c.contact_id = i.contact_id
          AND i.identity LIKE '%@%'
          AND NOT EXISTS (
              SELECT 1 FROM unnest(c.emails) AS listed(address)
              WHERE lower(address) = i.identity
                 OR (split_part(lower(address), '@', 2) IN ('gmail.com', 'googlemail.com')
                     AND address NOT LIKE '%+%'
                     AND replace(split_part(lower(address), '@', 1), '.', '') || '@gmail.com' = i.identity)
          )
        """
    )
