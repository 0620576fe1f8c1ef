"""Archives shaped as ``docker save`` writes them (Docker 20.10's layout: one folder per
layer with its ``layer.tar``, the config as ``<digest>.json``, ``manifest.json``,
``repositories``), for unit tests of what ship does with them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile


def diff_id(layer: bytes) -> str:
    return "sha256:" + hashlib.sha256(layer).hexdigest()


def layer_tar(*files: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def saved_archive(layers: list[bytes], *, ref: str = "sandbox:1", arch: str = "amd64",
                  labels: dict | None = None, folder_names: list[str] | None = None,
                  tar_format: int = tarfile.GNU_FORMAT) -> bytes:
    """A docker save archive of one image made of ``layers`` (bottom first). A layer equal
    to an earlier one is written as a symbolic link to the first copy, as Docker does.
    ``folder_names`` overrides the layer folders' names (long ones need extended headers)."""
    ids = [diff_id(layer) for layer in layers]
    config = json.dumps({"architecture": arch, "os": "linux",
                         "config": {"Labels": labels or {}},
                         "rootfs": {"type": "layers", "diff_ids": ids}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    folders = folder_names or [hashlib.sha256(f"{i}{d}".encode()).hexdigest()
                               for i, d in enumerate(ids)]
    out = io.BytesIO()
    first_copy: dict[str, str] = {}
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for folder, layer, layer_id in zip(folders, layers, ids, strict=True):
            directory = tarfile.TarInfo(folder)
            directory.type = tarfile.DIRTYPE
            tar.addfile(directory)
            add(f"{folder}/VERSION", b"1.0")
            add(f"{folder}/json", b"{}")
            if layer_id in first_copy:
                link = tarfile.TarInfo(f"{folder}/layer.tar")
                link.type = tarfile.SYMTYPE
                link.linkname = f"../{first_copy[layer_id]}/layer.tar"
                tar.addfile(link)
            else:
                first_copy[layer_id] = folder
                add(f"{folder}/layer.tar", layer)
        add(config_name, config)
        add("manifest.json", json.dumps([{
            "Config": config_name, "RepoTags": [ref],
            "Layers": [f"{folder}/layer.tar" for folder in folders]}]).encode())
        add("repositories", b"{}")
    return out.getvalue()


def archive_members(data: bytes) -> dict[str, bytes | str]:
    """name -> file bytes (or "-> target" for a link) of an uncompressed archive."""
    found: dict[str, bytes | str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for member in tar:
            if member.isreg():
                found[member.name] = tar.extractfile(member).read()
            elif member.issym():
                found[member.name] = f"-> {member.linkname}"
            else:
                found[member.name] = "dir"
    return found


def image_of_archive(data: bytes) -> tuple[dict, list[str], dict[str, bytes | str]]:
    """(config, layer paths of the manifest, members) of an uncompressed archive."""
    members = archive_members(data)
    [entry] = json.loads(members["manifest.json"])
    return json.loads(members[entry["Config"]]), entry["Layers"], members
