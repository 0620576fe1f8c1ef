"""image_source ship: the pure decision, architecture names, the compressed stream, and the
whole ensure_shipped path against stand-ins for the two Engines."""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile
import threading
from pathlib import Path

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.errors import OccError
from opencode_cloud.image import build, ship
from opencode_cloud.image.refs import image_ref
from opencode_cloud.image.saved_archive import index_archive, pieces_for, shared_layers
from tests.saved_images import diff_id, image_of_archive, layer_tar, saved_archive
from tests.unit.fake_docker import FakeClient, FakeImage, RecordingReporter, fake_endpoint

pytestmark = pytest.mark.unit

BASE = layer_tar(("etc/os-release", b"bookworm\n" * 500))
TOOLS = layer_tar(("usr/bin/git", bytes(range(256)) * 300))
APP = layer_tar(("usr/local/bin/opencode", b"o" * 150_000))


@pytest.fixture(autouse=True)
def spool_in_tmp(tmp_path: Path, monkeypatch) -> Path:
    """Spools go to the test's own folder; checked empty after each test."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path


@pytest.mark.parametrize(("name", "normal"), [
    ("x86_64", "amd64"), ("amd64", "amd64"), ("AMD64", "amd64"),
    ("aarch64", "arm64"), ("arm64", "arm64"),
    ("armv7l", "arm"), ("arm", "arm"), ("armv8l", "arm"),
    ("i686", "386"), ("386", "386"),
    ("ppc64le", "ppc64le"), ("s390x", "s390x"), ("riscv64", "riscv64"),
    ("", None), (None, None), ("pdp11", None),
])
def test_architecture_names_of_engines_and_images_meet(name, normal) -> None:
    assert ship.normalize_arch(name) == normal


@pytest.mark.parametrize(("present", "source", "target", "action"), [
    (True, "amd64", "x86_64", "present"),
    (True, "amd64", "aarch64", "present"),   # a host that has it needs nothing
    (False, "amd64", "x86_64", "ship"),      # image name vs Engine name of one architecture
    (False, "x86_64", "x86_64", "ship"),
    (False, "arm64", "aarch64", "ship"),
    (False, "amd64", "aarch64", "make-there"),
    (False, "arm64", "x86_64", "make-there"),
    (False, "arm", "aarch64", "make-there"),  # 32-bit image, 64-bit host: never assumed
    (False, None, "x86_64", "make-there"),
    (False, "amd64", "", "make-there"),
    (False, "amd64", "pdp11", "make-there"),
])
def test_decision_table(present, source, target, action) -> None:
    plan = ship.decide(present=present, source_arch=source, target_arch=target, where="h1")
    assert plan.action == action
    assert bool(plan.reason) == (action == "make-there")


def test_the_reason_names_both_architectures() -> None:
    plan = ship.decide(present=False, source_arch="arm64", target_arch="x86_64", where="web1")
    assert "web1 is x86_64" in plan.reason and "arm64" in plan.reason
    assert "made web1 instead" in plan.reason
    unknown = ship.decide(present=False, source_arch="amd64", target_arch=None, where="web1")
    assert "web1's architecture is not known" in unknown.reason


@pytest.mark.parametrize(("image", "mode"), [
    ("opencode-cloud-sandbox", "build"),
    ("team/sandbox", "build"),
    ("registry.example/team/sandbox", "prebuilt"),
    ("127.0.0.1:5000/occ/sandbox", "prebuilt"),
    ("localhost/sandbox", "prebuilt"),
    ("docker.io/team/sandbox", "prebuilt"),
])
def test_the_image_is_built_here_or_pulled_here(image, mode) -> None:
    made = ship.making_config(Config(image=image, image_source="ship"))
    assert made.image_source == mode and made.image == image


def test_the_level_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("OCC_SHIP_GZIP_LEVEL", "0")
    assert ship.gzip_level() == 0
    monkeypatch.setenv("OCC_SHIP_GZIP_LEVEL", "fast")
    assert ship.gzip_level() == ship.DEFAULT_GZIP_LEVEL
    monkeypatch.delenv("OCC_SHIP_GZIP_LEVEL")
    assert ship.gzip_level() == 1


def test_read_range_reads_exactly_the_range(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(bytes(range(256)) * 10)
    chunks = list(ship.read_range(path, 100, 2100, size=1000))
    assert [len(c) for c in chunks] == [1000, 1000]
    assert b"".join(chunks) == path.read_bytes()[100:2100]
    with pytest.raises(OccError, match="ended early"):
        list(ship.read_range(path, 2000, 5000))


def spool_of(tmp_path: Path, layers: list[bytes], level: int) -> tuple[ship.Spool, bytes]:
    raw = saved_archive(layers)
    path = tmp_path / "image.tar"
    path.write_bytes(raw)
    return ship.Spool(path, index_archive(path), level), raw


@pytest.mark.parametrize("level", [0, 1, 6])
@pytest.mark.parametrize("have", [0, 1, 2])
def test_what_a_host_is_sent_reads_back_as_the_archive_without_its_layers(
        tmp_path: Path, level: int, have: int) -> None:
    spool, raw = spool_of(tmp_path, [BASE, TOOLS, APP], level)
    pieces = pieces_for(spool.saved, have)
    seen: list[tuple[int, int]] = []
    sent = b"".join(spool.stream(pieces, lambda done, wire: seen.append((done, wire))))
    expected = b"".join(raw[p.start:p.end] for p in pieces)
    if level == 0:
        assert sent == expected
    else:
        assert sent[:2] == b"\x1f\x8b" and len(sent) < len(expected)  # gzip, smaller
        # One gzip member per piece; concatenated they are one stream to a reader that
        # reads every member, as docker load's do (Go's gzip reader, unpigz). Python's
        # tarfile "r|gz" would stop after the first: GzipFile reads them all.
        assert gzip.decompress(sent) == expected
        with gzip.GzipFile(fileobj=io.BytesIO(sent)) as unpacked, \
                tarfile.open(fileobj=unpacked, mode="r|") as tar:
            names = [m.name for m in tar]
        assert "manifest.json" in names
    total = sum(p.size for p in pieces)
    assert seen[-1] == (total, len(sent))  # the bar ends at the archive bytes it stands for
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    spool.close()


def test_each_piece_is_packed_once_for_every_host(tmp_path: Path, monkeypatch) -> None:
    spool, _ = spool_of(tmp_path, [BASE, TOOLS, APP], 1)
    packed: list[int] = []
    real_pack = ship.pack

    def counting(source, piece, level, out):
        packed.append(piece.start)
        return real_pack(source, piece, level, out)

    monkeypatch.setattr(ship, "pack", counting)
    first = b"".join(spool.stream(pieces_for(spool.saved, 1), lambda *_: None))
    second = b"".join(spool.stream(pieces_for(spool.saved, 0), lambda *_: None))
    assert len(packed) == len(set(packed)) == len(spool.saved.pieces)
    assert second.endswith(first[-100:])  # the same members, reused
    spool.close()


def test_a_load_error_is_an_occ_error() -> None:
    ship.check_load_answer([{"stream": "Loaded image: x:1\n"}], "h1")
    with pytest.raises(OccError, match="Docker h1 could not load the image sent: unexpected EOF"):
        ship.check_load_answer([{"errorDetail": {"message": "unexpected EOF"},
                                 "error": "unexpected EOF"}], "h1")


# -- ensure_shipped against two stand-in Engines ----------------------------------------------

class ShipImage(FakeImage):
    def __init__(self, *args, arch: str = "amd64", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.attrs = {"Architecture": arch}


class Engine(FakeClient):
    """A FakeClient with an architecture, that builds ShipImages and loads gzip tars."""

    def __init__(self, arch: str, image_arch: str = "amd64") -> None:
        super().__init__()
        self.arch, self.image_arch = arch, image_arch
        self.loaded: list[bytes] = []
        self.load_answer: list[dict] = []
        self.layers: dict[str, list[str]] = {}  # image id -> its layers, as inspect says
        self.driver_status: list[list[str]] = [["Backing Filesystem", "extfs"]]
        self.load_sees_layers = True  # False: the layer store lost them since the listing
        api = self.api
        original_build = api.build

        def build_here(**kwargs):
            answer = original_build(**kwargs)
            made = self.images.get(kwargs["tag"])
            self.images.add(ShipImage(self, [kwargs["tag"]], made.labels, image_id=made.id,
                                      arch=self.image_arch))
            return answer

        api.build = build_here
        api._url = lambda path, *args: path
        api._raise_for_status = lambda response: None
        api._stream_helper = lambda response, decode=False: iter(response)
        api._post = self.post
        api.images = lambda: [{"Id": image_id} for image_id in self.layers]
        api.inspect_image = lambda image_id: {"RootFS": {"Layers": self.layers[image_id]}}

    def info(self) -> dict:
        return {"Architecture": self.arch, "DriverStatus": self.driver_status}

    def post(self, url, data, params, stream, timeout):
        """docker load: a layer file is opened only when the Engine lacks the layer."""
        assert url == "/images/load"
        body = b"".join(data)
        self.loaded.append(body)
        if self.load_answer:
            return self.load_answer
        config, paths, members = image_of_archive(
            gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
        ids = config["rootfs"]["diff_ids"]
        have = shared_layers(ids, self.layers.values()) if self.load_sees_layers else 0
        missing = [path for path in paths[have:] if path not in members]
        if missing:
            return [{"error": f"open /var/lib/docker/tmp/docker-import-1/{missing[0]}: "
                              "no such file or directory"}]
        labels = config["config"]["Labels"]
        image = self.images.add(ShipImage(self, [labels.pop("test.ref")], labels,
                                          image_id=labels.pop("test.id"),
                                          arch=config["architecture"]))
        self.layers[image.id] = ids
        return []


def archive_of(engine: Engine, ref: str) -> bytes:
    """A docker save archive of ``engine``'s image ``ref`` (its id, tag and labels ride in
    the config's labels, for the stand-in docker load)."""
    image = engine.images.get(ref)
    labels = {**image.labels, "test.id": image.id, "test.ref": ref}
    return saved_archive([BASE, TOOLS], ref=ref, arch=image.attrs["Architecture"],
                         labels=labels)


