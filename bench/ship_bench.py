#!/usr/bin/env python3
"""First `occ start` on fresh lab hosts: building the image there vs `image_source: ship`
(issue 15), for one host and for five at once, printed side by side.

The sandbox image is built here first (not measured). A fresh host has the base image and
nothing of the sandbox: before every run the bench removes, through the host's own Engine,
every image that appeared since the bench began (the sandbox image, the build cache).
Each figure is the wall time of the whole `occ start` until opencode is healthy, median of
--runs; with it the CPU seconds the whole machine spent (all lab hosts' daemons run here,
on the same cores), those of occ itself (with its ssh processes), and the MiB occ sent to
each host (the host has the base image, so its layer stays home). `ship` is measured with
gzip level 1 (occ's default) and with no compression (OCC_SHIP_GZIP_LEVEL=0), to show
what compression costs and buys on this link. Hosts are left without the bench's service
or images. Traffic goes only to the lab's hosts.

Run it as the test account, against the lab, under the developers' lock, e.g.

    flock /tmp/occ-dev.lock runuser -u occ-test -- env HOME=/home/occ-test \
        CHECKOUT/venv/bin/python CHECKOUT/src/bench/ship_bench.py [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import checked, lab_description, lab_occ_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IMAGE = "opencode-cloud-sandbox:1.18.33"
ONE = ["h18"]
FIVE = ["h18", "h19", "h20", "h21", "h22"]


def machine_cpu_seconds() -> float:
    """CPU time (user + system + ...) spent by the whole machine since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # not idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], env: dict[str, str], timeout: float = 3600) -> str:
    _elapsed, stdout, stderr = checked(argv, env, timeout)
    return stdout + stderr


class Hosts:
    """The bench's hosts through their own Engines (their sockets on this machine)."""

    def __init__(self, lab: dict, names: list[str]) -> None:
        import docker

        self.engines = {n: docker.DockerClient(base_url=lab["hosts"][n]["docker_host"],
                                               timeout=300) for n in names}
        for name, engine in self.engines.items():
            with contextlib.suppress(docker.errors.ImageNotFound):
                image = engine.images.get(IMAGE)
                users = [c.name for c in engine.containers.list(all=True)
                         if c.image.id == image.id]
                if users:
                    raise SystemExit(f"{name}: {IMAGE} is used by {users}; not a fresh host")
                engine.images.remove(IMAGE)
            for image in engine.images.list(all=True,
                                            filters={"label": "dev.opencode-cloud.stage"}):
                with contextlib.suppress(docker.errors.APIError):
                    engine.images.remove(image.id)
        self.before = {n: {i.id for i in e.images.list(all=True)}
                       for n, e in self.engines.items()}

    def make_fresh(self) -> None:
        import docker

        for name, engine in self.engines.items():
            for _ in range(20):  # a pass removes the children, the next their parents
                made = [i for i in engine.images.list(all=True) if i.id not in self.before[name]]
                if not made:
                    break
                for image in made:
                    with contextlib.suppress(docker.errors.APIError):
                        engine.images.remove(image.id, force=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ship-only", action="store_true",
                        help="leave out the builds on the hosts (minutes each): a quick look")
    args = parser.parse_args()
    lab = lab_description()
    if lab is None:
        return 2
    env, tmp, control = lab_occ_env(ROOT)
    occ = [sys.executable, "-m", "opencode_cloud"]
    hosts = Hosts(lab, FIVE)
    rows: list[tuple[str, list[float], list[float], list[float], list[float]]] = []

    def measure(label: str, names: list[str], source: str, level: str | None = None) -> list:
        walls, machine, own, sent = [], [], [], []
        run_env = {**env, **({"OCC_SHIP_GZIP_LEVEL": level} if level is not None else {})}
        run([*occ, "config", "set", "image_source", source], env)
        target = ["--host", names[0]] if len(names) == 1 else \
            ["--group", "bench", "--parallel", str(len(names))]
        for _ in range(args.runs):
            hosts.make_fresh()
            cpu0, own0, t0 = machine_cpu_seconds(), children_cpu_seconds(), time.perf_counter()
            out = run([*occ, "start", *target], run_env)
            walls.append(time.perf_counter() - t0)
            machine.append(machine_cpu_seconds() - cpu0)
            own.append(children_cpu_seconds() - own0)
            expected = "Sending image" if source == "ship" else "Building image"
            if out.count(expected) != len(names):
                raise SystemExit(f"{label}: expected {len(names)}x {expected!r}:\n{out[-3000:]}")
            sent += [float(m) for m in re.findall(r"\((\d+) MiB sent\)", out)]
            for name in names:
                run([*occ, "reset", "--volumes", "--force", "--host", name], env)
        rows.append((label, walls, machine, own, sent))
        return walls

    try:
        if Path(CA_BUNDLE).exists():
            run([*occ, "config", "set", "extra_ca_certs", CA_BUNDLE], env)
        run([*occ, "start", "--local"], env)  # the image, built here once: not measured
        run([*occ, "reset", "--local"], env)
        for name in FIVE:
            run([*occ, "host", "add", name, lab["hosts"][name]["address"], "-u", lab["user"],
                 "-i", lab["keys"]["plain"], "-g", "bench"], env)
        build_1 = None if args.ship_only else measure("build on the host, 1 host", ONE, "build")
        ship_1 = measure("ship (gzip 1), 1 host", ONE, "ship")
        measure("ship (no compression), 1 host", ONE, "ship", level="0")
        build_5 = None if args.ship_only else \
            measure("build on the hosts, 5 hosts", FIVE, "build")
        ship_5 = measure("ship (gzip 1), 5 hosts", FIVE, "ship")
        measure("ship (no compression), 5 hosts", FIVE, "ship", level="0")
    finally:
        for name in FIVE:
            subprocess.run([*occ, "reset", "--volumes", "--force", "--host", name], env=env,
                           capture_output=True, timeout=300)
        hosts.make_fresh()
        subprocess.run([*occ, "reset", "--volumes", "--force", "--local"], env=env,
                       capture_output=True, timeout=120)
        subprocess.run([*occ, "host", "disconnect", "--all"], env=env, capture_output=True,
                       timeout=120)
        shutil.rmtree(control, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median
    print(f"First occ start until healthy on fresh lab hosts ({IMAGE}, {os.cpu_count()} cores "
          f"here), median of {args.runs}:")
    print(f"  {'':<32} {'wall':>8} {'machine CPU':>12} {'occ CPU':>8} {'sent/host':>10}"
          "   runs (s)")
    for label, walls, machine, own, sent in rows:
        per_host = f"{med(sent):6.0f} MiB" if sent else f"{'-':>10}"
        print(f"  {label:<32} {med(walls):7.1f}s {med(machine):11.1f}s {med(own):7.1f}s "
              f"{per_host}   " + ", ".join(f"{w:.1f}" for w in walls))
    spread = med(ship_5) / med(ship_1)
    print(f"  ship, 5 hosts vs 1: {spread:.2f}x the time   goal <= 2x: "
          + ("met" if spread <= 2 else "NOT met"))
    if build_1 is None or build_5 is None:
        return 0
    speedup = med(build_1) / med(ship_1)
    print(f"  ship vs build, 1 host: {speedup:.1f}x faster   goal >= 2x: "
          + ("met" if speedup >= 2 else "NOT met"))
    print(f"  build vs ship, 5 hosts: {med(build_5) / med(ship_5):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
