"""The benchmark runners keep working: each runs briefly here (figures come from real runs,
see docs/benchmarks.md; nothing here asserts on time)."""

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
