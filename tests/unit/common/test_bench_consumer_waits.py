"""The pipeline bench's per-consumer figures (``bench.pipeline.consumer_waits``): what the
consumers' ``/metrics`` counted over the timed window, as batches, messages and statements per
batch, and shares of the window (``busy``: decoding, the handler, offset commits)."""

from __future__ import annotations

from bench.pipeline import _sample_key, consumer_waits


def test_the_window_is_the_difference_of_two_scrapes_and_busy_is_decode_handler_and_offsets() -> None:
    phase = "spm_consumer_phase_seconds_sum"
    before = {
        "attribution": {
            ("spm_consumer_batch_seconds_count",): 1.0,
            ("spm_consumer_messages_total",): 100.0,
            ("spm_consumer_round_trips_sum",): 30.0,
            (phase, "handler"): 2.0,
            (phase, "decode"): 0.5,
        }
    }
    after = {
        "attribution": {
            ("spm_consumer_batch_seconds_count",): 11.0,
            ("spm_consumer_messages_total",): 18_100.0,
            ("spm_consumer_round_trips_sum",): 450.0,
            (phase, "handler"): 9.0,
            (phase, "decode"): 0.7,
            (phase, "offsets"): 0.1,
            (phase, "statements"): 3.0,
            (phase, "fetch"): 0.4,
        }
    }
    assert consumer_waits(before, after, 10.0) == {
        "attribution": {
            "batches": 10,
            "messages_per_batch": 1800.0,
            "round_trips_per_batch": 42.0,
            "busy_fraction": 0.73,
            "fractions": {"decode": 0.02, "fetch": 0.04, "handler": 0.7, "offsets": 0.01, "statements": 0.3},
        }
    }


def test_only_the_consumer_samples_are_kept() -> None:
    assert _sample_key("spm_consumer_phase_seconds_sum", {"service": "metrics", "phase": "commit"}) == (
        "spm_consumer_phase_seconds_sum",
        "commit",
    )
    assert _sample_key("spm_consumer_messages_total", {"outcome": "processed"}) == (
        "spm_consumer_messages_total",
    )
    assert _sample_key("spm_consumer_messages_total", {"outcome": "dlq"}) is None
    assert _sample_key("spm_consumer_phase_seconds_bucket", {"phase": "commit", "le": "0.1"}) is None
    assert _sample_key("spm_http_requests_total", {}) is None
