"""Plots for docs/benchmarks.md from the JSON that `loadtests.bench --json` writes.

    .venv/bin/python -m loadtests.plot --latency figures.json --pending pending.json --out docs

`latency.png`: the latency distribution of each target (median of rounds per percentile),
from the first set of the --latency file. `pending.png`: requests/s of the service, and its
ratio to the floor, against the pending aggregations of the --pending file's sets.
"""

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def latency(figures: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in figures["sets"][0]["rows"]:
        # The maximum has no place on a logit axis; the tail up to 99.9% tells the story.
        points = sorted((float(p) / 100, ms) for p, ms in row["percentiles_ms"].items())
        points = [(q, ms) for q, ms in points if q < 1]
        ax.plot([q for q, _ in points], [ms for _, ms in points], marker="o", label=row["target"])
    ax.set_xscale("logit")
    ax.set_xlabel("fraction of requests answered within")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("Latency distribution, one server core (median of rounds)")
    path = out / "latency.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def pending(figures: dict[str, Any], out: Path) -> Path:
    levels, rates, ratios = [], [], []
    for found in figures["sets"]:
        rows = {row["target"]: row for row in found["rows"]}
        service = rows.get("sink") or next(iter(rows.values()))
        levels.append(max(found["pending"], 1))
        rates.append(service["requests_per_s"])
        ratios.append(service["ratio"])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(levels, rates, marker="o", label="service, sink mode (requests/s)")
    ax.set_xscale("log")
    ax.set_xlabel("pending aggregations in Redis (0 plotted at 1)")
    ax.set_ylabel("requests/s")
    ax.set_ylim(0, max(rates) * 1.3)  # room for the labels above the points
    ax.grid(True, which="both", alpha=0.3)
    for level, rate, ratio in zip(levels, rates, ratios, strict=True):
        if ratio is not None:
            label = f"{ratio:.2f}x floor"
            ax.annotate(label, (level, rate), textcoords="offset points", xytext=(0, 8))
    ax.set_title("Ingest throughput against the backlog of pending aggregations")
    path = out / "pending.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=Path, help="bench JSON for the latency plot")
    parser.add_argument("--pending", type=Path, help="bench JSON with several --pending sets")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    if args.latency:
        print(latency(json.loads(args.latency.read_text()), args.out))
    if args.pending:
        print(pending(json.loads(args.pending.read_text()), args.out))


if __name__ == "__main__":
    main()
