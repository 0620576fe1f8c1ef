#!/usr/bin/env python3
"""What bind mounts cost on a lab host (h1), over a warm SSH master connection:

    occ mount add --host h1 DIR     the folder checked on h1 (one ssh command), then stored
    occ mount list --host h1        hosts.json only, no connection
    the start's pre-flight          RemoteEngine.inspect_path in-process, per mounted folder

Prints the median of N runs of each (default 5). Needs the lab; traffic goes only to the
lab host. Makes a folder in /tmp on h1 (the lab hosts share this machine's files) and
removes it.

    python bench/mount_bench.py [--runs 5] [--host h1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median_of, report  # noqa: E402

LAB_JSON = Path("/var/tmp/occ-lab/lab.json")


def occ(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "opencode_cloud", *args], env=env,
                            capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SystemExit(f"occ {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--host", default="h1")
    args = parser.parse_args()
    lab = json.loads(LAB_JSON.read_text())
    home = Path(tempfile.mkdtemp(prefix="occ-bench-"))
    control = Path(tempfile.mkdtemp(prefix="occb", dir="/tmp"))
    folder = Path(tempfile.mkdtemp(prefix="occ-mount-bench-", dir="/tmp"))
    folder.chmod(0o755)  # the lab's ssh user looks at it on the host
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_DATA_HOME": str(home / "data"), "OCC_SSH_CONFIG": "none",
           "OCC_SSH_KNOWN_HOSTS": str(home / "known_hosts"),
           "OCC_SSH_CONTROL_DIR": str(control), "OCC_SSH_CONTROL_PERSIST": "2m"}
    env.pop("SSH_AUTH_SOCK", None)
    try:
        occ(env, "host", "add", args.host, lab["hosts"][args.host]["address"], "-u",
            lab["user"], "-i", lab["keys"]["plain"])
        occ(env, "host", "test", args.host)  # the master connection, warm from here on
        adds, lists = [], []
        for _ in range(args.runs):
            adds.append(occ(env, "mount", "add", str(folder), "--host", args.host))
            lists.append(occ(env, "mount", "list", "--host", args.host))
            occ(env, "mount", "remove", str(folder), "--host", args.host)
        report(f"occ mount add --host {args.host} (warm)", adds)
        report(f"occ mount list --host {args.host}", lists)
        checks = preflight(env, args.host, folder, args.runs * 2)
        report("pre-flight check of one folder (in-process)", checks)
        print(f"median pre-flight per folder: {median_of(checks):.0f} ms")
    finally:
        subprocess.run([sys.executable, "-m", "opencode_cloud", "host", "disconnect", "--all"],
                       env=env, capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(control, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def preflight(env: dict[str, str], host_name: str, folder: Path, runs: int) -> list[float]:
    """The check a start makes per mounted folder, timed in this process."""
    os.environ.update(env)
    from opencode_cloud.engine.remote import RemoteEngine
    from opencode_cloud.hosts.store import resolve_host

    samples = []
    with RemoteEngine(resolve_host(host_name)) as endpoint:
        for _ in range(runs):
            started = time.perf_counter()
            found = endpoint.inspect_path(str(folder), endpoint.docker_socket)
            samples.append((time.perf_counter() - started) * 1000)
            assert found.kind == "directory", found
    return samples


if __name__ == "__main__":
    main()
