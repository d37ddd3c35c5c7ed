"""Run the benchmark suite and write benchmarks/results/latest.md and latest.json.

    python -m benchmarks.run [--quick] [--only NAME ...]

--quick uses 10k and 100k events (the full run adds 1M where it makes sense).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

from .common import HERE, Result, as_dict, machine, workdir

WORKLOADS = [
    "bench_codec",
    "bench_append",
    "bench_aio",
    "bench_read",
    "bench_real",
    "bench_duroxide",
    "bench_whole_store",
    "bench_metrics",
    "bench_postgres",
    "bench_catalog",
    "bench_retention",
]


def table(results: list[Result]) -> str:
    lines = [
        "| workload | events | eventstore | baseline | baseline rate | ratio | target |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in results:
        verdict = "met" if r.met else "**missed**"
        target = "" if r.target is None else f"≥ {r.target:.2f}x {verdict}"
        lines.append(
            f"| {r.workload} | {r.size:,} | {r.ours:,.0f} {r.unit} | {r.baseline_name} "
            f"| {r.baseline:,.0f} | {r.ratio:.2f}x | {target} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--update", action="store_true", help="merge into results/latest.json instead of replacing"
    )
    args = parser.parse_args()
    if args.only:
        args.only = [n if n.startswith("bench_") else f"bench_{n}" for n in args.only]
        unknown = sorted(n.removeprefix("bench_") for n in set(args.only) - set(WORKLOADS))
        if unknown:
            parser.error(
                f"unknown workload {', '.join(unknown)}; choose from "
                + ", ".join(w.removeprefix("bench_") for w in WORKLOADS)
            )
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    results: list[Result] = []
    started = time.time()
    with workdir() as tmp:
        for name in WORKLOADS:
            if args.only and name not in args.only:
                continue
            module = importlib.import_module(f"benchmarks.{name}")
            print(f"-- {name}", flush=True)
            found = module.run(Path(tmp), sizes, args.rounds)
            for r in found:
                print(f"   {r.workload} @ {r.size:,}: {r.ours:,.0f} vs {r.baseline_name} "
                      f"{r.baseline:,.0f} = {r.ratio:.2f}x", flush=True)  # fmt: skip
            results.extend(found)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    if args.update and (out / "latest.json").exists():
        previous = json.loads((out / "latest.json").read_text(encoding="utf-8"))["results"]
        fresh = {r.workload for r in results}
        kept = [
            Result(**{k: v for k, v in r.items() if k not in ("ratio", "met")})
            for r in previous
            if r["workload"] not in fresh
        ]
        results = kept + results
    info = machine()
    info["seconds"] = round(time.time() - started)
    info["mode"] = ("quick" if args.quick else "full") + (", updated" if args.update else "")
    (out / "latest.json").write_text(
        json.dumps({"machine": info, "results": [as_dict(r) for r in results]}, indent=2) + "\n",
        encoding="utf-8",
    )
    header = ", ".join(f"{k} {v}" for k, v in info.items())
    (out / "latest.md").write_text(
        f"# Benchmark results\n\n{header}\n\nEach row: the median of its rounds (5 by "
        "default; whole-store operations run once each, in a fresh process, for their "
        "peak memory; latest.json has every row's count), eventstore and its baseline "
        f"measured alternately in the same run.\n\n{table(results)}\n",
        encoding="utf-8",
    )
    print(table(results))


if __name__ == "__main__":
    main()