def saving_endpoint(engine: Engine):
    """``engine``'s endpoint, whose docker save gives archive_of; ``.saves`` lists them."""
    endpoint = fake_endpoint(engine)
    endpoint.saves = []

    @contextlib.contextmanager
    def image_archive(ref: str):
        endpoint.saves.append(ref)
        data = archive_of(engine, ref)
        yield iter([data[:1000], data[1000:]])

    endpoint.image_archive = image_archive
    return endpoint


def source_of(engine: Engine) -> tuple[ship.ShipSource, list[str]]:
    """A ShipSource on ``engine``; its 'docker save' gives a tiny stand-in archive."""
    endpoint = saving_endpoint(engine)
    return ship.ShipSource(endpoint), endpoint.saves


CONFIG = Config(image_source="ship", extra_ca_certs="none")


def test_a_host_without_the_image_gets_it_sent_once_built_here() -> None:
    here, host = Engine("x86_64"), Engine("x86_64")
    source, saved = source_of(here)
    reporter = RecordingReporter()
    image = build.ensure_image(host, CONFIG, reporter, ship=source, where="h1")
    built_here = here.images.get(image_ref(CONFIG))
    assert image.id == built_here.id and image_ref(CONFIG) in image.tags
    assert len(here.api.builds) == 1 and host.api.builds == []  # nothing built on the host
    assert saved == [image_ref(CONFIG)] and len(host.loaded) == 1
    progress = [e for e in reporter.events if e[0] == "progress" and e[1].startswith("Sending")]
    total = len(gzip.decompress(host.loaded[0]))  # the bar counts the archive's bytes
    assert progress[-1][2:] == (total, total)
    assert any("Sending image" in s and "to h1" in s for s in reporter.of("step"))
    assert any(s.startswith("Building image") and s.endswith("(on this machine, to send)")
               for s in reporter.of("step"))  # where the build runs is never in doubt
    # The labels came along: the next start finds it up to date, on the host alone.
    assert build.ensure_image(host, CONFIG, reporter, ship=source, where="h1").id == image.id
    assert len(host.loaded) == 1 and len(here.api.builds) == 1
    source.close()


