#!/usr/bin/env python3
"""`occ status --host` over a real 50 ms round trip, against the alternatives (issue 5).

A DelayRelay (tests/lab/lab_relay.py) delays every chunk 25 ms each way between
127.0.0.1:PORT and lab host h1's sshd. Measured side by side in one run, median of N:

  warm occ      `occ status --host relay`, the SSH master kept from the previous command
  docker CLI    `docker -H ssh://relay inspect CONTAINER`: the same facts (state, health
                and version from the health check, ports, image), one new SSH connection
  no reuse      `occ status --host relay` after `occ host disconnect`: a new SSH connection
                per command, as the original occ does
  local         `occ status` against this machine's Engine (no SSH)
  warm --disk   `occ status --disk --host relay`: also the disk of the images and volumes
                (one /system/df beside the inspect; `--json` always asks it)

Goals: warm occ at least 3x faster than docker CLI and than no reuse, and within 1.5x of
local + two round trips. Needs the lab (sudo scripts/lab up --user $USER) and a local
Docker Engine; builds the sandbox image on h1 and here if missing (not measured). Traffic
goes only to 127.0.0.1 and the lab host.

    python bench/remote_status_bench.py [--runs 5] [--delay-ms 25]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "lab"))

from lab_relay import DelayRelay  # noqa: E402

LAB_JSON = Path("/var/tmp/occ-lab/lab.json")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900,
                            stdin=subprocess.DEVNULL)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=25)
    args = parser.parse_args()
    if not LAB_JSON.exists():
        print(f"The lab is not up ({LAB_JSON} missing): sudo scripts/lab up --user $USER")
        return 2
    lab = json.loads(LAB_JSON.read_text())
    h1 = lab["hosts"]["h1"]
    tmp = Path(tempfile.mkdtemp(prefix="occ-bench-"))
    control = Path(tempfile.mkdtemp(prefix="occb", dir="/tmp"))
    instance = f"occbench-{uuid.uuid4().hex[:6]}"
    occ = [sys.executable, "-m", "opencode_cloud"]
    with DelayRelay(target=(h1["address"], h1["port"]), delay_ms=args.delay_ms) as relay:
        ssh_config = tmp / "ssh_config"
        ssh_config.write_text(
            "Host relay\n"
            "  HostName 127.0.0.1\n"
            f"  Port {relay.port}\n"
            f"  HostKeyAlias {h1['address']}\n"
            f"  User {lab['user']}\n"
            f"  IdentityFile {lab['keys']['plain']}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {tmp / 'known_hosts'}\n"
            "  StrictHostKeyChecking accept-new\n"
        )
        # The docker CLI runs plain `ssh`: give it the same settings through a wrapper.
        wrappers = tmp / "bin"
        wrappers.mkdir()
        (wrappers / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {ssh_config} "$@"\n')
        (wrappers / "ssh").chmod(0o755)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OCC_", "XDG_", "SSH_AUTH_SOCK", "PYTHONDONTWRITE",
                                    "DOCKER_HOST"))}
        env.update(XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"),
                   OCC_SSH_CONFIG=str(ssh_config),
                   OCC_SSH_KNOWN_HOSTS=str(tmp / "known_hosts"),
                   OCC_SSH_CONTROL_DIR=str(control), OCC_INSTANCE=instance,
                   PATH=f"{wrappers}:{env.get('PATH', '')}")
        try:
            timed([*occ, "config", "set", "opencode_web_port", str(free_port())], env)
            if Path(CA_BUNDLE).exists():
                timed([*occ, "config", "set", "extra_ca_certs", CA_BUNDLE], env)
            timed([*occ, "host", "add", "relay", "relay", "--no-verify"], env)
            timed([*occ, "start", "--host", "relay"], env)  # may build on h1: not measured
            timed([*occ, "start", "--local"], env)  # may build here: not measured
            time.sleep(12)  # let Docker's health check give its first verdict on both
            container = f"{instance}-sandbox"
            docker_cli = ["docker", "-H", "ssh://relay", "inspect", container]
            status_remote = [*occ, "status", "--host", "relay"]
            status_local = [*occ, "status", "--local"]
            status_disk = [*occ, "status", "--disk", "--host", "relay"]
            for argv in (status_remote, docker_cli, status_local, status_disk):
                timed(argv, env)  # warm caches, accept the host key once
            warm, cli, cold, local, disk = [], [], [], [], []
            for _ in range(args.runs):  # interleaved: each figure sees the same machine load
                warm.append(timed(status_remote, env))
                disk.append(timed(status_disk, env))
                cli.append(timed(docker_cli, env))
                timed([*occ, "host", "disconnect", "relay"], env)
                cold.append(timed(status_remote, env))
                local.append(timed(status_local, env))
        finally:
            subprocess.run([*occ, "reset", "--volumes", "--force", "--host", "relay"], env=env,
                           capture_output=True, timeout=120)
            subprocess.run([*occ, "reset", "--volumes", "--force", "--local"], env=env,
                           capture_output=True, timeout=120)
            subprocess.run([*occ, "host", "disconnect", "--all"], env=env,
                           capture_output=True, timeout=60)
            shutil.rmtree(control, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
    med = {name: statistics.median(values) for name, values in
           (("warm", warm), ("cli", cli), ("cold", cold), ("local", local),
            ("disk", disk))}
    rtt = 2 * args.delay_ms
    budget = 1.5 * (med["local"] + 2 * rtt)
    print(f"occ status over a {rtt:.0f} ms round trip (relay to h1), median of {args.runs}:")
    for name, label, values in (("warm", "warm occ (master reused)", warm),
                                ("cli", "docker -H ssh:// inspect", cli),
                                ("cold", "occ, no connection reuse", cold),
                                ("local", "local occ status", local),
                                ("disk", "warm occ status --disk", disk)):
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {label:<28} {med[name]:7.0f} ms   runs: {runs}")
    cli_ratio, cold_ratio = med["cli"] / med["warm"], med["cold"] / med["warm"]
    goals = [
        (f"docker CLI / warm occ = {cli_ratio:.2f}x (goal >= 3x)", cli_ratio >= 3),
        (f"no reuse / warm occ  = {cold_ratio:.2f}x (goal >= 3x)", cold_ratio >= 3),
        (f"warm occ {med['warm']:.0f} ms vs 1.5 x (local + 2 RTT) = {budget:.0f} ms",
         med["warm"] <= budget),
    ]
    print(f"  --disk costs {med['disk'] - med['warm']:+.0f} ms over warm status (no goal: "
          "asked for with --disk or --json only)")
    for text, met in goals:
        print(f"  {text:<52} {'met' if met else 'NOT met'}")
    return 0 if all(met for _, met in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
