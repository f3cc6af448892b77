"""The pipeline bench's PostgreSQL CPU by backend (``bench.pg_backends``): roles from process
titles, the window's CPU of each process (ended ones included) and the figures per event."""

from __future__ import annotations

from bench.pg_backends import Seen, per_event, role_of, window_by_role


def test_a_process_title_names_its_role_and_a_client_backend_is_left_to_its_application() -> None:
    assert role_of("postgres: checkpointer ") == "checkpointer"
    assert role_of("postgres: background writer ") == "background writer"
    assert role_of("postgres: walwriter ") == "walwriter"
    assert role_of("postgres: autovacuum worker bench_1a2b3c4d") == "autovacuum worker"
    assert role_of("postgres: autovacuum launcher ") == "autovacuum launcher"
    assert role_of("postgres: postgres bench_1a2b3c4d 127.0.0.1(51234) idle") is None
    assert role_of("postgres: postgres spm [local] SELECT") is None
    assert role_of("/opt/pg/bin/postgres -D /tmp/pg -c port=5432") == "postmaster"


def test_the_window_counts_each_process_from_its_start_and_what_ended_processes_spent_unsampled() -> None:
    seen = {
        10: Seen("client:attribution", start=1.0, last=4.0),  # alive throughout: 3.0
        11: Seen("client:attribution", start=0.0, last=0.5),  # a second connection opened in the window
        12: Seen("autovacuum worker", start=0.0, last=0.25),  # ended after its last sample
        13: Seen("client:metrics", start=2.0, last=2.5),  # alive at the start, ended in the window
    }
    # The postmaster reaped 12 (0.4 in all) and 13 (2.75 in all) and a poll's connection never
    # sampled (0.1): 3.25 in all, of which 0.25 + 2.5 were seen.
    by_role = window_by_role(seen, alive={10, 11}, reaped=3.25, postmaster=0.05)
    assert by_role == {
        "postmaster": 0.05,
        "client:attribution": 3.5,
        "autovacuum worker": 0.25,
        "client:metrics": 0.5,
        "exited, unsampled": 0.5,
    }
    assert per_event(by_role, 50_000) == {
        "client:attribution": 70.0,
        "client:metrics": 10.0,
        "exited, unsampled": 10.0,
        "autovacuum worker": 5.0,
        "postmaster": 1.0,
    }
    assert per_event({"walwriter": 0.001}, 50_000) == {}