def test_many_hosts_share_one_build_and_one_spool() -> None:
    here = Engine("x86_64")
    source, saved = source_of(here)
    hosts = [Engine("x86_64") for _ in range(5)]
    errors: list[BaseException] = []

    def one(host: Engine) -> None:
        try:
            build.ensure_image(host, CONFIG, RecordingReporter(), ship=source, where="h")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(here.api.builds) == 1 and len(saved) == 1
    assert all(len(h.loaded) == 1 and h.loaded[0] == hosts[0].loaded[0] for h in hosts)
    folder = source._folder
    assert folder is not None and any(folder.iterdir())
    source.close()
    assert not folder.exists()  # the spool goes with the command


def test_a_host_of_another_architecture_builds_there_and_says_so() -> None:
    here, host = Engine("x86_64"), Engine("aarch64")
    source, saved = source_of(here)
    reporter = RecordingReporter()
    build.ensure_image(host, CONFIG, reporter, ship=source, where="pi")
    assert here.api.builds == [] and saved == []  # nothing made here for it
    assert len(host.api.builds) == 1 and host.loaded == []
    [warning] = reporter.of("warn")
    assert "pi is aarch64" in warning and "x86_64" in warning


def test_an_image_here_of_another_architecture_is_not_sent() -> None:
    here, host = Engine("x86_64", image_arch="arm64"), Engine("x86_64")
    source, saved = source_of(here)
    reporter = RecordingReporter()
    build.ensure_image(host, CONFIG, reporter, ship=source, where="h1")
    assert len(here.api.builds) == 1 and saved == [] and host.loaded == []
    assert len(host.api.builds) == 1
    assert "image is arm64" in reporter.of("warn")[0] and "h1 is x86_64" in reporter.of("warn")[0]


