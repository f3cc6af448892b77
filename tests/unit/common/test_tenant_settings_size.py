"""A settings change may save at most ``MAX_REP_ALIASES`` aliases and ``MAX_SETTINGS_BYTES`` of
JSON (each change stores the document whole, and every process reloads it): the refusal names the
setting and the limit."""

from __future__ import annotations

import pytest

from libs.common.tenant_settings_store import (
    MAX_REP_ALIASES,
    MAX_SETTINGS_BYTES,
    SettingsRefused,
    next_settings,
)


def _refused(patch: dict[str, object]) -> list[dict[str, object]]:
    with pytest.raises(SettingsRefused) as refused:
        next_settings(None, patch=patch)
    return refused.value.errors


def test_the_limits() -> None:
    assert (MAX_REP_ALIASES, MAX_SETTINGS_BYTES) == (5_000, 524_288)


def test_aliases_past_the_limit_are_refused_by_name() -> None:
    at_limit = {f"u{n}": "rep-a" for n in range(5_000)}
    assert len(next_settings(None, patch={"rep_aliases": at_limit}).rep_aliases) == 5_000
    assert _refused({"rep_aliases": {**at_limit, "u5000": "rep-a"}}) == [
        {"in": "body", "field": "rep_aliases", "reason": "holds 5001 aliases; at most 5000 may be saved"}
    ]


def test_a_document_past_the_size_limit_is_refused_naming_its_largest_setting() -> None:
    # 1,100 aliases of 240 + 240 characters: well under the count, 534,601 bytes of JSON.
    aliases = {f"{n:04d}" + "k" * 236: "r" * 240 for n in range(1_100)}
    assert _refused({"rep_aliases": aliases}) == [
        {
            "in": "body",
            "field": "rep_aliases",
            "reason": "the settings take 535697 bytes as JSON, 534601 of them here; at most 524288 "
            "may be saved",
        }
    ]


def test_a_blank_or_padded_alias_the_change_brings_is_refused_by_its_entry() -> None:
    """A spreadsheet's empty cell (``" "``) or a padded id maps nobody: refused naming the entry
    (before, saved with 200). One saved before is still read, and other changes go through."""
    reason = "is blank or padded with spaces: write the source's id and the rep id as they are"
    assert _refused({"rep_aliases": {"7705": " ", " u-9": "rep-a", "u-10": "rep-a "}}) == [
        {"in": "body", "field": f"rep_aliases.{key}", "reason": reason} for key in ("7705", " u-9", "u-10")
    ]
    stored = {"rep_aliases": {"7705": " "}}
    changed = next_settings(stored, patch={"rep_aliases": {"u-9": "rep-a"}})
    assert changed.rep_aliases == {"7705": " ", "u-9": "rep-a"}


def test_an_alias_holding_an_invisible_character_is_refused_by_its_entry() -> None:
    """An id pasted from a web page with a zero-width space or a byte order mark in it looks right
    and maps nobody, as a padded one did: refused naming the entry and the character (before,
    saved with 200)."""
    assert _refused({"rep_aliases": {"\u200b7701": "rep-a", "7702": "rep-b\ufeff", "7703": "rep-c"}}) == [
        {
            "in": "body",
            "field": "rep_aliases.\u200b7701",
            "reason": "holds an invisible character (U+200B): write the source's id and the rep id as they are",
        },
        {
            "in": "body",
            "field": "rep_aliases.7702",
            "reason": "holds an invisible character (U+FEFF): write the source's id and the rep id as they are",
        },
    ]
