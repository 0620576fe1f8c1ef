"""The local service's speed on the real Engine and the real image (issue 3).

Prints, median of 5:
- `occ status` on a running service, right after a start and once Docker's health check
  has a verdict (goal under 400 ms);
- `occ start` on an existing image until healthy, from a stopped container and from no
  container at all (goal under 10 s).
Uses its own OCC_INSTANCE and ports, and removes its container and volumes afterwards.
Usage: python bench/service_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import time
import uuid

from _common import occ_argv, private_env, report, run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    env = private_env(OCC_INSTANCE=f"occbench-{uuid.uuid4().hex[:6]}")
    run(env, "config", "set", "opencode_web_port", str(free_port()))
    run(env, "config", "set", "extra_ca_certs", "/etc/ssl/certs/ca-certificates.crt")
    try:
        run(env, "start")  # builds the image if this Engine lacks it; not measured
        run(env, "status")
        # Until Docker's health check has a verdict (its first run is 10 s after a start)
        # status asks opencode itself through an exec; afterwards it reads the verdict.
        report("occ status, just started (exec probe)",
               [run(env, "status") for _ in range(runs)], goal_ms=400)
        time.sleep(12)
        report("occ status, running (health check verdict)",
               [run(env, "status") for _ in range(runs)], goal_ms=400)
        stopped = []
        for _ in range(runs):
            run(env, "stop")
            stopped.append(run(env, "start"))
        report("occ start from a stopped container", stopped, goal_ms=10_000)
        fresh = []
        for _ in range(runs):
            run(env, "reset")
            fresh.append(run(env, "start"))
        report("occ start with no container (image exists)", fresh, goal_ms=10_000)
    finally:
        subprocess.run(occ_argv("reset", "--volumes", "--force"), env=env, capture_output=True)


if __name__ == "__main__":
    main()