def test_a_registry_image_is_pulled_here_then_sent() -> None:
    config = Config(image_source="ship", image="reg.example/team/sandbox")
    here, host = Engine("x86_64"), Engine("x86_64")
    original_pull = here.api.pull

    def pull(ref, stream=False, decode=False):  # the registry holds one image all along
        events = original_pull(ref, stream, decode)
        here.images.add(ShipImage(here, [ref], image_id="sha256:" + "7" * 64))
        return events

    here.api.pull = pull
    source, _ = source_of(here)
    image = build.ensure_image(host, config, RecordingReporter(), ship=source, where="h1")
    assert here.api.pulls == ["reg.example/team/sandbox:1.18.33"] and host.api.pulls == []
    assert image.id == here.images.get("reg.example/team/sandbox:1.18.33").id
    # update (refresh): pulled here again; the host has that id already, nothing is sent
    build.ensure_image(host, config, RecordingReporter(), ship=source, where="h1", refresh=True)
    assert len(here.api.pulls) == 2 and len(host.loaded) == 1


def test_this_machine_as_target_makes_the_image_itself() -> None:
    here = Engine("x86_64")
    build.ensure_image(here, CONFIG, RecordingReporter(), ship=None)
    assert len(here.api.builds) == 1


def test_a_failed_load_is_an_error_and_keeps_nothing() -> None:
    here, host = Engine("x86_64"), Engine("x86_64")
    host.load_answer = [{"error": "unexpected EOF"}]
    source, _ = source_of(here)
    with pytest.raises(OccError, match="could not load the image sent"):
        build.ensure_image(host, CONFIG, RecordingReporter(), ship=source, where="h1")
    assert host.images.by_ref == {}


def test_docker_missing_here_is_a_clear_error() -> None:
    from opencode_cloud.engine.endpoint import DockerEndpoint

    source = ship.ShipSource(DockerEndpoint(base_url="unix:///nonexistent/docker.sock"))
    with pytest.raises(OccError, match="image_source is 'ship', but this machine's Docker") \
            as caught:
        build.ensure_image(Engine("x86_64"), CONFIG, RecordingReporter(), ship=source,
                           where="h1")
    assert "occ config set image_source build" in caught.value.hint


# -- only the layers a host lacks ---------------------------------------------------------------

def sent_members(host: Engine, i: int = -1) -> dict:
    return image_of_archive(gzip.decompress(host.loaded[i]))[2]


def test_a_host_with_the_base_image_is_sent_only_the_layers_above_it() -> None:
    here, host = Engine("x86_64"), Engine("x86_64")
    host.layers["sha256:" + "b" * 64] = [diff_id(BASE)]  # debian:bookworm-slim, say
    source, _ = source_of(here)
    reporter = RecordingReporter()
    image = build.ensure_image(host, CONFIG, reporter, ship=source, where="h1")
    assert image.id == here.images.get(image_ref(CONFIG)).id
    members = sent_members(host)
    assert BASE not in members.values() and TOOLS in members.values()
    [step] = [s for s in reporter.of("step") if s.startswith("Sending image")]
    assert step.endswith("; h1 has 1 of its 2 layers)"), step
    assert reporter.of("notice") == []
    source.close()


def test_a_host_that_cannot_load_it_without_its_layers_gets_it_whole() -> None:
    here, host = Engine("x86_64"), Engine("x86_64")
    host.layers["sha256:" + "b" * 64] = [diff_id(BASE)]
    host.load_sees_layers = False  # pruned between the listing and the load
    source, _ = source_of(here)
    reporter = RecordingReporter()
    build.ensure_image(host, CONFIG, reporter, ship=source, where="h1")
    assert len(host.loaded) == 2 and BASE in sent_members(host).values()
    assert BASE not in sent_members(host, 0).values()
    [notice] = reporter.of("notice")
    assert "h1 did not load the image without the 1 layers it has" in notice
    assert "no such file or directory" in notice and notice.endswith("sending all of it")
    source.close()


