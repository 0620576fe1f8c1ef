#!/usr/bin/env python3
"""`occ status` on the lab's 20 fleet hosts, each behind a 50 ms round trip (issues 10, 11).

One RelayGroup (tests/lab/lab_relay.py) puts every fleet host 2 x DELAY ms away; occ and
the docker CLI reach the hosts through it. The sandbox image is seeded onto three hosts
(scripts/lab seed-image) and the service started there. Measured side by side in one run,
median of N, interleaved so every figure sees the same machine load:

  all          `occ status --all` (20 hosts, warm masters)
  one          `occ status --host h5` (warm)
  shell loop   `for h in FLEET; do occ status --host $h; done` (warm): what people do today
  docker loop  `for h in FLEET; do docker -H ssh://$h inspect C; done`
  cold all     `occ status --all` after `occ host disconnect --all`
  cold one     `occ status --host h5` after `occ host disconnect h5`
  refresh      one refresh of the `status --watch` overview of the 20 hosts (steady state)

Also the peak RSS of the occ process during `status --all`, and the CPU use of occ during
`status --all --watch` at the default 5 s interval for 30 s. With --compare REF, git
revision REF's occ builds its own image here and starts its service on h8; then a warm
`occ status --host h8` of REF and of this tree are timed side by side against that same
container (so the figure is the cost of the new fields alone).

Goals: all within 2x of one and at least 10x faster than the shell loop; cold all within
2x of cold one; peak RSS under 150 MB; a refresh within 2x of one; watch CPU under 5% of a
core; this tree's single status within 10% of REF's. Needs the lab (sudo scripts/lab up
--user $USER) and a local Docker Engine with the sandbox image (built if missing, not
measured). Traffic goes only to 127.0.0.1 and the lab's hosts.

    python bench/fleet_status_bench.py [--runs 5] [--delay-ms 25] [--compare REF]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
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

from lab_relay import LAB_JSON, fleet_relays  # noqa: E402

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SERVICE_HOSTS = ("h5", "h6", "h7")
ONE = "h5"
COMPARE_HOST = "h8"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed(argv: list[str], env: dict[str, str], ok_codes: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800,
                            stdin=subprocess.DEVNULL)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode not in ok_codes:
        raise SystemExit(f"{shlex.join(argv)} failed ({result.returncode}):\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return elapsed


def child_usage(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one command, measured in a fresh python so that
    RUSAGE_CHILDREN holds that command alone (and the ssh processes it waited for)."""
    code = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True,
                         text=True, timeout=600).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def refresh_times(env: dict[str, str], names: list[str], runs: int) -> list[float]:
    """One refresh of the --watch overview, measured in-process after a warm-up."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        sys.path.insert(0, str(ROOT / "src"))
        from opencode_cloud.cli.service_target import host_config
        from opencode_cloud.config.store import load_config
        from opencode_cloud.engine.remote import RemoteEngine
        from opencode_cloud.fleet.watch import Session, Watcher
        from opencode_cloud.hosts.store import load_hosts
        from opencode_cloud.report import Reporter
        from opencode_cloud.service.context import ServiceContext
        from opencode_cloud.service.names import ServiceNames
        from opencode_cloud.service.status import collect_status

        config, names_ = load_config(), ServiceNames.from_environment()
        hosts = load_hosts()

        def opener(host):
            def open_target():
                engine = RemoteEngine(host, Reporter())
                endpoint = engine.__enter__()
                return (ServiceContext(endpoint, host_config(config, host), names_, Reporter()),
                        lambda: engine.__exit__(None, None, None))
            return open_target

        watcher = Watcher([Session(n, opener(hosts.get(n))) for n in names], collect_status,
                          timeout=30)
        try:
            watcher.refresh()  # connects: not measured
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                rows = watcher.refresh()
                times.append((time.perf_counter() - started) * 1000)
                bad = [r.name for r in rows if r.status != "ok"]
                if bad:
                    raise SystemExit(f"refresh failed on {bad}")
            return times
        finally:
            watcher.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def old_tree(ref: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="occ-bench-old-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=25)
    parser.add_argument("--compare", metavar="REF", help="also time REF's single status")
    parser.add_argument("--watch-seconds", type=float, default=30)
    args = parser.parse_args()
    if not LAB_JSON.exists():
        print(f"The lab is not up ({LAB_JSON} missing): sudo scripts/lab up --user $USER")
        return 2
    lab = json.loads(LAB_JSON.read_text())
    fleet = list(lab["fleet"])
    tmp = Path(tempfile.mkdtemp(prefix="occ-bench-"))
    control = Path(tempfile.mkdtemp(prefix="occb", dir="/tmp"))
    instance = f"occbench-{uuid.uuid4().hex[:6]}"
    occ = [sys.executable, "-m", "opencode_cloud"]
    figures: dict[str, list[float]] = {k: [] for k in (
        "all", "one", "loop", "docker", "cold_all", "cold_one", "old_one", "new_one")}
    with fleet_relays(args.delay_ms, fleet) as relays:
        ssh_config = tmp / "ssh_config"
        ssh_config.write_text(relays.ssh_config(lab["user"], lab["keys"]["plain"],
                                                str(tmp / "known_hosts")))
        wrappers = tmp / "bin"  # the docker CLI runs plain `ssh`: the same settings
        wrappers.mkdir()
        (wrappers / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {ssh_config} "$@"\n')
        (wrappers / "ssh").chmod(0o755)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OCC_", "XDG_", "SSH_AUTH_SOCK", "DOCKER_HOST"))}
        env.update(XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"),
                   OCC_SSH_CONFIG=str(ssh_config), OCC_SSH_KNOWN_HOSTS=str(tmp / "known_hosts"),
                   OCC_SSH_CONTROL_DIR=str(control), OCC_INSTANCE=instance, NO_COLOR="1",
                   PATH=f"{wrappers}:{env.get('PATH', '')}",
                   PYTHONPATH=str(ROOT / "src"))
        container = f"{instance}-sandbox"
        old_env: dict[str, str] | None = None
        try:
            timed([*occ, "config", "set", "opencode_web_port", str(free_port())], env)
            if Path(CA_BUNDLE).exists():
                timed([*occ, "config", "set", "extra_ca_certs", CA_BUNDLE], env)
            for name in fleet:
                timed([*occ, "host", "add", name, name, "-g", "fleet", "--no-verify"], env)
            # The image: built here once (not measured), seeded onto three hosts.
            timed([*occ, "start", "--local"], env)
            timed([*occ, "reset", "--local"], env)
            image = f"{lab.get('sandbox_image_repo', 'opencode-cloud-sandbox')}:1.18.33"
            control_cmd = shlex.split(lab["control"])
            subprocess.run([*control_cmd, lab.get("seed_verb", "seed-image"), "--", image,
                            *SERVICE_HOSTS], check=True, capture_output=True, timeout=1800)
            for name in SERVICE_HOSTS:
                timed([*occ, "start", "--host", name], env)
            time.sleep(12)  # Docker's health check gives its first verdict
            loop = ["bash", "-c", "for h in " + " ".join(fleet) + "; do "
                    + shlex.join(occ) + " status --host $h >/dev/null; done"]
            # The container is on three hosts only: an inspect that finds none is no failure.
            docker_loop = ["bash", "-c", "for h in " + " ".join(fleet) + "; do docker -H "
                           f"ssh://$h inspect {container} >/dev/null 2>&1; done; true"]
            status_all = [*occ, "status", "--all"]
            status_one = [*occ, "status", "--host", ONE]
            if args.compare:  # REF's own image and service on h8 (not measured)
                old_home = tmp / "old"  # REF may not know this tree's config keys
                old_env = {**env, "PYTHONPATH": str(old_tree(args.compare)),
                           "OCC_INSTANCE": f"{instance}-old",
                           "XDG_CONFIG_HOME": str(old_home / "config"),
                           "XDG_DATA_HOME": str(old_home / "data")}
                timed([*occ, "config", "set", "opencode_web_port", str(free_port())], old_env)
                if Path(CA_BUNDLE).exists():
                    timed([*occ, "config", "set", "extra_ca_certs", CA_BUNDLE], old_env)
                timed([*occ, "host", "add", COMPARE_HOST, COMPARE_HOST, "--no-verify"], old_env)
                timed([*occ, "start", "--local"], old_env)
                timed([*occ, "reset", "--local"], old_env)
                subprocess.run([*control_cmd, lab.get("seed_verb", "seed-image"), "--", image,
                                COMPARE_HOST], check=True, capture_output=True, timeout=1800)
                timed([*occ, "start", "--host", COMPARE_HOST], old_env)
                time.sleep(12)
                status_old_host = [*occ, "status", "--host", COMPARE_HOST]
                new_env = {**old_env, "PYTHONPATH": env["PYTHONPATH"]}  # same files, this tree
                timed(status_old_host, old_env)
                timed(status_old_host, new_env)
            for argv in (status_all, status_one, loop):
                timed(argv, env)  # accept host keys, open the masters
            timed(docker_loop, env)
            for _ in range(args.runs):
                figures["all"].append(timed(status_all, env))
                figures["one"].append(timed(status_one, env))
                if old_env is not None:
                    figures["old_one"].append(timed(status_old_host, old_env))
                    figures["new_one"].append(timed(status_old_host, new_env))
                figures["loop"].append(timed(loop, env))
                figures["docker"].append(timed(docker_loop, env))
                timed([*occ, "host", "disconnect", "--all"], env)
                figures["cold_all"].append(timed(status_all, env))
                timed([*occ, "host", "disconnect", ONE], env)
                figures["cold_one"].append(timed(status_one, env))
            timed(status_all, env)  # warm again
            rss = [child_usage(status_all, env)[2] for _ in range(3)]
            refresh = refresh_times(env, fleet, args.runs)
            count = max(2, int(args.watch_seconds / 5) + 1)
            wall, cpu, _ = child_usage([*status_all, "--watch", "--json", "--count",
                                        str(count)], env)
        finally:
            for name in SERVICE_HOSTS:
                subprocess.run([*occ, "reset", "--volumes", "--force", "--host", name], env=env,
                               capture_output=True, timeout=300)
            if old_env is not None:
                subprocess.run([*occ, "reset", "--volumes", "--force", "--host", COMPARE_HOST],
                               env=old_env, capture_output=True, timeout=300)
                subprocess.run([*occ, "host", "disconnect", "--all"], env=old_env,
                               capture_output=True, timeout=120)
            subprocess.run([*occ, "reset", "--volumes", "--force", "--local"], env=env,
                           capture_output=True, timeout=120)
            subprocess.run([*occ, "host", "disconnect", "--all"], env=env,
                           capture_output=True, timeout=120)
            shutil.rmtree(control, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in figures.items() if v}
    rtt = 2 * args.delay_ms
    print(f"occ status on {len(fleet)} lab hosts, each behind a {rtt:.0f} ms round trip, "
          f"median of {args.runs}:")
    labels = {"all": "occ status --all (warm)", "one": f"occ status --host {ONE} (warm)",
              "old_one": f"status --host {COMPARE_HOST}, at {args.compare}",
              "new_one": f"status --host {COMPARE_HOST}, this tree",
              "loop": "shell loop of --host",
              "docker": "docker -H ssh:// loop", "cold_all": "occ status --all (cold)",
              "cold_one": f"occ status --host {ONE} (cold)"}
    for key, label in labels.items():
        if key in med:
            runs = ", ".join(f"{v:.0f}" for v in figures[key])
            print(f"  {label:<34} {med[key]:8.0f} ms   runs: {runs}")
    refresh_med = statistics.median(refresh)
    print(f"  {'one --watch refresh of all':<34} {refresh_med:8.0f} ms   runs: "
          + ", ".join(f"{v:.0f}" for v in refresh))
    print(f"  {'peak RSS of occ status --all':<34} {max(rss):8.1f} MB   runs: "
          + ", ".join(f"{v:.1f}" for v in rss))
    watch_cpu = cpu / wall * 100
    print(f"  {'CPU of --watch, 5 s interval':<34} {watch_cpu:8.2f} %    ({cpu:.2f} s CPU "
          f"in {wall:.0f} s)")
    goals = [
        (f"--all / one = {med['all'] / med['one']:.2f}x (goal <= 2x)",
         med["all"] <= 2 * med["one"]),
        (f"shell loop / --all = {med['loop'] / med['all']:.1f}x (goal >= 10x)",
         med["loop"] >= 10 * med["all"]),
        (f"cold --all / cold one = {med['cold_all'] / med['cold_one']:.2f}x (goal <= 2x)",
         med["cold_all"] <= 2 * med["cold_one"]),
        (f"peak RSS {max(rss):.0f} MB (goal < 150 MB)", max(rss) < 150),
        (f"refresh / one = {refresh_med / med['one']:.2f}x (goal <= 2x)",
         refresh_med <= 2 * med["one"]),
        (f"--watch CPU {watch_cpu:.2f}% of a core (goal < 5%)", watch_cpu < 5),
    ]
    if "old_one" in med:
        ratio = med["new_one"] / med["old_one"]
        goals.append((f"single status now / at {args.compare} = {ratio:.2f} (goal <= 1.10)",
                      ratio <= 1.10))
    for text, met in goals:
        print(f"  {text:<58} {'met' if met else 'NOT met'}")
    return 0 if all(met for _, met in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
