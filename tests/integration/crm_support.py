"""What several integration tests share: Ana (rep-1) on team A, the Buyer account and deal, her email to Bo."""

from __future__ import annotations

from typing import Any

T0 = "2026-11-02T15:00:00Z"
ANA_EMAIL = "ana@seller.example"
ANA_PHONE = "+14155550001"


def ana_on_team_a(*, with_phone: bool = True, at: str = T0) -> list[dict[str, Any]]:
    """team-a, rep-1 (Ana, her email and unless ``with_phone`` is false her phone), and her membership."""
    rep: dict[str, Any] = {"entity_type": "rep", "id": "rep-1", "name": "Ana", "emails": [ANA_EMAIL]}
    if with_phone:
        rep["phones"] = [ANA_PHONE]
    return [
        {"entity_type": "team", "id": "team-a", "name": "A", "updated_at": at},
        {**rep, "updated_at": at},
        {
            "entity_type": "team_membership",
            "id": "m1",
            "rep_id": "rep-1",
            "team_id": "team-a",
            "valid_from": "2026-01-01",
            "updated_at": at,
        },
    ]


def buyer_account(*, at: str = T0) -> dict[str, Any]:
    """acc-1, "Buyer", on buyer.example."""
    return {
        "entity_type": "account",
        "id": "acc-1",
        "name": "Buyer",
        "domains": ["buyer.example"],
        "updated_at": at,
    }


def email_from_ana(external_id: str, **fields: Any) -> dict[str, Any]:
    """An email Ana sent to bo@buyer.example on 2026-11-02 at 16:00 UTC; ``fields`` add or replace keys."""
    return {
        "source": "mail",
        "external_id": external_id,
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": "2026-11-02T16:00:00Z",
        "participants": [
            {"email": ANA_EMAIL, "role": "from"},
            {"email": "bo@buyer.example", "role": "to"},
        ],
        **fields,
    }


def buyer_deal(contacts: list[dict[str, Any]], *, at: str = T0) -> dict[str, Any]:
    """deal-1, "Buyer deal" of acc-1, owned by Ana, at proposal since 2026-10-01, with these contact roles."""
    return {
        "entity_type": "deal",
        "id": "deal-1",
        "name": "Buyer deal",
        "account_id": "acc-1",
        "owner_rep_id": "rep-1",
        "stage": "proposal",
        "created_at": "2026-10-01T00:00:00Z",
        "updated_at": at,
        "contacts": contacts,
    }
