#!/usr/bin/env python3
"""Cold versus warm `occ host test` over a real 50 ms round trip.

A DelayRelay (tests/lab/lab_relay.py) delays every chunk 25 ms each way between
127.0.0.1:PORT and lab host h1's sshd; occ reaches it through an ssh config alias
(HostName 127.0.0.1, Port PORT, HostKeyAlias = h1's address), which also shows that
settings left out of hosts.json come from the user's ssh config.

    cold: `occ host disconnect` first, so the test opens a new master connection
    warm: the master from the previous run is reused

Prints the median of N runs of each (default 5) and the ratio; the goal is warm at least
3x faster than cold. Needs the lab (`sudo scripts/lab up --user $USER`); traffic goes only
to 127.0.0.1 and the lab host. Exit status 0 when the goal is met.

    python bench/host_test_bench.py [--runs 5] [--delay-ms 25] [--host h1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "lab"))

from lab_relay import DelayRelay  # noqa: E402

LAB_JSON = Path("/var/tmp/occ-lab/lab.json")
GOAL = 3.0


def occ(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "opencode_cloud", *args], env=env,
                            capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000, result


def checked(env: dict[str, str], *args: str) -> float:
    elapsed, result = occ(env, *args)
    if result.returncode != 0:
        raise SystemExit(f"occ {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def measure(runs: int = 5, delay_ms: float = 25, host: str = "h1") -> dict[str, float]:
    lab = json.loads(LAB_JSON.read_text())
    target = lab["hosts"][host]
    tmp = Path(tempfile.mkdtemp(prefix="occ-bench-"))
    control = Path(tempfile.mkdtemp(prefix="occb", dir="/tmp"))
    try:
        with DelayRelay(target=(target["address"], target["port"]), delay_ms=delay_ms) as relay:
            ssh_config = tmp / "ssh_config"
            ssh_config.write_text(
                "Host lab-relay\n"
                "  HostName 127.0.0.1\n"
                f"  Port {relay.port}\n"
                f"  HostKeyAlias {target['address']}\n"
                f"  User {lab['user']}\n"
                f"  IdentityFile {lab['keys']['plain']}\n"
            )
            # Bytecode caches allowed (an installed occ has them): PYTHONDONTWRITEBYTECODE
            # would add ~20 ms of compiling to every run, cold and warm alike.
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("OCC_", "XDG_", "SSH_AUTH_SOCK", "PYTHONDONTWRITE"))}
            env.update(XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"),
                       OCC_SSH_CONFIG=str(ssh_config),
                       OCC_SSH_KNOWN_HOSTS=str(tmp / "known_hosts"),
                       OCC_SSH_CONTROL_DIR=str(control))
            checked(env, "host", "add", "relay", "lab-relay", "--no-verify")
            checked(env, "host", "test", "relay")  # accept the host key once, warm caches
            startup = statistics.median(checked(env, "host", "list", "--names-only")
                                        for _ in range(runs))
            cold, warm = [], []
            for _ in range(runs):
                checked(env, "host", "disconnect", "relay")
                cold.append(checked(env, "-q", "host", "test", "relay"))
            for _ in range(runs):
                warm.append(checked(env, "-q", "host", "test", "relay"))
            _, report = occ(env, "host", "test", "relay", "--json")
            rtt = json.loads(report.stdout)["ssh"]["docker_api_round_trip_ms"]
            checked(env, "host", "disconnect", "relay")
            return {"cold_ms": statistics.median(cold), "warm_ms": statistics.median(warm),
                    "startup_ms": startup, "probe_ms": rtt, "runs": runs,
                    "delay_ms": delay_ms, "relay_connections": relay.connections,
                    "cold_all": cold, "warm_all": warm}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(control, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=25)
    parser.add_argument("--host", default="h1")
    args = parser.parse_args()
    if not LAB_JSON.exists():
        print(f"The lab is not up ({LAB_JSON} missing): sudo scripts/lab up --user $USER")
        return 2
    r = measure(args.runs, args.delay_ms, args.host)
    ratio = r["cold_ms"] / r["warm_ms"]
    print(f"occ host test over a {2 * r['delay_ms']:.0f} ms round trip "
          f"(relay to {args.host}), median of {r['runs']}:")
    print(f"  cold (new master connection): {r['cold_ms']:7.0f} ms   "
          f"runs: {', '.join(f'{x:.0f}' for x in r['cold_all'])}")
    print(f"  warm (master reused):         {r['warm_ms']:7.0f} ms   "
          f"runs: {', '.join(f'{x:.0f}' for x in r['warm_all'])}")
    print(f"  ratio cold/warm:              {ratio:7.2f}x  (goal >= {GOAL:.0f}x: "
          f"{'met' if ratio >= GOAL else 'NOT met'})")
    print(f"  for scale: occ start-up (host list) {r['startup_ms']:.0f} ms; the warm Docker "
          f"API request itself {r['probe_ms']:.0f} ms; TCP connections through the relay: "
          f"{r['relay_connections']}")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
