from __future__ import annotations

from services.metrics.domain.management import MAX_MANAGEMENT_LEVELS, reports_of


def test_a_manager_manages_the_reps_below_them_through_other_managers_sorted() -> None:
    manager_of = {"ana": "vp", "bo": "ana", "cy": "ana", "dee": "bo", "eve": "vp"}
    assert reports_of(["vp", "ana", "bo", "dee"], manager_of) == {
        "vp": ["ana", "bo", "cy", "dee", "eve"],
        "ana": ["bo", "cy", "dee"],
        "bo": ["dee"],
        "dee": [],
    }


def test_a_cycle_ends_the_walk_and_a_manager_in_it_is_among_their_own_reps() -> None:
    assert reports_of(["a", "self"], {"a": "b", "b": "a", "self": "self"}) == {
        "a": ["a", "b"],
        "self": ["self"],
    }


def test_reps_are_read_twenty_levels_of_management_down() -> None:
    chain = {f"r{i}": f"r{i - 1}" for i in range(1, 1_000)}
    found = reports_of(["r0", "r990"], chain)
    assert MAX_MANAGEMENT_LEVELS == 20
    assert found["r0"] == sorted(f"r{i}" for i in range(1, 21))
    assert found["r990"] == sorted(f"r{i}" for i in range(991, 1_000))
    assert reports_of(["r0"], chain, levels=2) == {"r0": ["r1", "r2"]}
