"""``image_source: ship`` on real lab hosts: the sandbox image built here is sent over SSH.

- h11 has no sandbox image and no way out (its containers' traffic and its own new
  connections are rejected; ssh still answers): it starts healthy from the image sent.
- h12: the image here says arm64 (a tiny image loaded with that architecture); h12's Engine
  says x86_64: occ warns naming both and builds on h12 instead of sending it.
- h16 and h17 as a group, with the image here saying arm64 again: one of them builds the
  image, it comes here once and goes on to the other, which does not build.
- h13: the transfer is cut half-way (occ frozen, its SSH master and then occ killed): h13
  keeps no half image, and the next start sends it whole.
- h14 and h15 as a group: one image made and packed here, sent to both at once; then an
  update that adds a Debian package sends each only the layers above those it has.

Every lab Engine has the base image, so its layer is never sent (the step says so), and
what a host loads is the archive without it: docker load itself proves that it is enough.

Each test removes what it made on its hosts (containers, volumes, the image).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest
from docker.errors import APIError, ImageNotFound, NotFound
from lab_occ import (
    SANDBOX,
    OccRun,
    build_sandbox_here,
    cut_at,
    free_port,
    isolated_occ,
    occ_argv,
    ok,
)

from opencode_cloud.image.build import INPUTS_LABEL, build_inputs
from opencode_cloud.image.ship import HALF_SENT
from tests.conftest import tar_of

if TYPE_CHECKING:
    from conftest import Lab

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BASE = "debian:bookworm-slim"  # every lab Engine has it


@pytest.fixture(scope="module")
def sandbox_here(tmp_path_factory) -> str:
    """The sandbox image on this machine (built, or found up to date); its id."""
    build_sandbox_here(tmp_path_factory.mktemp("build"))
    return docker.from_env().images.get(SANDBOX).id


def without_image(engine, ref: str) -> None:
    """``ref`` gone from a host (fresh for the test); refuses if a container uses it."""
    with contextlib.suppress(ImageNotFound):
        image = engine.images.get(ref)
        users = [c.name for c in engine.containers.list(all=True) if c.image.id == image.id]
        assert not users, f"{ref} on this host is used by {users}"
        engine.images.remove(ref)


@contextlib.contextmanager
def shipping_occ(tmp: Path, lab: Lab, hosts: list[str], lab_docker,
                 **settings: str) -> Iterator[OccRun]:
    """occ with ``image_source ship`` and ``hosts`` added (group ``ship``); the hosts lack
    the sandbox image (and the one an update keeps) at the start, and afterwards hold
    nothing this test made, even when it failed."""
    engines = {name: lab_docker(name) for name in hosts}
    ref = settings.get("image_ref", SANDBOX)
    for engine in engines.values():
        for old in (ref, f"{ref.rpartition(':')[0]}:occ-previous"):
            without_image(engine, old)
    before = {name: {i.id for i in e.images.list(all=True)} for name, e in engines.items()}
    instance = f"occship-{uuid.uuid4().hex[:6]}"
    passed = False
    try:
        with isolated_occ(tmp) as run:
            run.env["OCC_INSTANCE"] = instance
            spool = tmp / "spool"
            spool.mkdir()
            run.env["TMPDIR"] = str(spool)  # where occ packs the image: checked after
            run.spool = spool
            for key, value in (("opencode_web_port", str(free_port())),
                               ("extra_ca_certs", CA_BUNDLE), ("image_source", "ship"),
                               *((k, v) for k, v in settings.items() if k != "image_ref")):
                ok(run("config", "set", key, value))
            for name in hosts:
                ok(run("host", "add", name, lab.hosts[name].address, "-u", lab.user,
                       "-i", lab.keys.plain, "-g", "ship"))
            try:
                yield run
            finally:
                for name in hosts:
                    run("reset", "--volumes", "--force", "--host", name, timeout=300,
                        check_processes=False)
        passed = True
    finally:
        for name, engine in engines.items():
            remove_images_since(engine, before[name])
    if passed:
        for name, engine in engines.items():
            assert [c.name for c in engine.containers.list(all=True)
                    if c.name.startswith(instance)] == []
            assert [v.name for v in engine.volumes.list() if v.name.startswith(instance)] == []
            assert {i.id for i in engine.images.list(all=True)} <= before[name]


def remove_images_since(engine, before: set[str]) -> None:
    """Remove the images (and a cut build's containers) ``engine`` got since ``before``."""
    for _ in range(30):  # a build cut off on the host may still be winding down
        made = [i for i in engine.images.list(all=True) if i.id not in before]
        if not made:
            return
        ids = {i.id for i in made}
        for container in engine.containers.list(all=True):  # a cut build's steps
            if container.attrs["Image"] in ids:
                with contextlib.suppress(NotFound, APIError):
                    container.remove(force=True)
        for image in made:
            with contextlib.suppress(NotFound, APIError):
                engine.images.remove(image.id, force=True)
        time.sleep(1)


# -- a host with no way out: iptables in its own network namespace ----------------------------

def iptables(engine, *rule: str) -> None:
    """One iptables command in the host's network namespace. The lab hosts share this
    machine's files, so a container of the host's own Engine (the base image, in the
    host's network, with NET_ADMIN) runs this machine's iptables through chroot."""
    engine.containers.run(BASE, ["chroot", "/machine", "iptables", "-w", *rule],
                          network_mode="host", cap_add=["NET_ADMIN", "NET_RAW"],
                          volumes={"/": {"bind": "/machine", "mode": "ro"}}, remove=True)


BLOCK = [
    # containers (an image build's RUN steps: npm, apt) reach nothing
    ("FORWARD", ["-j", "REJECT"]),
    # the host itself opens no connection (no registry, no mirror); ssh's replies go out
    ("OUTPUT", ["-o", "eth0", "-m", "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED",
                "-j", "REJECT"]),
]


def reaches(engine, address: str, port: int) -> bool:
    """Can a container on the host open a TCP connection to address:port?"""
    try:
        engine.containers.run(BASE, ["bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}"],
                              remove=True)
    except docker.errors.ContainerError:
        return False
    return True


@contextlib.contextmanager
def no_way_out(engine, lab: Lab, name: str) -> Iterator[None]:
    registry, port = lab.registry.from_hosts[name].rsplit(":", 1)
    assert reaches(engine, registry, int(port))  # the check itself can see a way out
    for chain, rule in BLOCK:
        iptables(engine, "-I", chain, "1", *rule)
    try:
        assert not reaches(engine, registry, int(port))
        yield
    finally:
        for chain, rule in BLOCK:
            iptables(engine, "-D", chain, *rule)
    assert reaches(engine, registry, int(port))


def healthy(run: OccRun, host: str) -> dict:
    report = json.loads(ok(run("status", "--host", host, "--json")).stdout)
    assert report["state"] == "running" and report["health"] == "healthy", report
    return report


def test_a_host_without_the_image_and_no_way_out_starts_from_the_image_sent(
        sandbox_here: str, lab: Lab, lab_docker, tmp_path: Path) -> None:
    engine = lab_docker("h11")
    with shipping_occ(tmp_path, lab, ["h11"], lab_docker) as run, \
            no_way_out(engine, lab, "h11"):
        started = ok(run("start", "--host", "h11", timeout=900))
        text = started.stdout + started.stderr
        assert "Sending image opencode-cloud-sandbox:1.18.33 to h11" in text, text
        layers = len(engine.images.get(BASE).attrs["RootFS"]["Layers"])
        assert re.search(rf"to h11 \(\d+ MiB; h11 has {layers} of its \d+ layers\)", text), text
        assert "Building image" not in text and "Pulling" not in text
        assert engine.images.get(SANDBOX).id == sandbox_here  # the same image, labels and all
        healthy(run, "h11")
        assert list(run.spool.iterdir()) == []  # the spool went with the command
        again = ok(run("start", "--host", "h11", timeout=300))
        assert "Sending" not in again.stdout + again.stderr  # it has it now


def tiny_image_archive(ref: str, arch: str, labels: dict[str, str]) -> bytes:
    """A ``docker save`` archive of a one-file image whose config says ``arch``."""
    layer = tar_of({"hello": b"an image that says it is for another architecture\n"})
    config = json.dumps({
        "architecture": arch, "os": "linux", "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "occ's ship test"}]}).encode()
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "RepoTags": [ref], "Layers": ["l/layer.tar"]}])
    return tar_of({name: config, "l/layer.tar": layer, "manifest.json": manifest.encode()})


