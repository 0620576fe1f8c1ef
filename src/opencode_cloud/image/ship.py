"""``image_source: ship``: make the sandbox image on this machine once and send it to a
host over its SSH connection, instead of building it there.

The decision is pure (:func:`decide`): a host that already has the image gets nothing; a
host whose Engine reports the same architecture as the image here gets it sent; any other
host (another architecture, or one that cannot be told) makes the image itself, as
``build``/``prebuilt`` would, and occ says why. When a command has several such hosts of
one architecture, the first builds and the others are sent its image (made_on_one_host).

The bytes: ``docker save`` of this machine's Engine (``GET /images/REF/get``) lands once
in a spool file in a private temporary folder and is indexed (image/saved_archive.py): a
host is sent only the layer files it lacks, found from the layer lists of the images it
has (the base image, or what an update left unchanged). Each piece of the archive is
compressed once, when the first host needs it, as a gzip member of its own (level 1 by
default: dockerd's ``docker load`` takes gzip, bzip2 and xz, not zstd, and reads
concatenated members as one stream), on all cores while the first pieces are already being
sent. The pieces go as the body of ``POST /images/load`` on the host's SSH-forwarded Docker
socket: never a TCP port. Many hosts read the same spool at once. ``docker load`` unpacks
the whole archive before it tags anything, so a transfer cut off half-way leaves no image
on the host, and the next start sends it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from opencode_cloud.config.model import Config
from opencode_cloud.errors import OccError
from opencode_cloud.image.refs import image_ref
from opencode_cloud.image.saved_archive import (
    Piece,
    SavedImage,
    index_archive,
    pieces_for,
    shared_layers,
    whole,
)
from opencode_cloud.report import Reporter

# gzip level 1: the cheapest compression docker load reads (bench/ship_bench.py measures
# it against none and level 6). OCC_SHIP_GZIP_LEVEL=0 sends the plain tar.
DEFAULT_GZIP_LEVEL = 1
CHUNK = 1024 * 1024
LOAD_TIMEOUT = 1800  # seconds: a host with a slow disk unpacks a large image for long
# Reached after a third of the bytes went to a host; OCC_TEST_STOP_AT freezes occ there so
# a test can cut the transfer in the middle (see output/console.py).
HALF_SENT = "ship-sending"

# Names Engines and images give architectures -> one name each. Engines report the
# kernel's (uname -m: x86_64, aarch64), images Go's (amd64, arm64).
_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64", "x64": "amd64",
    "aarch64": "arm64", "arm64": "arm64", "armv8": "arm64", "aarch64_be": "arm64be",
    "armv7l": "arm", "armv7": "arm", "armv6l": "arm", "armhf": "arm", "arm": "arm",
    "armel": "arm", "armv8l": "arm",  # a 32-bit userland on a 64-bit ARM kernel
    "i386": "386", "i486": "386", "i586": "386", "i686": "386", "386": "386", "x86": "386",
    "ppc64le": "ppc64le", "ppc64el": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
    "mips64le": "mips64le", "mips64el": "mips64le", "loongarch64": "loong64",
    "loong64": "loong64",
}


def normalize_arch(name: str | None) -> str | None:
    """One name per architecture (``x86_64`` and ``amd64`` -> ``amd64``); None when the
    name is missing or unknown: then nothing is assumed."""
    if not name:
        return None
    return _ARCH_ALIASES.get(name.strip().lower())


@dataclass(frozen=True)
class ShipPlan:
    """What a host gets: ``present`` (nothing to do), ``ship`` (sent from here) or
    ``make-there`` (it builds or pulls the image itself; ``reason`` says why)."""

    action: Literal["present", "ship", "make-there"]
    source_arch: str | None = None
    target_arch: str | None = None
    reason: str = ""


def decide(*, present: bool, source_arch: str | None, target_arch: str | None,
           where: str = "the host") -> ShipPlan:
    """The pure decision. ``source_arch``: the image here (or, before it is made, this
    machine's Engine); ``target_arch``: the host's Engine; as the Engines name them."""
    if present:
        return ShipPlan("present", source_arch, target_arch)
    source, target = normalize_arch(source_arch), normalize_arch(target_arch)
    if source is not None and source == target:
        return ShipPlan("ship", source_arch, target_arch)
    if source is None or target is None:
        unknown = "this machine's" if source is None else f"{where}'s"
        reason = (f"{unknown} architecture is not known ({source_arch or '?'} here, "
                  f"{target_arch or '?'} {where}): the image is made {where} instead of "
                  "being sent")
    else:
        reason = (f"{where} is {target_arch} ({target}), this machine's image is "
                  f"{source_arch} ({source}): the image is made {where} instead of being sent")
    return ShipPlan("make-there", source_arch, target_arch, reason)


def has_registry(image: str) -> bool:
    """Does ``image`` name a registry (``reg.example/team/x``, ``host:5000/x``,
    ``localhost/x``, ``docker.io/org/x``)? Docker's own rule for the first path part."""
    first, sep, _ = image.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def making_config(config: Config) -> Config:
    """The settings with which this machine makes the image to ship: pulled as for
    ``prebuilt`` when ``image`` names a registry, else built as for ``build``."""
    source = "prebuilt" if has_registry(config.image) else "build"
    return msgspec.structs.replace(config, image_source=source)


# -- the spool: the archive once on disk, its pieces compressed on first need -----------------

def gzip_level() -> int:
    text = os.environ.get("OCC_SHIP_GZIP_LEVEL", "")
    return int(text) if text.isdigit() and int(text) <= 9 else DEFAULT_GZIP_LEVEL


def read_range(path: Path, start: int, end: int, size: int = CHUNK) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of a file, in chunks of at most ``size``."""
    with open(path, "rb") as spool:
        spool.seek(start)
        left = end - start
        while left > 0 and (chunk := spool.read(min(size, left))):
            left -= len(chunk)
            yield chunk
    if left > 0:
        raise OccError(f"The spool file {path} ended early (it was changed or removed).")


def pack(source: Path, piece: Piece, level: int, out: Path) -> Path:
    """``piece`` of the file ``source`` as one gzip member (a whole gzip stream) in
    ``out``. zlib lets go of the GIL while it works, so pieces pack on all cores."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    with open(out, "wb") as sink:
        for chunk in read_range(source, piece.start, piece.end):
            sink.write(packer.compress(chunk))
        sink.write(packer.flush())
    return out


class Spool:
    """One image's ``docker save`` in a file, cut into pieces (:class:`SavedImage`). With
    ``level`` 0 a host gets the pieces as they are; otherwise each piece is compressed
    once, when the first host needs it, into a gzip member of its own, and every host
    that needs it is sent the same member."""

    def __init__(self, raw: Path, saved: SavedImage, level: int) -> None:
        self.raw, self.saved, self.level = raw, saved, level
        self._lock = threading.Lock()
        self._packed: dict[int, Future] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _packed_piece(self, piece: Piece) -> Future:
        with self._lock:
            future = self._packed.get(piece.start)
            if future is None:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(os.cpu_count() or 1,
                                                    thread_name_prefix="occ-pack")
                out = self.raw.with_name(f"{self.raw.stem}.{piece.start}.gz")
                future = self._pool.submit(pack, self.raw, piece, self.level, out)
                self._packed[piece.start] = future
            return future

    def stream(self, pieces: Sequence[Piece],
               on_bytes: Callable[[int, int], None]) -> Iterator[bytes]:
        """What a host is sent for ``pieces``. ``on_bytes(archive, sent)`` after each
        chunk: the archive's bytes it stands for so far, and the bytes sent so far."""
        if self.level == 0:
            done = 0
            for piece in pieces:
                for chunk in read_range(self.raw, piece.start, piece.end):
                    done += len(chunk)
                    yield chunk
                    on_bytes(done, done)
            return
        # Every piece queued at once: the pool packs ahead while the first are sent.
        futures = [self._packed_piece(piece) for piece in pieces]
        done = sent = 0
        for piece, future in zip(pieces, futures, strict=True):
            try:
                path = future.result()
            except OSError as exc:
                raise OccError(f"Could not compress the image to send: {exc}",
                               hint="The spool lives in the temporary folder (TMPDIR); "
                               "make room there, or send it plain: "
                               "OCC_SHIP_GZIP_LEVEL=0") from None
            packed, read = path.stat().st_size, 0
            for chunk in read_range(path, 0, packed):
                read += len(chunk)
                yield chunk
                on_bytes(done + piece.size * read // packed, sent + read)
            done, sent = done + piece.size, sent + packed

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def check_load_answer(lines: Iterable[dict], where: str) -> None:
    """The JSON lines ``POST /images/load`` answers; an ``error`` in them is an OccError."""
    for line in lines:
        error = line.get("error") or (line.get("errorDetail") or {}).get("message")
        if error:
            raise OccError(f"Docker {where} could not load the image sent: {error}",
                           hint="Run the command again: nothing half-loaded is kept.")


# -- the source: this machine's Engine, or a host that made the image -------------------------

class ShipSource:
    """This machine's Engine as the source of shipped images, for one command. It makes
    each image at most once (threads of a fleet command wait for each other, other occ
    processes through a file lock) and saves it at most once, into a spool that
    :meth:`close` deletes. For hosts of an architecture other than its image's, the image
    one of them builds is spooled here from that host (:func:`made_on_one_host`)."""

    def __init__(self, endpoint, lock_dir: Path | None = None) -> None:
        self.endpoint = endpoint  # DockerEndpoint of this machine
        self.lock_dir = lock_dir
        self._lock = threading.Lock()
        self._ref_locks: dict[str, threading.Lock] = {}
        self._images: dict[tuple[str, bool], object] = {}
        self._spools: dict[str, Spool] = {}
        self._arch: str | None = None
        self._folder: Path | None = None
        # Hosts of another architecture (made_on_one_host): how many hosts the command
        # has (the fleet says), those that asked for an image so far and those still
        # asking, and per (arch, inputs) the image one of them built and who built it.
        self.hosts = 1
        self._arrived: set[str] = set()
        self._asking: set[str] = set()
        self._made: dict[tuple[str, str], object] = {}
        self._made_on: dict[tuple[str, str], str] = {}

    @contextlib.contextmanager
    def asking(self, where: str) -> Iterator[None]:
        """Host ``where`` is finding out what it needs."""
        with self._lock:
            self._arrived.add(where)
            self._asking.add(where)
        try:
            yield
        finally:
            with self._lock:
                self._asking.discard(where)

    @contextlib.contextmanager
    def maker_turn(self, key: tuple[str, str], where: str,
                   reporter: Reporter) -> Iterator[tuple[object | None, str]]:
        """One host at a time for the image of ``key`` (arch, inputs): yields (the image a
        host of the command made, that host's name), or (None, ``where``) when it is
        ``where``'s turn to make it. The others wait, and say for whom."""
        lock = self._ref_lock(f"made on a host {key}")
        if not lock.acquire(blocking=False):
            maker = self._made_on.get(key, "another host")
            reporter.step(f"Waiting for {maker}, which builds the image for {key[0]} hosts")
            lock.acquire()
        try:
            if key not in self._made:
                self._made_on[key] = where
            yield self._made.get(key), self._made_on[key]
        finally:
            lock.release()

    def keep_made(self, key: tuple[str, str], image) -> None:
        """The image a host made (and spooled here) for the others of ``key``."""
        self._made[key] = image

    def more_may_need(self, where: str) -> bool:
        """Could a host of the command other than ``where`` still need an image ``where``
        made: one is still finding out what it needs, or one has not asked yet."""
        with self._lock:
            return bool(self._asking - {where}) or len(self._arrived) < self.hosts

    def _ref_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._ref_locks.setdefault(key, threading.Lock())

    def engine_arch(self) -> str | None:
        """This machine's Engine's ``Architecture`` (asked once)."""
        if self._arch is None:
            try:
                self._arch = self.endpoint.client().info().get("Architecture") or ""
            except OccError as exc:
                raise no_source(exc) from None
        return self._arch or None

    def image(self, config: Config, reporter: Reporter, refresh: bool):
        """The image to ship for ``config``, made here (built or pulled) once."""
        from opencode_cloud.image.build import ensure_base_image

        key = (image_ref(config), refresh)
        with self._ref_lock(f"image {key}"):
            if key not in self._images:
                try:
                    client = self.endpoint.client()
                except OccError as exc:
                    raise no_source(exc) from None
                with self._file_lock(key[0]):
                    self._images[key] = ensure_base_image(
                        client, making_config(config), MadeHere(reporter), refresh=refresh)
            return self._images[key]

    @contextlib.contextmanager
    def _file_lock(self, ref: str) -> Iterator[None]:
        if self.lock_dir is None:
            yield
            return
        from opencode_cloud.storage.safe_file import ensure_private_dir, lock_file

        ensure_private_dir(self.lock_dir)
        name = hashlib.sha256(ref.encode()).hexdigest()[:16]
        with lock_file(self.lock_dir / f"ship-{name}.lock", what=Path(f"the image {ref}"),
                       timeout=None):
            yield

    def spool(self, image, reporter: Reporter, origin=None, where: str = "") -> Spool:
        """``docker save`` of ``image`` in a spool file, saved and indexed once: from this
        machine's Engine, or from ``origin``, the Engine of the host ``where`` that made
        it."""
        with self._ref_lock(f"spool {image.id}"):
            spool = self._spools.get(image.id)
            if spool is not None:
                return spool
            with self._lock:
                if self._folder is None:
                    self._folder = Path(tempfile.mkdtemp(prefix="occ-ship-"))  # 0700
            path = self._folder / f"{image.id.removeprefix('sha256:')[:24]}.tar"
            ref = image.tags[0] if image.tags else image.id
            if origin is None:
                reporter.step(f"Packing image {ref} here for sending")
            else:
                reporter.step(f"Fetching image {ref} from {where}, to send it to the "
                              "command's other hosts of its architecture")
            raw = 0
            try:
                with (origin or self.endpoint).image_archive(ref) as pieces, \
                        open(path, "wb") as out:
                    for piece in pieces:
                        out.write(piece)
                        raw += len(piece)
                        reporter.progress(f"Packing {ref}", raw, None)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            try:
                saved = index_archive(path)
            except ValueError as exc:  # sent whole, as docker save wrote it
                reporter.detail(f"Every host gets the whole archive: {exc}")
                saved = whole(raw)
            spool = Spool(path, saved, gzip_level())
            how = (f"each part is compressed when a host first needs it (gzip level "
                   f"{spool.level})") if spool.level else "sent as it is (no compression)"
            reporter.detail(f"Saved {raw / 2**20:.0f} MiB, {len(saved.diff_ids)} layers; "
                            f"{how}.")
            self._spools[image.id] = spool
            return spool

    def close(self) -> None:
        with self._lock:
            folder, self._folder = self._folder, None
            spools = list(self._spools.values())
            self._spools.clear()
        for spool in spools:
            spool.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


class MadeHere(Reporter):
    """A host's reporter for the work done on this machine for it: its steps say so."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.interactive = inner.interactive

    def step(self, text: str) -> None:
        self.inner.step(f"{text} (on this machine, to send)")

    def success(self, text: str) -> None:
        self.inner.success(f"{text} (on this machine)")

    def activity(self, text: str) -> None:
        self.inner.activity(text)

    def detail(self, text: str) -> None:
        self.inner.detail(text)

    def progress(self, what: str, done: int, total: int | None) -> None:
        self.inner.progress(what, done, total)

    def info(self, text: str) -> None:
        self.inner.info(text)

    def notice(self, text: str) -> None:
        self.inner.notice(text)

    def warn(self, text: str) -> None:
        self.inner.warn(text)


def no_source(exc: OccError) -> OccError:
    return OccError(f"image_source is 'ship', but this machine's Docker cannot be used: "
                    f"{exc.message}",
                    hint="Start Docker here (the image is made here and sent), or build on "
                    "the host: occ config set image_source build")


# -- one host ---------------------------------------------------------------------------------

def ensure_shipped(client, config: Config, reporter: Reporter, source: ShipSource | None, *,
                   where: str, refresh: bool = False, origin=None):
    """The image of ``config`` on the host's Engine ``client``, sent from ``source`` when
    the host lacks it (None: the target is this machine, which makes it itself).
    ``origin``: the host's DockerEndpoint, from which an image it has to make itself can be
    sent on to the command's other hosts of its architecture."""
    from opencode_cloud.image.build import ensure_base_image

    made = making_config(config)
    if source is None:
        return ensure_base_image(client, made, reporter, refresh=refresh)
    with source.asking(where):
        return _ensure_shipped(client, config, made, reporter, source, where=where,
                               refresh=refresh, origin=origin)


def _ensure_shipped(client, config: Config, made: Config, reporter: Reporter,
                    source: ShipSource, *, where: str, refresh: bool, origin):
    from opencode_cloud.image.build import build_inputs, ensure_base_image, find_image

    ref = image_ref(config)
    existing = find_image(client, ref)
    if made.image_source == "build":
        from opencode_cloud.image.build import INPUTS_LABEL

        present = existing is not None and \
            (existing.labels or {}).get(INPUTS_LABEL) == build_inputs(made).digest
    else:
        present = existing is not None and not refresh
    if present:
        return existing
    info = client.info()
    target_arch = info.get("Architecture")
    plan = decide(present=False, source_arch=source.engine_arch(), target_arch=target_arch,
                  where=where)
    if plan.action == "ship":
        image = source.image(config, reporter, refresh)
        plan = decide(present=existing is not None and existing.id == image.id,
                      source_arch=image.attrs.get("Architecture"), target_arch=target_arch,
                      where=where)
        if plan.action == "present":
            return existing
        if plan.action == "ship":
            send(client, source, image, reporter, where, info)
            return client.images.get(image.id)
    reporter.warn(plan.reason)
    arch = normalize_arch(target_arch)
    if origin is None or made.image_source != "build" or arch is None or source.hosts < 2:
        return ensure_base_image(client, made, reporter, refresh=refresh)
    return made_on_one_host(client, made, reporter, source, origin, arch=arch, where=where,
                            info=info)


def made_on_one_host(client, made: Config, reporter: Reporter, source: ShipSource, origin, *,
                     arch: str, where: str, info: dict):
    """Hosts of an architecture this machine does not make images for: the first host of
    the command builds the image, it comes here once, and the command's other hosts of
    that architecture wait for it and are sent it, instead of each building its own."""
    from opencode_cloud.image.build import build_inputs, ensure_base_image

    key = (arch, build_inputs(made).digest)
    with source.maker_turn(key, where, reporter) as (image, maker):
        if image is None:
            built = ensure_base_image(client, made, reporter)
            if source.more_may_need(where):  # fetched before this host's connection closes
                try:
                    source.spool(built, reporter, origin=origin, where=where)
                    source.keep_made(key, built)
                except OccError as exc:  # this host's own start goes on
                    reporter.warn(f"The image could not come here from {where} for the "
                                  f"other {arch} hosts ({exc.message}): they build it "
                                  "themselves.")
            return built
    reporter.info(f"{maker} built the image for {arch} hosts: {where} is sent it from there")
    send(client, source, image, reporter, where, info)
    return client.images.get(image.id)


def host_layer_lists(client, info: dict) -> list[list[str]]:
    """The layer lists of the host's images, to leave out of the archive what it has;
    none from an Engine that keeps its images in containerd, whose ``docker load`` wants
    every file the archive names."""
    from docker.errors import NotFound

    if any(isinstance(pair, list | tuple) and len(pair) == 2 and
           str(pair[1]).startswith("io.containerd.snapshotter")
           for pair in info.get("DriverStatus") or []):
        return []
    lists = []
    for summary in client.api.images():
        with contextlib.suppress(NotFound):  # removed since it was listed
            lists.append(list(client.api.inspect_image(summary["Id"])["RootFS"]
                              .get("Layers") or []))
    return lists


def send(client, source: ShipSource, image, reporter: Reporter, where: str,
         info: dict) -> None:
    """Load ``image`` from the spool into the host's Engine, leaving out the layers the
    host has, with a byte progress bar."""
    spool = source.spool(image, reporter)
    have = shared_layers(spool.saved.diff_ids, host_layer_lists(client, info)) \
        if spool.saved.diff_ids else 0
    try:
        load(client, spool, have, image, reporter, where)
    except OccError as exc:
        if have == 0:
            raise
        reporter.notice(f"{where} did not load the image without the {have} layers it has "
                        f"({exc.message}); sending all of it")
        load(client, spool, 0, image, reporter, where)


def load(client, spool: Spool, have: int, image, reporter: Reporter, where: str) -> None:
    """One ``POST /images/load`` of the pieces a host with ``have`` layers needs."""
    pieces = pieces_for(spool.saved, have)
    total = sum(piece.size for piece in pieces)
    ref = image.tags[0] if image.tags else image.id
    what = f"Sending {ref}"
    layers = len(spool.saved.diff_ids)
    kept = f"; {where} has {have} of its {layers} layers" if have else ""
    reporter.step(f"Sending image {ref} to {where} ({total / 2**20:.0f} MiB{kept})")
    tenth, before, sent = [0], [0], [0]

    def counted(done: int, wire: int) -> None:
        reporter.progress(what, done, total)
        if before[0] * 3 < total <= done * 3:  # the first chunk past a third of the image
            reporter.checkpoint(HALF_SENT)
        before[0], sent[0] = done, wire
        if done * 10 // max(total, 1) > tenth[0]:
            tenth[0] = done * 10 // max(total, 1)
            reporter.detail(f"{what}: {tenth[0] * 10}%")

    api = client.api
    response = api._post(api._url("/images/load"), data=spool.stream(pieces, counted),
                         params={"quiet": True}, stream=True, timeout=LOAD_TIMEOUT)
    api._raise_for_status(response)
    check_load_answer(api._stream_helper(response, decode=True), where)
    loaded = client.images.get(image.id)
    if ref not in (loaded.tags or []) and image.tags:
        loaded.tag(ref)
    reporter.success(f"Sent image {ref} to {where} ({sent[0] / 2**20:.0f} MiB sent).")
