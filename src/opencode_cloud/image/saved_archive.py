"""A ``docker save`` archive cut into pieces, so that a host is sent only the layers it lacks.

``docker load`` (moby's image/tarexport/load.go) unpacks the archive, reads
``manifest.json`` and the image config, and then, layer by layer, opens a layer's file only
when its Engine lacks that layer *with everything under it* (its chain id). So an archive
without the files of the first K layers loads the same image on an Engine whose layer store
holds those K layers: the base image a host already has, or the layers an update left
unchanged, need not travel again.

Everything here is pure: the index is read from the archive's headers, and the choice of
pieces is a function of the host's layer lists.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

BLOCK = 512  # tar's unit: a member's data is padded to it


@dataclass(frozen=True)
class Piece:
    """Bytes ``[start, end)`` of the archive. ``blob`` names the layer file the piece is
    (None: headers, the image config, the manifest, the archive's end; always sent)."""

    start: int
    end: int
    blob: str | None = None

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class SavedImage:
    """What a host needs to know of an archive: the image's layers (``diff_ids``, bottom
    first), the archive member that holds each (``blobs``, links followed), and the
    archive in pieces that cover it end to end."""

    diff_ids: tuple[str, ...]
    blobs: tuple[str, ...]
    pieces: tuple[Piece, ...]

    @property
    def size(self) -> int:
        return self.pieces[-1].end if self.pieces else 0


def whole(size: int) -> SavedImage:
    """An archive that could not be indexed: one piece, always sent whole."""
    return SavedImage((), (), (Piece(0, size),))


def _normal(name: str) -> str:
    return posixpath.normpath(name.removeprefix("./"))


def _resolve(members: dict[str, tarfile.TarInfo], name: str) -> tarfile.TarInfo:
    """The member holding ``name``'s bytes: docker save writes a layer seen twice as a
    link to its first copy."""
    for _ in range(16):
        member = members.get(name)
        if member is None:
            raise ValueError(f"the archive has no member {name!r}")
        if member.issym():
            name = _normal(posixpath.join(posixpath.dirname(name), member.linkname))
        elif member.islnk():
            name = _normal(member.linkname)
        else:
            if not member.isreg():
                raise ValueError(f"{name!r} in the archive is not a file")
            return member
    raise ValueError(f"too many links from {name!r}")


def index_archive(path: Path) -> SavedImage:
    """Index a ``docker save`` archive of one image (a ValueError if it is not one)."""
    try:
        with tarfile.open(path, "r:") as tar:
            listed = tar.getmembers()
            members = {_normal(m.name): m for m in listed}
            manifest = json.load(tar.extractfile(_resolve(members, "manifest.json")))
            if not isinstance(manifest, list) or len(manifest) != 1:
                raise ValueError("manifest.json does not describe exactly one image")
            entry = manifest[0]
            config = json.load(tar.extractfile(_resolve(members, _normal(entry["Config"]))))
            diff_ids = tuple(config["rootfs"]["diff_ids"])
            blobs = tuple(_resolve(members, _normal(p)) for p in entry["Layers"])
            size = path.stat().st_size
    except (tarfile.TarError, KeyError, TypeError, AttributeError, json.JSONDecodeError,
            UnicodeDecodeError) as exc:
        raise ValueError(f"not an image archive docker save writes: {exc}") from None
    if len(blobs) != len(diff_ids):
        raise ValueError(f"the manifest names {len(blobs)} layer files for "
                         f"{len(diff_ids)} layers")
    return SavedImage(diff_ids, tuple(_normal(b.name) for b in blobs),
                      cut(size, {_normal(b.name): b for b in blobs}.values()))


def cut(size: int, blobs: Iterable[tarfile.TarInfo]) -> tuple[Piece, ...]:
    """The archive of ``size`` bytes in pieces: each layer file (its headers, data and
    padding) one piece, and the bytes between them pieces of their own."""
    pieces: list[Piece] = []
    at = 0
    for member in sorted(blobs, key=lambda m: m.offset):
        end = member.offset_data + -(-member.size // BLOCK) * BLOCK
        if member.offset > at:
            pieces.append(Piece(at, member.offset))
        pieces.append(Piece(member.offset, end, _normal(member.name)))
        at = end
    if size > at:
        pieces.append(Piece(at, size))
    return tuple(pieces)


def shared_layers(diff_ids: Sequence[str], host_layers: Iterable[Sequence[str]]) -> int:
    """How many of the image's layers, from the bottom, the host has: the longest run that
    one of the host's images starts with (a layer counts only with all those under it,
    as Docker's chain ids do)."""
    best = 0
    for layers in host_layers:
        n = 0
        for mine, theirs in zip(diff_ids, layers, strict=False):
            if mine != theirs:
                break
            n += 1
        best = max(best, n)
    return best


def pieces_for(saved: SavedImage, have: int) -> list[Piece]:
    """The pieces a host that has the image's first ``have`` layers needs, in order. A
    file left out must hold only layers the host has (one file can stand for two equal
    layers, one it has and one it lacks)."""
    skipped = set(saved.blobs[:have]) - set(saved.blobs[have:])
    return [p for p in saved.pieces if p.blob is None or p.blob not in skipped]
