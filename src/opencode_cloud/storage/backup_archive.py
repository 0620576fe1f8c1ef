"""The backup archive: one zstd-compressed tar with a header, the volumes, the login and a
manifest. Pure file handling, no Docker: the service layer feeds it Docker's tar streams.

Layout, in this order::

    occ-backup.json          what this is, and which occ wrote it (read first: a foreign
                             file or one from a newer occ is refused before anything else)
    volumes/<role>/...       every entry of each volume (workspace, data, config, state),
                             as Docker's archive API gave it: owners, modes, times, links
    credentials.json         the web UI's login (so the same login works after a restore)
    manifest.json            versions, volume sizes, and type, size and SHA-256 of every
                             entry; it comes last because the checksums are known only then

zstd (python-zstandard) rather than gzip: it compresses about five times faster at a better
ratio and releases the GIL, so a 1 GB workspace is bound by the link, not by one core. The
frame carries zstd's own checksum and the tar's end is checked, so a file cut anywhere is
refused, not half-read.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from opencode_cloud import __version__
from opencode_cloud.errors import OccError

KIND = "opencode-cloud-backup"
FORMAT = 1
HEADER_NAME = "occ-backup.json"
CREDENTIALS_NAME = "credentials.json"
MANIFEST_NAME = "manifest.json"
VOLUME_DIR = "volumes"
ROLES = ("workspace", "data", "config", "state")
CHUNK = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE

# tar member type -> the manifest's short name. Device nodes are never archived or
# restored: one in a workspace would hand the sandbox a host's disk.
KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
         tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.FIFOTYPE: "fifo"}


class BadArchive(OccError):
    """The file is not a complete, unchanged occ backup."""

    def __init__(self, path: str, problem: str, hint: str | None = None) -> None:
        super().__init__(f"{path} is not a usable occ backup: {problem}",
                         hint=hint or "Nothing was changed. Use another backup file, or make "
                         "a new one with 'occ backup'.")


def version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def header(source: str, instance: str) -> dict[str, Any]:
    return {"kind": KIND, "format": FORMAT, "occ_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": source, "instance": instance}


def check_header(path: str, data: Any) -> None:
    """A foreign file or one that a newer occ wrote is refused here, before the volumes."""
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise BadArchive(path, "it was not made by occ backup")
    made_by = str(data.get("occ_version", "?"))
    if not isinstance(data.get("format"), int) or data["format"] > FORMAT or \
            version_tuple(made_by) > version_tuple(__version__):
        raise BadArchive(path, f"it was made by occ {made_by}, newer than this occ "
                         f"({__version__})", hint="Update occ on this machine "
                         "(pip install -U opencode-cloud), then restore again. Nothing "
                         "was changed.")


def volume_member_name(name: str) -> tuple[str, str] | None:
    """``volumes/<role>/rest`` -> (role, rest); None for anything else or any path that
    could leave its volume (absolute, ``..``, empty parts)."""
    parts = name.rstrip("/").split("/")
    if len(parts) < 2 or parts[0] != VOLUME_DIR or parts[1] not in ROLES:
        return None
    if any(part in ("", ".", "..") for part in parts[2:]):
        return None
    return parts[1], "/".join(parts[2:])


def under_symlink(name: str, symlinks: set[str]) -> bool:
    parts = name.rstrip("/").split("/")
    return any("/".join(parts[:i]) in symlinks for i in range(1, len(parts)))


def entry_of(member: tarfile.TarInfo, digest: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": KINDS[member.type], "size": member.size if
                             member.isreg() else 0}
    if digest is not None:
        entry["sha256"] = digest
    if member.issym() or member.islnk():
        entry["link"] = member.linkname
    return entry


class HashingReader:
    """Reads ``size`` bytes of ``source`` and keeps their SHA-256."""

    def __init__(self, source: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self.source = source
        self.sha = hashlib.sha256()
        self.on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha.update(data)
        self.on_bytes(len(data))
        return data


class BufferedReader:
    """A file-like ``read`` over pieces of bytes from :meth:`more`, without copying the
    rest of a piece on every small read (tarfile reads a piece at a time)."""

    def __init__(self) -> None:
        self._piece, self._pos = b"", 0

    def more(self) -> bytes | None:  # the next piece; None at the end
        raise NotImplementedError

    def read(self, size: int = -1) -> bytes:
        out = []
        wanted = size
        while wanted != 0:
            if self._pos >= len(self._piece):
                piece = self.more()
                if piece is None:
                    break
                self._piece, self._pos = piece, 0
                continue
            end = len(self._piece) if wanted < 0 else min(len(self._piece), self._pos + wanted)
            out.append(self._piece[self._pos:end])
            if wanted > 0:
                wanted -= end - self._pos
            self._pos = end
        return b"".join(out)


class ChunkReader(BufferedReader):
    """A file-like reader over an iterator of byte chunks (Docker's archive stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self.chunks = iter(chunks)

    def more(self) -> bytes | None:
        return next(self.chunks, None)


@dataclass
class VolumeSummary:
    files: int = 0
    bytes: int = 0
    entries: int = 0


@dataclass
class ArchiveWriter:
    """Writes the archive into ``sink`` (a binary file). Use as a context manager; call
    :meth:`add_volume` per volume, then :meth:`finish`."""

    sink: IO[bytes]
    header: dict[str, Any]
    on_bytes: Callable[[int], None] = lambda n: None
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, VolumeSummary] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def __enter__(self) -> ArchiveWriter:
        import zstandard

        self._zstd = zstandard.ZstdCompressor(level=3, write_checksum=True, threads=-1) \
            .stream_writer(self.sink, closefd=False)
        # tarfile's default buffer: its stream appends to a bytes buffer (copied on every
        # append), so a large one makes each small file cost a megabyte of copying.
        self._tar = tarfile.open(fileobj=self._zstd, mode="w|", format=tarfile.PAX_FORMAT)
        self._add_json(HEADER_NAME, self.header)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:  # an error: the caller removes the partial file
            return
        self._tar.close()
        self._zstd.close()

    def _add_json(self, name: str, data: Any) -> str:
        import io

        raw = json.dumps(data, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(raw), 0o600, int(time.time())
        self._tar.addfile(info, io.BytesIO(raw))
        return hashlib.sha256(raw).hexdigest()

    def add_volume(self, role: str, docker_tar: IO[bytes]) -> VolumeSummary:
        """Copy one volume from Docker's archive of its mount point (entries named
        ``<role>/…``), hashing every file on the way."""
        summary = self.volumes.setdefault(role, VolumeSummary())
        with tarfile.open(fileobj=docker_tar, mode="r|") as source:
            self._copy_members(role, source, summary)
        return summary

    def _copy_members(self, role: str, source: tarfile.TarFile,
                      summary: VolumeSummary) -> None:
        for member in source:
            top, _, rest = member.name.rstrip("/").partition("/")
            if top != role or member.type not in KINDS:
                self.skipped.append(member.name)
                continue
            member.name = posixpath.join(VOLUME_DIR, role, rest) if rest else \
                posixpath.join(VOLUME_DIR, role)
            if member.islnk():
                member.linkname = posixpath.join(VOLUME_DIR, member.linkname)
            # The names changed: let tarfile write fresh long-name records.
            member.pax_headers = {k: v for k, v in member.pax_headers.items()
                                  if k not in ("path", "linkpath")}
            if volume_member_name(member.name) is None:
                self.skipped.append(member.name)
                continue
            digest = None
            if member.isreg():
                reader = HashingReader(source.extractfile(member), self.on_bytes)
                self._tar.addfile(member, reader)
                digest = reader.sha.hexdigest()
                summary.files += 1
                summary.bytes += member.size
            else:
                self._tar.addfile(member)
            summary.entries += 1
            self.entries[member.name] = entry_of(member, digest)

    def finish(self, credentials: dict[str, str] | None, extra: dict[str, Any]) -> dict:
        """Write the login and the manifest; returns the manifest."""
        manifest = {**self.header, **extra,
                    "volumes": {role: vars(s) for role, s in self.volumes.items()},
                    "entries": self.entries}
        if credentials is not None:
            manifest["credentials_sha256"] = self._add_json(CREDENTIALS_NAME, credentials)
        self._add_json(MANIFEST_NAME, manifest)
        return manifest


class CompressedReader(BufferedReader):
    """Decompresses the archive file chunk by chunk and checks that zstd's frame is whole
    (a file cut after the tar's last block is refused too) and has nothing after it."""

    def __init__(self, path: str, raw: IO[bytes], on_raw: Callable[[int], None]) -> None:
        import zstandard

        super().__init__()
        self.path, self.raw, self.on_raw = path, raw, on_raw
        self._zstd = zstandard.ZstdDecompressor().decompressobj()
        self._error = zstandard.ZstdError

    def more(self) -> bytes | None:
        if self._zstd.eof:
            if self.raw.read(1):
                raise BadArchive(self.path, "there is data after its end")
            return None
        chunk = self.raw.read(CHUNK)
        if not chunk:
            raise BadArchive(self.path, "it is truncated (the file ends early)")
        self.on_raw(len(chunk))
        try:
            data = self._zstd.decompress(chunk)
        except self._error as exc:
            raise BadArchive(self.path, f"it is corrupted ({exc})") from None
        if self._zstd.eof and self._zstd.unused_data:
            raise BadArchive(self.path, "there is data after its end")
        return data

    def read_to_end(self) -> None:
        while self.more() is not None:
            pass


def _members(path: str, reader: CompressedReader) -> Iterator[tuple[tarfile.TarFile,
                                                                    tarfile.TarInfo]]:
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                yield tar, member
    except tarfile.TarError as exc:
        raise BadArchive(path, f"its contents are damaged ({exc})") from None


def _read_json(path: str, tar: tarfile.TarFile, member: tarfile.TarInfo) -> Any:
    handle = tar.extractfile(member)
    try:
        return json.loads(handle.read(16 * 1024 * 1024)) if handle else None
    except (ValueError, tarfile.TarError):
        raise BadArchive(path, f"its {member.name} is damaged") from None


@dataclass
class VerifiedBackup:
    manifest: dict[str, Any]
    credentials: dict[str, str] | None

    @property
    def total_bytes(self) -> int:
        return sum(v.get("bytes", 0) for v in self.manifest["volumes"].values())

    @property
    def file_count(self) -> int:
        return sum(v.get("files", 0) for v in self.manifest["volumes"].values())


def verify(path: str, on_raw: Callable[[int], None] = lambda n: None) -> VerifiedBackup:
    """Read the whole archive and check it against its manifest: header first, every
    entry's type, size, link and SHA-256, nothing missing, nothing extra, a whole frame.
    Raises BadArchive; touches nothing but the file (read-only)."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise OccError(f"cannot read {path}: {exc.strerror}",
                       hint="Check the path and its permissions.") from None
    with raw:
        if raw.read(4) != b"\x28\xb5\x2f\xfd":
            raise BadArchive(path, "it is not a zstd-compressed occ backup")
        raw.seek(0)
        reader = CompressedReader(path, raw, on_raw)
        seen: dict[str, dict[str, Any]] = {}
        manifest = credentials = None
        credentials_sha = None
        symlinks: set[str] = set()
        first = True
        for tar, member in _members(path, reader):
            if first:
                if member.name != HEADER_NAME or not member.isreg():
                    raise BadArchive(path, "it was not made by occ backup")
                check_header(path, _read_json(path, tar, member))
                first = False
                continue
            if manifest is not None:
                raise BadArchive(path, f"it has {member.name} after its manifest")
            if member.name == MANIFEST_NAME:
                manifest = _read_json(path, tar, member)
            elif member.name == CREDENTIALS_NAME:
                handle = tar.extractfile(member)
                blob = handle.read() if handle else b""
                credentials_sha = hashlib.sha256(blob).hexdigest()
                try:
                    credentials = json.loads(blob)
                except ValueError:
                    raise BadArchive(path, "its credentials are damaged") from None
            elif volume_member_name(member.name) is None or member.type not in KINDS or (
                    member.islnk() and volume_member_name(member.linkname) is None):
                raise BadArchive(path, f"it holds an unexpected entry {member.name!r}")
            elif under_symlink(member.name, symlinks):
                # Never written by Docker's archive of a real folder; extracted, it would
                # write through the link.
                raise BadArchive(path, f"{member.name!r} lies under a symbolic link")
            else:
                if member.issym():
                    symlinks.add(member.name)
                digest = None
                if member.isreg():
                    sha = hashlib.sha256()
                    handle = tar.extractfile(member)
                    while handle is not None and (chunk := handle.read(CHUNK)):
                        sha.update(chunk)
                    digest = sha.hexdigest()
                seen[member.name] = entry_of(member, digest)
        if first:
            raise BadArchive(path, "it is empty")
        reader.read_to_end()
    if not isinstance(manifest, dict):
        raise BadArchive(path, "it has no manifest (truncated?)")
    check_header(path, manifest)
    expected = manifest.get("entries")
    if not isinstance(expected, dict) or not isinstance(manifest.get("volumes"), dict):
        raise BadArchive(path, "its manifest is damaged")
    for name in sorted(set(expected) | set(seen)):
        if expected.get(name) != seen.get(name):
            problem = "missing" if name not in seen else "not in the manifest" \
                if name not in expected else "different from the manifest"
            raise BadArchive(path, f"{name} is {problem} (corrupted or changed)")
    if manifest.get("credentials_sha256") != credentials_sha:
        raise BadArchive(path, "its credentials do not match the manifest")
    if credentials is not None and not (isinstance(credentials, dict) and all(
            isinstance(credentials.get(k), str) and credentials[k]
            for k in ("username", "password"))):
        raise BadArchive(path, "its credentials are damaged")
    return VerifiedBackup(manifest, credentials)


def volume_stream(path: str, on_bytes: Callable[[int], None] = lambda n: None
                  ) -> Iterator[bytes]:
    """The volumes of a verified archive as one tar stream for Docker's archive API,
    entries named ``<role>/…`` (to be extracted where the volumes are mounted as
    ``<role>``). A generator: nothing is buffered beyond one chunk."""
    with open(path, "rb") as raw:
        reader = CompressedReader(path, raw, lambda n: None)
        for tar, member in _members(path, reader):
            if volume_member_name(member.name) is None:
                continue
            member.name = member.name.split("/", 1)[1]
            if member.islnk():
                member.linkname = member.linkname.split("/", 1)[1]
            member.pax_headers = {k: v for k, v in member.pax_headers.items()
                                  if k not in ("path", "linkpath")}
            yield member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            if member.isreg():
                handle = tar.extractfile(member)
                while handle is not None and (chunk := handle.read(CHUNK)):
                    on_bytes(len(chunk))
                    yield chunk
                if member.size % BLOCK:
                    yield tarfile.NUL * (BLOCK - member.size % BLOCK)
        yield tarfile.NUL * (2 * BLOCK)
