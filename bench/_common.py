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


def lab_occ_env(root: Path) -> tuple[dict[str, str], Path, Path]:
    """An environment for occ against the lab (the test account's own files untouched):
    private config, known_hosts and control folder, no agent. Returns (env, folder for
    files, control folder); the caller removes both folders."""
    import uuid

    tmp = Path(tempfile.mkdtemp(prefix="occ-bench-"))
    control = Path(tempfile.mkdtemp(prefix="occb", dir="/tmp"))  # short: unix socket paths
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OCC_", "XDG_", "SSH_AUTH_SOCK", "DOCKER_HOST"))}
    env.update(XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"),
               OCC_SSH_CONFIG="none", OCC_SSH_KNOWN_HOSTS=str(tmp / "known_hosts"),
               OCC_SSH_CONTROL_DIR=str(control), NO_COLOR="1",
               OCC_INSTANCE=f"occbench-{uuid.uuid4().hex[:6]}", PYTHONPATH=str(root / "src"))
    return env, tmp, control


def checked(argv: list[str], env: dict[str, str], timeout: float = 1800
            ) -> tuple[float, str, str]:
    """Run ``argv``; (seconds, stdout, stderr), or exit with its output when it fails."""
    import shlex

    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed ({result.returncode}):\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return elapsed, result.stdout, result.stderr


def lab_description() -> dict | None:
    """The lab's lab.json, or None (and a line saying how to bring it up) when it is down."""
    import json

    lab_json = Path("/var/tmp/occ-lab/lab.json")
    if not lab_json.exists():
        print(f"The lab is not up ({lab_json} missing): sudo scripts/lab up --user $USER")
        return None
    return json.loads(lab_json.read_text())
