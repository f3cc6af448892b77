"""A calendar hold told by its title (``libs.common.calendar_holds``)."""

from __future__ import annotations

import time

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
        ("Acme renewal -- HOLD", "hold"),
        ("Acme renewal —— hold", "hold"),
        ("HOLD/Acme demo", "hold"),
        ("Hold / Acme demo", "hold"),
        ("Acme QBR | HOLD | v2", "hold"),
        ("Acme QBR - soft hold - v2", "hold"),
        ("Acme demo (HOLD - pending)", "hold"),
        ("Acme demo [Placeholder: room TBC]", "placeholder"),
        ("HOLD Q3 review with Acme", "hold"),
        ("PLACEHOLDER Acme kickoff", "placeholder"),
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
        "HOLD THE DATE: Sales Kickoff",
        "HOLD MUSIC TEST",
        "PLACEHOLDER TEXT REVIEW",
        "HOLD (confirmed) Acme demo",
        "Acme demo (HOLD - confirmed)",
        "Acme deal - on hold - review",
        "Acme - Hold-up - review",
        # Ordinary internal meetings naming a hold as a step of a process.
        "Hold/Release process review",
        "Hold/unhold workflow sync",
        "HOLD/RELEASE PROCESS",
        "AR review | Hold | Release",
        "Acme demo (Hold-up analysis)",
        "",
        None,
    ],
)
def test_a_title_that_only_contains_the_word_is_no_hold(title: str | None) -> None:
    assert hold_word(title) is None
    assert not is_hold(title)


@pytest.mark.parametrize(
    "title",
    [
        "\t" * 5_000,
        "hold" + "\t" * 5_000 + "x",
        "Acme" + " -" * 5_000 + "x",
        "Acme " + "-" * 5_000 + " x",
        "Acme (hold -" + " " * 5_000 + "x",
        "Acme |" + " " * 5_000 + "hold" + " " * 5_000 + "x",
        "Acme |" + " " * 5_000 + "soft" + " " * 5_000 + "hold" + " " * 5_000 + "x",
        "HOLD" + " " * 5_000 + "/RELEASE",
        "Acme (hold" + " " * 5_000 + "-x",
        "hold" + " " * 5_000 + "/x",
    ],
)
def test_a_long_title_is_read_in_linear_time(title: str) -> None:
    """A title crafted to make a regular expression try every split (a run of blanks, dashes or
    bars) is read in one pass: quadratic on 10,000 characters would take seconds."""
    started = time.perf_counter()
    assert hold_word(title * 2) is None
    assert time.perf_counter() - started < 0.1
