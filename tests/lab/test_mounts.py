"""``occ mount`` on a real lab host (h1): a folder of h1 in the sandbox after a restart,
writable (files there belong to the folder's owner on h1) or read-only, gone again after
``occ mount remove`` and a restart; bad input refused with nothing changed.

The sandbox image is built once on this machine and seeded onto h1 through the lab
registry. The folders are made on h1 over plain ssh, as the lab's user, and removed after.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from lab_occ import OccRun, build_sandbox_here, isolated_occ, ok

if TYPE_CHECKING:
    from conftest import Lab

HOST = "h1"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IMAGE = "opencode-cloud-sandbox:1.18.33"
IN_SANDBOX = "/home/opencoder/workspace"


class OnHost:
    """Plain ssh to h1 as the lab's user, touching nothing of occ's own files."""

    def __init__(self, lab: Lab, known_hosts: Path) -> None:
        self.argv = ["ssh", *lab.ssh_base_args(known_hosts),
                     f"{lab.user}@{lab.hosts[HOST].address}"]

    def __call__(self, command: str) -> str:
        r = subprocess.run([*self.argv, command], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (command, r.stdout, r.stderr)
        return r.stdout.strip()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, lab: Lab):
    build_sandbox_here(tmp_path_factory.mktemp("build"))
    lab.seed_image(IMAGE, [HOST])
    on_h1 = OnHost(lab, tmp_path_factory.mktemp("ssh") / "known_hosts")
    base = on_h1("mktemp -d /tmp/occ-mounts.XXXXXX")
    on_h1(f"mkdir {base}/proj {base}/ref && echo from-h1 > {base}/proj/hello.txt "
          f"&& echo reference > {base}/ref/notes.txt && touch {base}/a-file")
    with isolated_occ(tmp_path_factory.mktemp("occ")) as run:
        run.env["OCC_INSTANCE"] = f"occmt-{uuid.uuid4().hex[:6]}"
        if Path(CA_BUNDLE).exists():
            ok(run("config", "set", "extra_ca_certs", CA_BUNDLE))
        ok(run("host", "add", HOST, lab.hosts[HOST].address, "-u", lab.user,
               "-i", lab.keys.plain))
        ok(run("start", "--host", HOST, timeout=600))
        try:
            yield run, on_h1, base
        finally:
            run("reset", "--volumes", "--force", "--host", HOST, timeout=300)
            on_h1(f"rm -rf {base}")


def in_sandbox(run: OccRun, script: str) -> subprocess.CompletedProcess[str]:
    return run("exec", "--host", HOST, "--", "sh", "-c", script)


def status(run: OccRun) -> dict:
    return json.loads(ok(run("status", "--host", HOST, "--json")).stdout)


def test_bad_mounts_are_refused_and_nothing_changes(setup, lab: Lab) -> None:
    run, _on_h1, base = setup
    before = run.hosts_file.read_text()
    socket_dir = str(Path(lab.hosts[HOST].docker_socket).parent)
    bad = {
        "proj": "must be absolute",                      # relative
        f"{base}/missing": "does not exist on h1",      # checked on h1
        f"{base}/a-file": "is not a directory",
        "/": "system folder",
        "/etc": "system folder",
        "/var/run/docker.sock": "system folder",
        socket_dir: "holds the Docker socket",            # h1's own socket folder
        f"{base}/pr:oj:x": "too many ':'",
        f"{base}/pro\nj": "control character",
        f"{base}/proj:/etc/proj": "not a place for a mounted folder",
        f"{base}/proj:~/.config/opencode": "not a place for a mounted folder",
    }
    for spec, message in bad.items():
        r = run("mount", "add", spec, "--host", HOST)
        assert r.returncode == 1, (spec, r.stdout, r.stderr)
        assert message in r.stderr, (spec, r.stderr)
        assert "Traceback" not in r.stderr
    assert run.hosts_file.read_text() == before
    r = run("mount", "remove", f"{base}/proj", "--host", HOST)
    assert r.returncode == 1 and "is not mounted" in r.stderr, r.stderr
    assert run.hosts_file.read_text() == before


def test_a_mounted_folder_is_writable_and_what_the_sandbox_writes_is_the_owners(setup) -> None:
    run, on_h1, base = setup
    owner = on_h1(f"stat -c %u:%g {base}/proj")
    ok(run("mount", "add", f"{base}/proj", "--host", HOST))
    ok(run("mount", "add", f"{base}/ref:~/workspace/reference:ro", "--host", HOST))
    twice = run("mount", "add", f"{base}/proj:~/elsewhere", "--host", HOST)
    assert twice.returncode == 1 and "already mounted" in twice.stderr, twice.stderr
    listed = json.loads(ok(run("mount", "list", "--host", HOST, "--json")).stdout)
    assert listed == [
        {"host_path": f"{base}/proj", "container_path": f"{IN_SANDBOX}/proj",
         "read_only": False},
        {"host_path": f"{base}/ref", "container_path": f"{IN_SANDBOX}/reference",
         "read_only": True},
    ]
    pending = status(run)
    assert [d["key"] for d in pending["drift"]] == ["mounts"], pending["drift"]
    assert pending["mounts"] == listed
    assert "Mounts" in ok(run("status", "--host", HOST)).stdout

    ok(run("restart", "--host", HOST, timeout=300))
    applied = status(run)
    assert applied["drift"] == [] and applied["health"] == "healthy", applied

    seen = ok(in_sandbox(run, f"cat {IN_SANDBOX}/proj/hello.txt {IN_SANDBOX}/reference/"
                              f"notes.txt && echo made-here > {IN_SANDBOX}/proj/new.txt "
                              "&& mkdir -p ~/workspace/proj/sub && touch ~/workspace/proj/sub/f"
                              " && id -u && id -g")).stdout.split()
    assert seen == ["from-h1", "reference", *owner.split(":")], seen
    # opencode itself runs as the folder's owner, not only what occ exec starts
    procs = ok(in_sandbox(run, 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = '
                               'opencode ] && stat -c %u:%g $p; done; true')).stdout.split()
    assert procs and set(procs) == {owner}, procs
    assert on_h1(f"cat {base}/proj/new.txt") == "made-here"
    assert on_h1(f"stat -c %u:%g {base}/proj/new.txt {base}/proj/sub {base}/proj/sub/f"
                 ).split() == [owner] * 3
    refused = in_sandbox(run, f"echo no > {IN_SANDBOX}/reference/notes.txt")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr, refused
    assert on_h1(f"cat {base}/ref/notes.txt") == "reference"


def test_a_vanished_folder_stops_a_restart_before_anything_changes(setup) -> None:
    run, on_h1, base = setup
    before = status(run)
    on_h1(f"mv {base}/proj {base}/proj.away")
    try:
        r = run("restart", "--host", HOST, timeout=300)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert f"{base}/proj does not exist on h1" in r.stderr, r.stderr
        assert f"occ mount remove {base}/proj --host h1" in r.stderr, r.stderr
        still = status(run)  # the same container, still serving
        assert (still["container"], still["state"], still["health"]) == (
            before["container"], "running", "healthy"), still
    finally:
        on_h1(f"mv {base}/proj.away {base}/proj")


def test_a_removed_mount_is_gone_after_the_next_restart(setup) -> None:
    run, on_h1, base = setup
    ok(run("mount", "remove", f"{base}/proj", "--host", HOST))
    ok(run("mount", "remove", f"{base}/ref", "--host", HOST))
    assert json.loads(ok(run("mount", "list", "--host", HOST, "--json")).stdout) == []
    assert "mounts" not in run.hosts()["hosts"][HOST].get("settings", {})
    assert [d["key"] for d in status(run)["drift"]] == ["mounts"]
    ok(run("restart", "--host", HOST, timeout=300))
    after = status(run)
    assert after["drift"] == [] and after["health"] == "healthy" and after["mounts"] == []
    # Only the empty mount points Docker made in the workspace volume are left.
    left = ok(in_sandbox(run, f"find {IN_SANDBOX}/proj {IN_SANDBOX}/reference -mindepth 1 | wc -l"))
    assert left.stdout.strip() == "0", left
    written = in_sandbox(run, f"echo x > {IN_SANDBOX}/reference/x")  # no longer read-only
    assert written.returncode == 0, written
    # opencoder is the image's own user again, and its files are its own again
    assert ok(in_sandbox(run, "id -u; stat -c %u ~/.local/share/opencode")).stdout.split() \
        == ["1000", "1000"]
    assert on_h1(f"cat {base}/proj/hello.txt") == "from-h1"  # the folder itself stays
