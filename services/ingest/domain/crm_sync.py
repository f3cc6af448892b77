"""CRM entities as ingest publishes them: phones read once, in E.164, with warnings for the rest.

A phone that cannot be read does not cost the entity: the contact or rep is accepted without
it, and the answer names the entity's index, the field and the reason, so the integrator can
fix the CRM record. Everything else in the entity is passed on as sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.common.contracts.crm import ContactV1, CrmEntity, RepV1
from services.ingest.domain.phones import ParsedPhone, PhoneProblem, parse_phone


@dataclass(frozen=True, slots=True)
class EntityWarning:
    """Something dropped from an accepted entity: ``field`` is a dotted path into the request."""

    index: int
    field: str
    reason: str
    problem: PhoneProblem


def read_entity_phones(
    entities: Sequence[CrmEntity], region: str
) -> tuple[tuple[CrmEntity, ...], tuple[EntityWarning, ...]]:
    """Each rep's and contact's phones as E.164 (``raw_phones`` keeps what was sent), and a
    warning per phone dropped; a number repeated in another format is kept once."""
    read: list[CrmEntity] = []
    warnings: list[EntityWarning] = []
    for index, entity in enumerate(entities):
        if not isinstance(entity, RepV1 | ContactV1) or not entity.phones:
            read.append(entity)
            continue
        e164: dict[str, str] = {}
        for position, raw in enumerate(entity.phones):
            parsed = parse_phone(raw, region)
            if isinstance(parsed, ParsedPhone):
                e164.setdefault(parsed.e164, raw)
            else:
                warnings.append(
                    EntityWarning(
                        index,
                        f"entities.{index}.phones.{position}",
                        f"{parsed.reason}; the phone was dropped, the {entity.entity_type} accepted",
                        parsed.problem,
                    )
                )
        read.append(entity.model_copy(update={"phones": tuple(e164), "raw_phones": tuple(e164.values())}))
    return tuple(read), tuple(warnings)
