"""The benchmark runners keep working: each runs briefly here (figures come from real runs,
see docs/benchmarks.md; nothing here asserts on time)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_dispatch_throughput_runs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.dispatch_throughput",
            "--releases",
            "30",
            "--rounds",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "(b)/(a):" in done.stdout


def test_the_loopback_benchmark_runs(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--rounds", "1", "--duration", "1",
         "--warmup", "0", "--connections", "4", "--pending", "0,200", "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sets = json.loads(figures.read_text())["sets"]
    assert [s["pending"] for s in sets] == [0, 200]
    for found in sets:
        rows = {row["target"]: row for row in found["rows"]}
        assert list(rows) == ["floor", "naive", "sink", "reply"]
        assert all(row["errors"] == 0 and row["requests_per_s"] > 0 for row in rows.values())
        assert rows["floor"]["ratio"] == 1.0
        # Every target that aggregates released something: four branches make a release.
        assert all(rows[t]["releases_per_s"] > 0 for t in ("naive", "sink", "reply"))
        assert all(row["percentiles_ms"]["99.0"] >= row["p50_ms"] > 0 for row in rows.values())
    plotted = subprocess.run(
        [sys.executable, "-m", "loadtests.plot", "--latency", str(figures),
         "--pending", str(figures), "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert plotted.returncode == 0, plotted.stderr
    for name in ("latency.png", "pending.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