@contextlib.contextmanager
def arm64_image_here(name: str) -> Iterator[tuple[str, str]]:
    """(repository, ref) of an image here that is up to date for settings with
    ``image`` = repository (its inputs label), but says arm64; removed afterwards."""
    from opencode_cloud.config.model import Config

    repo = f"{name}-{uuid.uuid4().hex[:6]}/sandbox"
    ref = f"{repo}:1.18.33"
    digest = build_inputs(Config(image=repo, extra_ca_certs=CA_BUNDLE)).digest
    local = docker.from_env()
    local.images.load(tiny_image_archive(ref, "arm64", {INPUTS_LABEL: digest}))
    try:
        yield repo, ref
    finally:
        local.images.remove(ref)


def test_a_host_of_another_architecture_builds_there_instead(
        lab: Lab, lab_docker, tmp_path: Path) -> None:
    engine = lab_docker("h12")
    assert engine.info()["Architecture"] == "x86_64"
    with arm64_image_here("occship-arch") as (repo, ref), \
            shipping_occ(tmp_path, lab, ["h12"], lab_docker, image=repo, image_ref=ref) as run:
        proc = subprocess.Popen(occ_argv("start", "--host", "h12"), env=run.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True)
        lines = []
        for line in proc.stdout:  # until the build on h12 begins
            lines.append(line)
            if "Building image" in line:
                break
        proc.kill()  # the build on h12 would take minutes; its start is the point
        text = "".join(lines) + proc.communicate(timeout=60)[0]
        assert "h12 is x86_64 (amd64), this machine's image is arm64 (arm64)" in text, text
        assert f"Building image {ref}" in text, text
        assert "Sending" not in text and "Packing" not in text
        with pytest.raises(ImageNotFound):
            engine.images.get(ref)


