"""The benchmark runners keep working: each runs briefly here (figures come from real runs,
see docs/benchmarks.md; nothing here asserts on time)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m <module> <args>` from the repository root; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_dispatch_throughput_runs() -> None:
    done = run_module("loadtests.dispatch_throughput", "--releases", "30", "--rounds", "1")
    assert "(b)/(a):" in done.stdout


def test_the_loopback_benchmark_runs(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    run_module(
        "loadtests.bench",
        "--rounds",
        "1",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--connections",
        "4",
        "--pending",
        "0,200",
        "--json",
        str(figures),
    )
    sets = json.loads(figures.read_text())["sets"]
    assert [s["pending"] for s in sets] == [0, 200]
    for found in sets:
        rows = {row["target"]: row for row in found["rows"]}
        assert list(rows) == ["floor", "naive", "express", "sink", "reply", "durable"]
        assert all(row["errors"] == 0 and row["requests_per_s"] > 0 for row in rows.values())
        assert rows["floor"]["ratio"] == 1.0
        # Every target that aggregates released something: four branches make a release.
        assert all(rows[t]["releases_per_s"] > 0 for t in ("naive", "express", "sink", "reply"))
        assert all(row["percentiles_ms"]["99.0"] >= row["p50_ms"] > 0 for row in rows.values())
        # The CPU of each target's own processes is found: one core at most, as pinned.
        cores = {target: row["server_cores"] for target, row in rows.items()}
        assert all(0 < used <= 1.05 for used in cores.values()), cores
    run_module(
        "loadtests.plot",
        "--latency",
        str(figures),
        "--pending",
        str(figures),
        "--out",
        str(tmp_path),
    )
    for name in ("latency.png", "pending.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_the_cost_runner_runs(tmp_path: Path) -> None:
    figures = tmp_path / "costs.json"
    done = run_module(
        "loadtests.costs",
        "--aggregations",
        "200",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--connections",
        "4",
        "--backlog",
        "300",
        "--json",
        str(figures),
    )
    found = json.loads(figures.read_text())

    memory = found["memory"]
    assert memory["aggregations"] == 200
    assert memory["payload_bytes"] == 4 * 512
    # The payloads are stored, so neither figure can be below them.
    assert memory["used_memory_ratio"] > 1
    assert memory["state_hash_ratio"] > 1
    assert sum(name.startswith("b:") for name in memory["state_hash_fields"]) == 4

    commands = found["commands"]
    assert commands["requests"] > 0
    assert commands["errors"] == 0
    assert commands["calls"]["evalsha"] >= commands["requests"]
    assert commands["lua_callers"]["evalsha"] == []
    assert "ingest" in commands["lua_callers"]["hset"]

    sweep = found["sweep"]
    assert sweep["aggregations"] == 300
    assert 0 <= sweep["pending_when_ready"] <= 300
    assert sweep["delivered"] == 300
    assert "| releases/s |" in done.stdout