def test_an_engine_that_keeps_images_in_containerd_gets_every_layer() -> None:
    here, host = Engine("x86_64"), Engine("x86_64")
    host.layers["sha256:" + "b" * 64] = [diff_id(BASE)]
    host.driver_status = [["driver-type", "io.containerd.snapshotter.v1"]]
    source, _ = source_of(here)
    build.ensure_image(host, CONFIG, RecordingReporter(), ship=source, where="h1")
    assert len(host.loaded) == 1 and BASE in sent_members(host).values()
    source.close()


def test_hosts_with_different_layers_share_the_packed_pieces() -> None:
    here = Engine("x86_64")
    bare, based = Engine("x86_64"), Engine("x86_64")
    based.layers["sha256:" + "b" * 64] = [diff_id(BASE)]
    source, saved = source_of(here)
    for host in (bare, based):
        build.ensure_image(host, CONFIG, RecordingReporter(), ship=source, where="h")
    assert len(saved) == 1
    assert bare.loaded[0].endswith(based.loaded[0][-200:])  # same members after the base
    assert len(based.loaded[0]) < len(bare.loaded[0])
    source.close()


# -- hosts of an architecture this machine does not make images for --------------------------

def ship_to(hosts: list[Engine], source: ship.ShipSource) -> list[RecordingReporter]:
    """ensure_image on every host at once, as a fleet command does; their reporters."""
    reporters = [RecordingReporter() for _ in hosts]
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            build.ensure_image(hosts[i], CONFIG, reporters[i], ship=source, where=f"h{i}",
                               origin=hosts[i].endpoint)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(hosts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return reporters


def foreign_hosts(n: int) -> list[Engine]:
    hosts = [Engine("x86_64") for _ in range(n)]
    for host in hosts:
        host.endpoint = saving_endpoint(host)
    return hosts


def test_one_host_of_another_architecture_builds_and_the_others_are_sent_its_image() -> None:
    here = Engine("aarch64", image_arch="arm64")  # a laptop with an ARM CPU
    source, saved_here = source_of(here)
    hosts = foreign_hosts(5)
    source.hosts = 5
    reporters = ship_to(hosts, source)
    [maker] = [h for h in hosts if h.api.builds]  # one build, on one host
    assert len(maker.api.builds) == 1 and here.api.builds == [] and saved_here == []
    assert maker.endpoint.saves == [image_ref(CONFIG)]  # fetched from it once
    image_id = maker.images.get(image_ref(CONFIG)).id
    for i, host in enumerate(hosts):
        assert host.images.get(image_ref(CONFIG)).id == image_id
        if host is not maker:
            assert host.api.builds == [] and len(host.loaded) == 1
            [line] = [t for t in reporters[i].of("info") if "built the image" in t]
            assert line == f"h{hosts.index(maker)} built the image for amd64 hosts: " \
                           f"h{i} is sent it from there"
    assert any("is aarch64" in w or "x86_64" in w for w in reporters[0].of("warn"))
    source.close()


def test_a_lone_host_of_another_architecture_builds_and_nothing_is_fetched() -> None:
    here = Engine("aarch64", image_arch="arm64")
    source, _ = source_of(here)
    [host] = foreign_hosts(1)
    ship_to([host], source)
    assert len(host.api.builds) == 1 and host.endpoint.saves == []
    source.close()


def test_hosts_one_after_the_other_still_share_one_build() -> None:
    here = Engine("aarch64", image_arch="arm64")
    source, _ = source_of(here)
    first, second = foreign_hosts(2)
    source.hosts = 2  # --parallel 1: the first is done before the second begins
    ship_to([first], source)
    ship_to([second], source)
    assert len(first.api.builds) == 1 and second.api.builds == []
    assert len(second.loaded) == 1 and first.endpoint.saves == [image_ref(CONFIG)]
    source.close()


def test_a_maker_whose_image_cannot_be_fetched_starts_and_the_others_build() -> None:
    here = Engine("aarch64", image_arch="arm64")
    source, _ = source_of(here)
    first, second = foreign_hosts(2)

    @contextlib.contextmanager
    def broken(ref: str):
        raise OccError("the connection to h0 dropped")
        yield

    first.endpoint.image_archive = broken
    source.hosts = 2
    [first_reporter] = ship_to([first], source)
    assert "The image could not come here from h0 for the other amd64 hosts" in \
        first_reporter.of("warn")[-1]
    ship_to([second], source)
    assert len(first.api.builds) == 1 and len(second.api.builds) == 1
    source.close()