def test_hosts_of_another_architecture_share_one_build_made_on_one_of_them(
        lab: Lab, lab_docker, tmp_path: Path) -> None:
    hosts = ["h16", "h17"]
    with arm64_image_here("occship-peer") as (repo, ref), \
            shipping_occ(tmp_path, lab, hosts, lab_docker, image=repo, image_ref=ref) as run:
        started = run("start", "--group", "ship", "-v", timeout=1500)
        text = started.stdout + started.stderr
        assert started.returncode == 0, text[-5000:]
        builders = re.findall(rf"\[(h1[67])\] Building image {re.escape(ref)}", text)
        assert len(builders) == 1, text[-5000:]  # one build, on one host
        maker, = builders
        other, = set(hosts) - {maker}
        assert f"[{maker}] Fetching image {ref} from {maker}" in text
        assert f"[{other}] {maker} built the image for amd64 hosts: {other} is sent it " \
               "from there" in text
        assert f"[{other}] Sending image {ref} to {other}" in text
        assert f"Sending image {ref} to {maker}" not in text
        made = lab_docker(maker).images.get(ref)
        assert lab_docker(other).images.get(ref).id == made.id  # labels and all
        assert made.attrs["Architecture"] == "amd64"
        for name in hosts:
            healthy(run, name)


def test_a_transfer_cut_half_way_leaves_no_image_and_the_next_start_sends_it_whole(
        sandbox_here: str, lab: Lab, lab_docker, tmp_path: Path) -> None:
    engine = lab_docker("h13")
    with shipping_occ(tmp_path, lab, ["h13"], lab_docker) as run:
        before = {i.id for i in engine.images.list(all=True)}
        cut_at(run, HALF_SENT, "start", "--host", "h13")
        # docker load unpacks the whole archive before it makes anything of it
        with pytest.raises(ImageNotFound):
            engine.images.get(SANDBOX)
        assert {i.id for i in engine.images.list(all=True)} == before  # nothing half-made
        started = ok(run("start", "--host", "h13", timeout=900))
        assert "Sending image" in started.stdout + started.stderr
        assert engine.images.get(SANDBOX).id == sandbox_here
        healthy(run, "h13")


def test_a_group_gets_one_image_packed_once_and_an_update_only_new_layers(
        sandbox_here: str, lab: Lab, lab_docker, tmp_path: Path) -> None:
    hosts = ["h14", "h15"]
    with shipping_occ(tmp_path, lab, hosts, lab_docker) as run:
        started = run("start", "--group", "ship", "-v", timeout=900)
        text = started.stdout + started.stderr
        assert started.returncode == 0, text
        assert text.count("Packing image opencode-cloud-sandbox:1.18.33") == 1, text
        for name in hosts:
            assert f"[{name}] Sending image opencode-cloud-sandbox:1.18.33 to {name}" in text
            assert lab_docker(name).images.get(SANDBOX).id == sandbox_here
            healthy(run, name)
        first = sent_mib(text, hosts)

        # An update with one more Debian package: the layers below it stay on the hosts.
        ok(run("config", "set", "image_packages", '["jq"]'))
        updated = run("update", "--group", "ship", "--yes", "-v", timeout=900)
        text = updated.stdout + updated.stderr
        assert updated.returncode == 0, text
        assert text.count("Packing image opencode-cloud-sandbox:1.18.33") == 1, text
        for name in hosts:
            found = re.search(rf"\[{name}\] Sending image \S+ to {name} \(\d+ MiB; {name} "
                              rf"has (\d+) of its (\d+) layers\)", text)
            assert found, text
            layers = len(lab_docker(name).images.get(SANDBOX).attrs["RootFS"]["Layers"])
            assert int(found[2]) == layers and layers - 4 <= int(found[1]) < layers, text
            jq = ok(run("exec", "--host", name, "--", "jq", "--version")).stdout
            assert jq.startswith("jq-"), jq  # the service runs the new image
            healthy(run, name)
        again = sent_mib(text, hosts)
        assert all(again[n] * 5 < first[n] for n in hosts), (first, again)


def sent_mib(text: str, hosts: list[str]) -> dict[str, int]:
    """The MiB each host was sent ("Sent image … to NAME (N MiB sent).")."""
    found = {name: int(mib) for name, mib in
             re.findall(r"Sent image \S+ to (\S+) \((\d+) MiB sent\)", text)}
    assert set(found) == set(hosts), text
    return found
