"""A calendar hold told by its title (``libs.common.calendar_holds``)."""

from __future__ import annotations

import pytest

from libs.common.calendar_holds import hold_word, is_hold


@pytest.mark.parametrize(
    ("title", "word"),
    [
        ("HOLD: Acme demo", "hold"),
        ("HOLD : Acme demo", "hold"),
        ("Hold \u2013 Acme QBR (tentative)", "hold"),
        ("Hold \u2014 Acme QBR", "hold"),
        ("Hold | Acme", "hold"),
        ("HOLD - Acme demo", "hold"),
        ("hold for Acme demo", "hold"),
        ("[HOLD] Acme demo", "hold"),
        ("(Placeholder) Acme", "placeholder"),
        ("Placeholder: Acme", "placeholder"),
        ("Tentative hold: Acme demo", "hold"),
        ("Soft Hold - Acme", "hold"),
        ("HOLD Acme demo", "hold"),
        ("Hold", "hold"),
        ("  hold  ", "hold"),
        ("Acme demo - HOLD", "hold"),
        ("Acme demo \u2013 hold", "hold"),
        ("Acme demo [hold]", "hold"),
        ("Acme demo (Placeholder)", "placeholder"),
        ("Acme demo | placeholder", "placeholder"),
        ("Platzhalter: Acme Demo", "platzhalter"),
    ],
)
def test_a_title_labelled_hold_or_placeholder_is_a_hold(title: str, word: str) -> None:
    assert hold_word(title) == word
    assert is_hold(title)


@pytest.mark.parametrize(
    "title",
    [
        "Holding company review with Acme CFO",
        "HOLDING CO REVIEW",
        "Hold music test",
        "Hold the line: Acme escalation",
        "Hold-up review",
        "Acme - Hold-up review",
        "Acme deal on hold",
        "Acme: on hold",
        "Acme (on hold)",
        "Acme demo: hold",
        "Household survey readout",
        "Threshold review",
        "Withhold tax review",
        "Placeholders cleanup",
        "Acme QBR (tentative)",
        "Tentative: Acme QBR",
        "Acme demo",
        "",
        None,
    ],
)
def test_a_title_that_only_contains_the_word_is_no_hold(title: str | None) -> None:
    assert hold_word(title) is None
    assert not is_hold(title)
