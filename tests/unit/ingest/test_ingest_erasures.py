"""Ingest never publishes an erased person: their participation is masked before privacy and publishing."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.contracts.activities import ActivityIn
from libs.common.contracts.crm import ContactV1, CrmSyncIn
from libs.common.contracts.tenant_settings import read_tenant_settings
from libs.common.erasures import ERASED_ADDRESS, ErasedIdentities, IdentityKind, erasure_key, identity_hash
from services.ingest.adapters.repository import TenantContext
from services.ingest.domain.tenant_config import privacy_policy, webhook_config
from services.ingest.handlers import crm_messages, screen_activities

KEY = erasure_key("test-secret-key")
ERASED = ErasedIdentities(KEY, frozenset({identity_hash(KEY, IdentityKind.EMAIL, "bo@buyer.example")}))


def _context(erased: ErasedIdentities) -> TenantContext:
    settings = read_tenant_settings("acme", {"internal_domains": ["seller.example"]})
    return TenantContext(
        "acme", settings, webhook_config("acme", settings, frozenset()), privacy_policy(settings), erased
    )


def _email(*to: str) -> ActivityIn:
    return ActivityIn.model_validate(
        {
            "source": "mail",
            "external_id": "m-1",
            "kind": "email",
            "direction": "outbound",
            "outcome": "sent",
            "occurred_at": datetime(2026, 11, 2, 16, tzinfo=UTC),
            "participants": [
                {"email": "ana@seller.example", "role": "from"},
                *(
                    {"email": a, "role": "to", "name": "Bo Person" if a.startswith("bo") else None}
                    for a in to
                ),
            ],
        }
    )


def test_an_erased_participant_is_masked_and_the_others_kept() -> None:
    screened = screen_activities(_context(ERASED), [_email("bo@Buyer.example", "cy@buyer.example")])
    [(published, _automated, _id)] = screened.kept
    assert [p.email for p in published.participants] == [
        "ana@seller.example",
        ERASED_ADDRESS,
        "cy@buyer.example",
    ]
    assert "Bo Person" not in published.model_dump_json()


def test_without_erasures_nothing_changes() -> None:
    activity = _email("bo@buyer.example")
    [(published, _automated, _id)] = screen_activities(_context(ErasedIdentities(KEY)), [activity]).kept
    assert published == activity


def test_a_crm_contact_of_an_erased_person_is_not_published() -> None:
    sync = CrmSyncIn.model_validate(
        {
            "source": "test",
            "entities": [
                {
                    "entity_type": "contact",
                    "id": "con-bo",
                    "emails": ["bo@buyer.example"],
                    "updated_at": "2026-11-02T15:00:00Z",
                },
                {
                    "entity_type": "contact",
                    "id": "con-cy",
                    "emails": ["cy@buyer.example"],
                    "updated_at": "2026-11-02T15:00:00Z",
                },
            ],
        }
    )
    published = crm_messages(sync, "acme", "US", "", ERASED).messages
    assert [m.key for m in published] == [b"acme:contact:con-cy"]
    assert isinstance(sync.entities[0], ContactV1)
    assert len(crm_messages(sync, "acme", "US", "").messages) == 2
