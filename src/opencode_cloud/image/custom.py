"""``image_dockerfile``: people's own Dockerfile on top of occ's sandbox image.

The Dockerfile's folder is the build context; its final stage must come from occ's image,
written ``ARG OCC_SANDBOX`` + ``FROM ${OCC_SANDBOX}`` (occ passes the exact reference) or
``FROM <image>[:tag]`` with the configured ``image``. Everything here is checked before
anything changes on an Engine. Pure: reads files, builds nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from opencode_cloud.errors import OccError
from opencode_cloud.image.refs import repository

BASE_ARG = "OCC_SANDBOX"
MAX_CONTEXT_BYTES = 64 * 1024 * 1024  # the context travels to the Engine (over SSH too)
MAX_CONTEXT_FILES = 5000
_FROM = re.compile(r"^FROM\s+(?:--\S+\s+)*(?P<base>\S+)(?:\s+AS\s+(?P<alias>\S+))?\s*$",
                   re.IGNORECASE)


class DockerfileError(OccError):
    """image_dockerfile cannot be used as it is."""


def instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, one string each: comments dropped, continued lines
    (a trailing backslash) joined."""
    joined, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append((current + line).strip())
        current = ""
    if current.strip():
        joined.append(current.strip())
    return joined


def final_base(text: str) -> str:
    """What the last stage is built FROM, following stage names back to the first base."""
    aliases: dict[str, str] = {}
    base = None
    for instruction in instructions(text):
        match = _FROM.match(instruction)
        if match is None:
            if instruction.upper().startswith("FROM"):
                raise ValueError(f"cannot read the instruction {instruction!r}")
            continue
        base = match["base"]
        base = aliases.get(base.lower(), base)
        if match["alias"]:
            aliases[match["alias"].lower()] = base
    if base is None:
        raise ValueError("it has no FROM instruction")
    return base


def comes_from_occ(base: str, image: str) -> bool:
    """``base`` (a FROM) is occ's image: the build argument, or the configured repository."""
    if base in (f"${BASE_ARG}", f"${{{BASE_ARG}}}"):
        return True
    return repository(base) == repository(image)


@dataclass(frozen=True)
class CustomInputs:
    """The Dockerfile's folder as a build context, and its digest (with the base image)."""

    dockerfile: Path
    files: dict[str, bytes]

    def digest(self, base_image_id: str) -> str:
        sha = hashlib.sha256(base_image_id.encode() + b"\0")
        for name in sorted(self.files):
            sha.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return sha.hexdigest()[:32]

    def context_tar(self) -> bytes:
        return context_tar(self.files)


def context_tar(files: dict[str, bytes]) -> bytes:
    """A build context as an uncompressed tar, for the Engine's /build endpoint (scripts,
    ``*.sh``, executable)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_custom(setting: str, image: str) -> CustomInputs:
    """The checked inputs of ``image_dockerfile`` (a path on this machine)."""
    path = Path(setting).expanduser()
    fix = "Fix the file, or go back to occ's image: occ config set image_dockerfile ''"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise DockerfileError(f"image_dockerfile: cannot read {path}: {why}", hint=fix) from None
    try:
        base = final_base(text)
    except ValueError as exc:
        raise DockerfileError(f"image_dockerfile: {path}: {exc}", hint=fix) from None
    if not comes_from_occ(base, image):
        raise DockerfileError(
            f"image_dockerfile: {path} builds FROM {base}, not from occ's sandbox image",
            hint=f"Start it with 'ARG {BASE_ARG}' and 'FROM ${{{BASE_ARG}}}': occ passes its "
            "image there, so opencode, the login and the health check stay as occ made them.")
    return CustomInputs(path, _context_files(path))


def _context_files(dockerfile: Path) -> dict[str, bytes]:
    folder = dockerfile.parent
    files: dict[str, bytes] = {}
    total = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(names):
            full = Path(root, name)
            if full.is_symlink() or not full.is_file():
                continue
            relative = full.relative_to(folder).as_posix()
            total += full.stat().st_size
            if total > MAX_CONTEXT_BYTES or len(files) >= MAX_CONTEXT_FILES:
                raise DockerfileError(
                    f"image_dockerfile: the folder {folder} is too big to be the build context "
                    f"(over {MAX_CONTEXT_BYTES // 2**20} MB or {MAX_CONTEXT_FILES} files)",
                    hint="Put the Dockerfile in a folder of its own, with just the files it "
                    "copies.")
            files[relative] = full.read_bytes()
    files["Dockerfile"] = dockerfile.read_bytes()  # whatever the file's own name
    return files
