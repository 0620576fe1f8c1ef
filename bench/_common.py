"""Shared bits of the bench scripts: run occ in a private environment, take medians."""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def private_env(**extra: str) -> dict[str, str]:
    home = Path(tempfile.mkdtemp(prefix="occ-bench-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "NO_COLOR": "1",
        **extra,
    }


def occ_argv(*args: str) -> list[str]:
    # The installed console script, as a person runs it (falls back to python -m).
    script = Path(sys.executable).parent / "occ"
    return (
        [str(script), *args] if script.exists() else [sys.executable, "-m", "opencode_cloud", *args]
    )


def run(env: dict[str, str], *args: str, check: bool = True) -> float:
    """Wall time of one occ call in milliseconds."""
    started = time.perf_counter()
    result = subprocess.run(occ_argv(*args), env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - started) * 1000
    if check and result.returncode != 0:
        raise SystemExit(f"occ {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def median_of(samples: list[float]) -> float:
    return statistics.median(samples)


def report(name: str, samples: list[float], goal_ms: float | None = None) -> None:
    med = median_of(samples)
    verdict = (
        ""
        if goal_ms is None
        else (f"  goal < {goal_ms:.0f} ms: " + ("met" if med < goal_ms else "NOT met"))
    )
    spread = ", ".join(f"{s:.0f}" for s in samples)
    print(f"{name:<44} median {med:8.0f} ms   (n={len(samples)}: {spread}){verdict}")
