#!/usr/bin/env python3
"""Plain ssh to the lab's 20 fleet hosts, each behind a 50 ms round trip (issue 10's lab).

The floor under any fleet command: one RelayGroup (tests/lab/lab_relay.py, one thread, one
listener per host) puts every fleet host 2 x DELAY ms away. Measured side by side in one
run, median of N, each cold (a new SSH connection per host) and warm (ControlMaster kept):

  one host      `ssh h1 true`
  shell loop    `for h in FLEET; do ssh $h true; done`: what people do today
  parallel      all 20 `ssh HOST true` at once

Needs the lab (sudo scripts/lab up --user $USER). Traffic goes only to 127.0.0.1 and the
lab's hosts.

    python bench/fleet_ssh_bench.py [--runs 5] [--delay-ms 25]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "lab"))

from lab_relay import LAB_JSON, fleet_relays  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=25)
    args = parser.parse_args()
    if not LAB_JSON.exists():
        print(f"The lab is not up ({LAB_JSON} missing): sudo scripts/lab up --user $USER")
        return 2
    lab = json.loads(LAB_JSON.read_text())
    fleet = lab["fleet"]
    tmp = Path(tempfile.mkdtemp(prefix="occ-bench-"))
    control = Path(tempfile.mkdtemp(prefix="occf", dir="/tmp"))  # short: socket paths
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text("".join(lab["hosts"][n]["known_hosts_line"] + "\n" for n in fleet))
    with fleet_relays(args.delay_ms) as relays:
        blocks = relays.ssh_config(lab["user"], lab["keys"]["plain"], known_hosts)
        cold_cfg, warm_cfg = tmp / "cold", tmp / "warm"
        cold_cfg.write_text(blocks)
        warm_cfg.write_text(
            "Host *\n  ControlMaster auto\n"
            f"  ControlPath {control}/%C\n  ControlPersist 120\n" + blocks
        )

        def ssh(cfg: Path, name: str) -> float:
            started = time.perf_counter()
            r = subprocess.run(
                ["ssh", "-F", str(cfg), "-o", "BatchMode=yes", name, "true"],
                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if r.returncode != 0:
                raise SystemExit(f"ssh {name} failed: {r.stderr}")
            return (time.perf_counter() - started) * 1000

        def loop(cfg: Path) -> float:
            started = time.perf_counter()
            for name in fleet:
                ssh(cfg, name)
            return (time.perf_counter() - started) * 1000

        def parallel(cfg: Path) -> float:
            started = time.perf_counter()
            with ThreadPoolExecutor(len(fleet)) as pool:
                list(pool.map(lambda n: ssh(cfg, n), fleet))
            return (time.perf_counter() - started) * 1000

        figures: dict[str, list[float]] = {}
        try:
            parallel(warm_cfg)  # open the masters
            for _ in range(args.runs):  # interleaved: each figure sees the same machine load
                for label, measure in (
                    ("cold  one host", lambda: ssh(cold_cfg, fleet[0])),
                    ("cold  shell loop, 20 hosts", lambda: loop(cold_cfg)),
                    ("cold  parallel, 20 hosts", lambda: parallel(cold_cfg)),
                    ("warm  one host", lambda: ssh(warm_cfg, fleet[0])),
                    ("warm  shell loop, 20 hosts", lambda: loop(warm_cfg)),
                    ("warm  parallel, 20 hosts", lambda: parallel(warm_cfg)),
                ):
                    figures.setdefault(label, []).append(measure())
        finally:
            for name in fleet:
                subprocess.run(["ssh", "-F", str(warm_cfg), "-O", "exit", name],
                               capture_output=True, timeout=30)  # fmt: skip
            shutil.rmtree(control, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
    rtt = 2 * args.delay_ms
    print(f"ssh HOST true over a {rtt:.0f} ms round trip, {len(fleet)} hosts, "
          f"median of {args.runs}:")  # fmt: skip
    for label, values in figures.items():
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {label:<28} {statistics.median(values):7.0f} ms   runs: {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
