#!/usr/bin/env python3
"""`occ backup` on h1 and `occ restore` on h2 of a 1 GB workspace over the lab link (issue 13).

The sandbox image is built here (not measured) and seeded onto h1 and h2; the service is
started on h1 and its workspace filled with about 1 GB: half random bytes (what zstd cannot
shrink), half base64 text (what it can), and 2000 small files. Then, N times: `occ backup
--host h1` while the service runs (opencode paused for the copy) into an archive here, and
`occ restore --host h2 --force --yes` of that archive (verify, stop, copy, start, healthy).
Printed, median of N: backup and restore throughput (MB of files per second of the whole
command, and of the copy alone), how long opencode was unavailable (paused on h1; stopped
until healthy again on h2), and the archive's size. Both hosts are left without the
bench's service. Traffic goes only to the lab's hosts.

Run it as the test account, against the lab, under the developers' lock, e.g.

    flock /tmp/occ-dev.lock runuser -u occ-test -- env HOME=/home/occ-test \
        CHECKOUT/venv/bin/python CHECKOUT/src/bench/backup_bench.py [--runs 3] [--mb 1024]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import checked, lab_description, lab_occ_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IMAGE = "opencode-cloud-sandbox:1.18.33"
SOURCE, TARGET = "h1", "h2"


def fill_script(mb: int) -> str:
    """About ``mb`` MB in the workspace: half random, half base64 text, 2000 small files."""
    big = max(1, mb // 2 // 10)  # files of 10 MB each kind
    return (
        "set -e; mkdir -p ~/workspace/bench/random ~/workspace/bench/text "
        "~/workspace/bench/small; cd ~/workspace/bench; "
        f"for i in $(seq 1 {big}); do head -c 10000000 /dev/urandom > random/$i.bin; "
        f"head -c 7500000 /dev/urandom | base64 > text/$i.txt; done; "
        "for i in $(seq 1 2000); do head -c 2048 /dev/urandom | base64 > small/$i.txt; done"
    )


def run(argv: list[str], env: dict[str, str], timeout: float = 1800) -> tuple[float, str]:
    elapsed, stdout, _stderr = checked(argv, env, timeout)
    return elapsed, stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=1024, help="size of the workspace")
    args = parser.parse_args()
    lab = lab_description()
    if lab is None:
        return 2
    env, tmp, control = lab_occ_env(ROOT)
    occ = [sys.executable, "-m", "opencode_cloud"]
    figures: dict[str, list[float]] = {k: [] for k in (
        "backup_s", "backup_copy_s", "paused_s", "restore_s", "restore_copy_s", "down_s")}
    files_mb = archive_mb = 0.0
    try:
        if Path(CA_BUNDLE).exists():
            run([*occ, "config", "set", "extra_ca_certs", CA_BUNDLE], env)
        for name in (SOURCE, TARGET):
            run([*occ, "host", "add", name, lab["hosts"][name]["address"], "-u", lab["user"],
                 "-i", lab["keys"]["plain"]], env)
        run([*occ, "start", "--local"], env)  # the image, built here once: not measured
        run([*occ, "reset", "--local"], env)
        subprocess.run([*shlex.split(lab["control"]), lab.get("seed_verb", "seed-image"), "--",
                        IMAGE, SOURCE, TARGET], check=True, capture_output=True, timeout=1800)
        run([*occ, "start", "--host", SOURCE], env)
        run([*occ, "exec", "--host", SOURCE, "--", "bash", "-c", fill_script(args.mb)], env)
        for i in range(args.runs):
            archive = tmp / f"run{i}.tar.zst"
            wall, out = run([*occ, "backup", "--host", SOURCE, "-o", str(archive), "--json"],
                            env)
            result = json.loads(out)
            files_mb, archive_mb = result["bytes"] / 1e6, archive.stat().st_size / 1e6
            figures["backup_s"].append(wall)
            figures["backup_copy_s"].append(result["copy_seconds"])
            figures["paused_s"].append(result["paused_seconds"])
            wall, out = run([*occ, "restore", str(archive), "--host", TARGET, "--force",
                             "--yes", "--json"], env)
            result = json.loads(out)
            figures["restore_s"].append(wall)
            figures["restore_copy_s"].append(result["copy_seconds"])
            figures["down_s"].append(result["unavailable_seconds"])
            archive.unlink()
    finally:
        for name in (SOURCE, TARGET):
            subprocess.run([*occ, "reset", "--volumes", "--force", "--host", name], env=env,
                           capture_output=True, timeout=300)
        subprocess.run([*occ, "reset", "--volumes", "--force", "--local"], env=env,
                       capture_output=True, timeout=120)
        subprocess.run([*occ, "host", "disconnect", "--all"], env=env, capture_output=True,
                       timeout=120)
        shutil.rmtree(control, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in figures.items()}

    def runs(key: str) -> str:
        return ", ".join(f"{v:.1f}" for v in figures[key])

    print(f"occ backup --host {SOURCE} / occ restore --host {TARGET}: {files_mb:.0f} MB of "
          f"files (archive {archive_mb:.0f} MB), lab link, median of {args.runs}:")
    rows = [
        ("backup, whole command", files_mb / med["backup_s"], "backup_s"),
        ("backup, volume copy", files_mb / med["backup_copy_s"], "backup_copy_s"),
        ("restore, whole command", files_mb / med["restore_s"], "restore_s"),
        ("restore, volume copy", files_mb / med["restore_copy_s"], "restore_copy_s"),
    ]
    for label, rate, key in rows:
        print(f"  {label:<28} {rate:7.1f} MB/s  {med[key]:6.1f} s   runs (s): {runs(key)}")
    print(f"  {'opencode paused on ' + SOURCE:<28} {med['paused_s']:7.1f} s   "
          f"runs: {runs('paused_s')}")
    print(f"  {'unavailable on ' + TARGET:<28} {med['down_s']:7.1f} s   "
          f"(stop to healthy)  runs: {runs('down_s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
