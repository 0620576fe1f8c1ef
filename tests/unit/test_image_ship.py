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
from tests.conftest import tar_of
from tests.unit.fake_docker import FakeClient, FakeImage, RecordingReporter, fake_endpoint

pytestmark = pytest.mark.unit


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


def pieces(data: bytes, size: int = 7000) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("level", [1, 6, 9])
def test_the_compressed_stream_is_one_gzip_stream_of_the_same_tar(level) -> None:
    data = tar_of({"manifest.json": b"[]", "layer.tar": bytes(range(256)) * 4000})
    packed = b"".join(ship.compressed(pieces(data), level))
    assert packed[:2] == b"\x1f\x8b"  # what docker load recognises as gzip
    assert len(packed) < len(data)
    assert gzip.decompress(packed) == data
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r|gz") as tar:
        assert [m.name for m in tar] == ["manifest.json", "layer.tar"]


def test_level_zero_sends_the_tar_unchanged(monkeypatch) -> None:
    data = tar_of({"a": b"x" * 10})
    assert b"".join(ship.compressed(pieces(data, 100), 0)) == data
    monkeypatch.setenv("OCC_SHIP_GZIP_LEVEL", "0")
    assert ship.gzip_level() == 0
    monkeypatch.setenv("OCC_SHIP_GZIP_LEVEL", "fast")
    assert ship.gzip_level() == ship.DEFAULT_GZIP_LEVEL


def test_read_pieces_counts_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(b"a" * 2500)
    seen: list[int] = []
    assert b"".join(ship.read_pieces(path, seen.append, size=1000)) == b"a" * 2500
    assert seen == [1000, 2000, 2500]


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
        api._stream_helper = lambda response, decode=False: iter(self.load_answer)
        api._post = self.post

    def info(self) -> dict:
        return {"Architecture": self.arch}

    def post(self, url, data, params, stream, timeout):
        assert url == "/images/load"
        body = b"".join(data)
        self.loaded.append(body)
        if not self.load_answer:  # a whole archive: the image appears with its id and tags
            manifest = gzip.decompress(body).decode()
            image_id, ref, arch, labels = manifest.split("|", 3)
            self.images.add(ShipImage(self, [ref], eval(labels), image_id=image_id,  # noqa: S307
                                      arch=arch))
        return object()


def source_of(engine: Engine) -> tuple[ship.ShipSource, list[str]]:
    """A ShipSource on ``engine``; its 'docker save' gives a tiny stand-in archive."""
    endpoint = fake_endpoint(engine)
    saved: list[str] = []

    @contextlib.contextmanager
    def image_archive(ref: str):
        saved.append(ref)
        image = engine.images.get(ref)
        yield iter([f"{image.id}|{ref}|{image.attrs['Architecture']}|".encode(),
                    repr(image.labels).encode()])

    endpoint.image_archive = image_archive
    return ship.ShipSource(endpoint), saved


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
    total = len(host.loaded[0])
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
