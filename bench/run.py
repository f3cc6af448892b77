"""``make bench``: every figure next to its baseline, alternated, medians; JSON and Markdown out.

python -m bench.run [--activities 200000] [--repeats 3] [--only pipeline,scaling]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.common import engines, median
from bench.pipeline import dataset, run_pipeline, run_relay

RESULTS = Path(__file__).parent / "results"


def _pipeline_section(activities: int, repeats: int, scaling: bool) -> dict[str, Any]:
    data = dataset(activities)
    runs: dict[str, list[dict[str, Any]]] = {"relay": [], "pipeline": [], "pipeline_2x": []}
    with engines() as eng:
        for round_ in range(repeats):
            # Alternate the two so drift on a shared machine hits both alike.
            order = ["relay", "pipeline"] if round_ % 2 == 0 else ["pipeline", "relay"]
            for name in order:
                if name == "relay":
                    result = asyncio.run(run_relay(eng, data))
                else:
                    result = asyncio.run(run_pipeline(eng, data))
                    assert result["counted"] == activities, result
                    assert result["rollup_activities"] == activities, result
                runs[name].append(result)
                sys.stdout.write(
                    f"  {name:<12} round {round_ + 1}: {result['events_per_second']:,.0f} events/s\n"
                )
            if scaling:
                result = asyncio.run(run_pipeline(eng, data, instances=2))
                assert result["counted"] == activities, result
                runs["pipeline_2x"].append(result)
                sys.stdout.write(
                    f"  pipeline_2x  round {round_ + 1}: {result['events_per_second']:,.0f} events/s\n"
                )
    relay = median([r["events_per_second"] for r in runs["relay"]])
    pipeline = median([r["events_per_second"] for r in runs["pipeline"]])
    section: dict[str, Any] = {
        "activities": activities,
        "repeats": repeats,
        "relay_events_per_second": relay,
        "pipeline_events_per_second": pipeline,
        "ratio": pipeline / relay,
        "cpu_seconds_per_1000": median([r["cpu_seconds_per_1000"] for r in runs["pipeline"]]),
        "peak_rss_mb": {
            name: max(r["peak_rss_mb"].get(name, 0.0) for r in runs["pipeline"])
            for name in runs["pipeline"][0]["peak_rss_mb"]
        },
        "runs": runs,
    }
    if runs["pipeline_2x"]:
        two = median([r["events_per_second"] for r in runs["pipeline_2x"]])
        section["pipeline_2x_events_per_second"] = two
        section["scaling_2x_over_1x"] = two / pipeline
    return section


def _markdown(results: dict[str, Any]) -> str:
    lines = ["| benchmark | ours | baseline | ratio | target |", "| --- | --- | --- | --- | --- |"]
    p = results.get("pipeline")
    if p:
        lines.append(
            f"| pipeline throughput ({p['activities']:,} activities) | {p['pipeline_events_per_second']:,.0f} ev/s "
            f"| relay {p['relay_events_per_second']:,.0f} ev/s | {p['ratio']:.2f} | >= 0.6 |"
        )
        lines.append(
            f"| CPU-seconds per 1,000 events (all processes) | {p['cpu_seconds_per_1000']:.2f} | | | |"
        )
        for name, mb in sorted(p["peak_rss_mb"].items()):
            lines.append(f"| peak RSS {name} | {mb:.0f} MB | | | < 250 MB |")
        if "scaling_2x_over_1x" in p:
            lines.append(
                f"| two attribution + metrics instances | {p['pipeline_2x_events_per_second']:,.0f} ev/s "
                f"| one instance {p['pipeline_events_per_second']:,.0f} ev/s | {p['scaling_2x_over_1x']:.2f} | |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--activities", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="pipeline,scaling")
    args = parser.parse_args()
    only = set(args.only.split(","))
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }
    if "pipeline" in only:
        sys.stdout.write("pipeline vs relay\n")
        results["pipeline"] = _pipeline_section(args.activities, args.repeats, "scaling" in only)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = _markdown(results)
    (RESULTS / "latest.md").write_text(table)
    sys.stdout.write("\n" + table)


if __name__ == "__main__":
    main()
