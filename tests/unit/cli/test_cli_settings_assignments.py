"""``spm tenants settings set`` assignments as one merge patch, keys with dots included."""

from __future__ import annotations

import pytest
import typer

from spm.commands.tenant_settings import assignments_to_patch


def test_dotted_keys_nest_and_values_are_json_when_they_parse() -> None:
    assert assignments_to_patch(
        ["privacy.keep_subjects=true", "attribution.park_days=14", "time_zone=UTC"]
    ) == {
        "privacy": {"keep_subjects": True},
        "attribution": {"park_days": 14},
        "time_zone": "UTC",
    }


def test_a_quoted_part_maps_an_address_to_a_rep() -> None:
    assert assignments_to_patch(
        [
            'rep_aliases."ana-emea@seller.example"=rep-a',
            "rep_aliases.7701=rep-a",
            'rep_aliases."x=y@a.b"=null',
        ]
    ) == {"rep_aliases": {"ana-emea@seller.example": "rep-a", "7701": "rep-a", "x=y@a.b": None}}


@pytest.mark.parametrize(
    "assignment", ["no-equals", "=value", 'rep_aliases."open=rep-a', "a..b=1", 'a."b"c=1', ".a=1", "a.=1"]
)
def test_what_is_not_key_equals_value_is_refused(assignment: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not KEY=VALUE"):
        assignments_to_patch([assignment])
