"""``make bench``: every figure next to its baseline, alternated, medians; JSON and Markdown out.

python -m bench.run [--quick] [--only pipeline,scaling,ingest,freshness,gateway]
                    [--activities 200000] [--repeats 3] [--rates 1000,2000,3000,4000]
                    [--freshness-rate 500,1000,1500] [--activities-gateway 1000000[,10000000]]

``--quick`` uses small sizes (a smoke test of the whole harness in a few minutes); figures
from it say little. See docs/performance.md.
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
from bench.freshness import run_freshness
from bench.gateway import markdown_rows, run_gateway
from bench.ingest_vs_bare import run_ingest_vs_bare
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
                    f"  {name:<12} round {round_ + 1}: {result['events_per_second']:,.0f} events/s"
                    + (
                        f", {result['cpu_seconds_per_1000']:.3f} CPU-s/1000 "
                        f"{result['cpu_seconds_per_1000_by_process']}\n    consumers {result['consumers']}"
                        f"\n    postgres us/event by backend {result['postgres_by_backend']}"
                        if name == "pipeline"
                        else ""
                    )
                    + "\n"
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
        "cpu_seconds_per_1000_by_process": {
            name: median([r["cpu_seconds_per_1000_by_process"][name] for r in runs["pipeline"]])
            for name in runs["pipeline"][0]["cpu_seconds_per_1000_by_process"]
        },
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
            f"| relay {p['relay_events_per_second']:,.0f} ev/s | {p['ratio']:.2f} | >= 0.4 |"
        )
        lines.append(
            f"| CPU-seconds per 1,000 events (all processes) | {p['cpu_seconds_per_1000']:.2f} | | | <= 0.33 |"
        )
        for name, cpu in p.get("cpu_seconds_per_1000_by_process", {}).items():
            lines.append(f"| CPU-seconds per 1,000 events, {name} | {cpu:.3f} | | | |")
        for name, mb in sorted(p["peak_rss_mb"].items()):
            lines.append(f"| peak RSS {name} | {mb:.0f} MB | | | < 250 MB |")
        if "scaling_2x_over_1x" in p:
            lines.append(
                f"| two attribution + metrics instances | {p['pipeline_2x_events_per_second']:,.0f} ev/s "
                f"| one instance {p['pipeline_events_per_second']:,.0f} ev/s | {p['scaling_2x_over_1x']:.2f} | |"
            )
    i = results.get("ingest")
    if i:
        ours, bare = i["ingest"], i["bare"]
        lines.append(
            f"| ingest batches of 1,000 | {ours['batch_events_per_s']:,.0f} ev/s "
            f"| bare {bare['batch_events_per_s']:,.0f} ev/s | {i['batch_ratio']:.2f} | >= 0.15 |"
        )
        lines.append(
            f"| ingest CPU per batched event | {ours['batch_cpu_us_per_event']:,.1f} us "
            f"| bare {bare['batch_cpu_us_per_event']:,.1f} us | {i['batch_cpu_ratio']:.2f} | |"
        )
        for rate in i["rates"]:
            o, b = ours[f"callbacks_{rate}"], bare[f"callbacks_{rate}"]
            lines.append(
                f"| Twilio callbacks offered {rate:,}/s: 2xx/s, p50/p99 | {o['ok_per_s']:,.0f}/s, "
                f"{o['p50_ms']:.1f}/{o['p99_ms']:.1f} ms | bare {b['ok_per_s']:,.0f}/s, "
                f"{b['p50_ms']:.1f}/{b['p99_ms']:.1f} ms | {o['ok_per_s'] / b['ok_per_s']:.2f} "
                "| >= 2,000 req/s per process, p99 < 100 ms |"
            )
            if "cpu_us_per_request" in o:
                lines.append(
                    f"| Twilio callbacks offered {rate:,}/s: server CPU per request "
                    f"| {o['cpu_us_per_request']:,.0f} us | bare {b['cpu_us_per_request']:,.0f} us "
                    f"| {b['cpu_us_per_request'] / o['cpu_us_per_request']:.2f} | |"
                )
    for f in results.get("freshness", []):
        lines.append(
            f"| freshness at {f['offered_per_s']:,}/s offered ({f['achieved_per_s']:,.0f}/s acked), "
            f"2xx -> counted, p50/p99 | {f['p50_ms']:,.0f}/{f['p99_ms']:,.0f} ms | | | p99 < 1,000 ms at 1,500/s |"
        )
        lines.append(
            f"| freshness: the warm-up batch before the clock starts (start-up) | {f['warmup_ms']:,.0f} ms | | | |"
        )
    g = results.get("gateway")
    if g:
        lines += markdown_rows(g)
    return "\n".join(lines) + "\n"


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test in a few minutes")
    parser.add_argument("--activities", type=int, help="pipeline activities (200,000; quick 5,000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds alternating ours and the baseline")
    parser.add_argument("--only", default="pipeline,scaling,ingest,freshness,gateway")
    parser.add_argument("--rates", help="offered Twilio callbacks/s (1000,2000,3000,4000; quick 300,1000)")
    parser.add_argument(
        "--freshness-rate", help="comma-separated offered activities/s (500,1000,1500; quick 300)"
    )
    parser.add_argument(
        "--activities-gateway", help="comma-separated sizes for the gateway (1000000; quick 20000,60000)"
    )
    parser.add_argument(
        "--gateway-samples", type=int, help="requests per question, side and round (200; quick 20)"
    )
    parser.add_argument("--out", default="latest", help="results file stem under bench/results/ (latest)")
    args = parser.parse_args()
    quick = args.quick
    only = set(args.only.split(","))
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(),
        "quick": quick,
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }
    if "pipeline" in only:
        sys.stdout.write("pipeline vs relay\n")
        activities = args.activities or (5_000 if quick else 200_000)
        results["pipeline"] = _pipeline_section(activities, args.repeats, "scaling" in only)
    if "ingest" in only:
        sys.stdout.write("ingest vs bare endpoint\n")
        rates = _ints(args.rates or ("300,1000" if quick else "1000,2000,3000,4000"))
        with engines(partitions=2) as eng:
            results["ingest"] = run_ingest_vs_bare(
                eng, rates, seconds=3 if quick else 10, batches=5 if quick else 20, repeats=args.repeats
            )
    if "freshness" in only:
        sys.stdout.write("freshness\n")
        # Below, at and above what the pipeline sustains: freshness is flat until the offered
        # rate passes the pipeline's throughput, then grows with the backlog.
        rates = _ints(args.freshness_rate or ("300" if quick else "500,1000,1500"))
        with engines() as eng:
            results["freshness"] = [
                run_freshness(eng, rate, seconds=5 if quick else 20, repeats=1 if quick else args.repeats)
                for rate in rates
            ]
    if "gateway" in only:
        sys.stdout.write("gateway vs naive SQL\n")
        sizes = _ints(args.activities_gateway or ("20000,60000" if quick else "1000000"))
        with engines() as eng:
            samples = args.gateway_samples or (20 if quick else 200)
            results["gateway"] = run_gateway(eng, sizes, samples=samples, repeats=args.repeats)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = _markdown(results)
    (RESULTS / f"{args.out}.md").write_text(table)
    sys.stdout.write("\n" + table)


if __name__ == "__main__":
    main()
