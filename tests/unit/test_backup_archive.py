"""The backup archive format (storage/backup_archive.py): what it writes, and that a
corrupted byte, a cut, a random or foreign file and one from a newer occ are refused."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from opencode_cloud.errors import OccError
from opencode_cloud.storage import backup_archive as ba
from opencode_cloud.storage.backup_file import output_file

pytestmark = pytest.mark.unit

LOGIN = {"username": "opencode", "password": "s3cret-password"}


def docker_tar(role: str, files: dict[str, bytes], link: bool = False) -> io.BytesIO:
    """What Docker's archive API gives for a volume mounted at .../<role>."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        root = tarfile.TarInfo(role)
        root.type, root.mode, root.uid, root.gid = tarfile.DIRTYPE, 0o755, 1000, 1000
        tar.addfile(root)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{role}/{name}")
            info.size, info.uid, info.gid, info.mode = len(data), 1000, 1000, 0o640
            tar.addfile(info, io.BytesIO(data))
        if link:
            sym = tarfile.TarInfo(f"{role}/latest")
            sym.type, sym.linkname = tarfile.SYMTYPE, "a.txt"
            tar.addfile(sym)
            hard = tarfile.TarInfo(f"{role}/hard")
            hard.type, hard.linkname = tarfile.LNKTYPE, f"{role}/a.txt"
            tar.addfile(hard)
            dev = tarfile.TarInfo(f"{role}/disk")
            dev.type = tarfile.BLKTYPE
            tar.addfile(dev)
    out.seek(0)
    return out


WORKSPACE = {"a.txt": b"hello\n", "deep/" + "x" * 150 + ".bin": os.urandom(70_000),
             "empty": b""}


def write_backup(path: Path, header: dict | None = None) -> dict:
    with output_file(path, force=False) as sink, \
            ba.ArchiveWriter(sink, header or ba.header("h1", "opencode-cloud")) as writer:
        writer.add_volume("workspace", docker_tar("workspace", WORKSPACE, link=True))
        writer.add_volume("data", docker_tar("data", {"opencode.db": b"sqlite" * 1000}))
        return writer.finish(LOGIN, {"opencode_version": "1.18.33"})


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    path = tmp_path / "b.tar.zst"
    write_backup(path)
    return path


def test_a_backup_verifies_and_its_manifest_names_every_file(backup: Path) -> None:
    checked = ba.verify(str(backup))
    entries = checked.manifest["entries"]
    assert checked.credentials == LOGIN
    assert checked.manifest["opencode_version"] == "1.18.33"
    assert checked.manifest["occ_version"]
    import hashlib

    for name, data in WORKSPACE.items():
        assert entries[f"volumes/workspace/{name}"] == {
            "type": "file", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert entries["volumes/workspace/latest"] == {"type": "symlink", "size": 0,
                                                   "link": "a.txt"}
    assert entries["volumes/workspace/hard"]["link"] == "volumes/workspace/a.txt"
    assert "volumes/workspace/disk" not in entries  # device nodes are never archived
    assert checked.manifest["volumes"]["workspace"]["files"] == 3
    assert checked.total_bytes == sum(map(len, WORKSPACE.values())) + 6000
    assert oct(backup.stat().st_mode & 0o777) == "0o600"  # it holds the login


def test_the_restore_stream_gives_the_volumes_back_as_they_were(backup: Path) -> None:
    stream = io.BytesIO(b"".join(ba.volume_stream(str(backup))))
    with tarfile.open(fileobj=stream) as tar:
        names = tar.getnames()
        assert names[0] == "workspace"
        for name, data in WORKSPACE.items():
            member = tar.getmember(f"workspace/{name}")
            assert (member.uid, member.mode) == (1000, 0o640)
            assert tar.extractfile(member).read() == data
        assert tar.getmember("workspace/hard").linkname == "workspace/a.txt"
        assert tar.getmember("workspace/latest").linkname == "a.txt"
        assert tar.extractfile("data/opencode.db").read() == b"sqlite" * 1000
        assert not any(n.startswith(("volumes", "manifest", "credentials", "occ-")) for n in names)


def refused(path: Path, words: str) -> str:
    with pytest.raises(ba.BadArchive) as caught:
        ba.verify(str(path))
    assert words in caught.value.message, caught.value.message
    assert "Nothing was changed" in caught.value.hint
    return caught.value.message


def plain_tar_of(backup: Path) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(backup.open("rb")).read()


def rewritten(backup: Path, change) -> bytes:
    """The backup's tar with ``change(member, extra)`` applied to each entry; ``extra`` is
    a list the change may append ``(TarInfo, bytes)`` to, written after that entry."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(plain_tar_of(backup)), mode="r") as src, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            data = src.extractfile(member) if member.isreg() else None
            extra: list = []
            dst.addfile(change(member, extra), data)
            for info, payload in extra:
                dst.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def recompress(path: Path, data: bytes) -> None:
    path.write_bytes(zstandard.ZstdCompressor().compress(data))


def test_a_corrupted_byte_anywhere_is_refused(backup: Path, tmp_path: Path) -> None:
    data = bytearray(backup.read_bytes())
    for offset in (len(data) // 3, len(data) // 2, len(data) - 2):
        damaged = tmp_path / f"damaged-{offset}"
        copy = bytearray(data)
        copy[offset] ^= 0x01
        damaged.write_bytes(bytes(copy))
        with pytest.raises(ba.BadArchive):
            ba.verify(str(damaged))


def test_a_changed_file_inside_an_intact_frame_is_refused(backup: Path, tmp_path: Path) -> None:
    plain = bytearray(plain_tar_of(backup))
    at = plain.index(b"hello\n")
    plain[at] = ord("j")
    recompress(tmp_path / "changed", bytes(plain))
    refused(tmp_path / "changed", "volumes/workspace/a.txt is different from the manifest")


def test_a_truncated_file_is_refused_wherever_it_is_cut(backup: Path, tmp_path: Path) -> None:
    data = backup.read_bytes()
    for keep in (10, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut-{keep}"
        cut.write_bytes(data[:keep])
        with pytest.raises(ba.BadArchive):
            ba.verify(str(cut))
    cut = tmp_path / "cut-end"
    cut.write_bytes(data[:-4])  # only zstd's checksum is missing: the tar is whole
    refused(cut, "truncated")


def test_a_tar_without_its_manifest_is_refused(backup: Path, tmp_path: Path) -> None:
    plain = plain_tar_of(backup)
    at = plain.index(ba.MANIFEST_NAME.encode())
    recompress(tmp_path / "nomanifest", plain[:at - 0] + b"\0" * 1024)
    with pytest.raises(ba.BadArchive):
        ba.verify(str(tmp_path / "nomanifest"))


def test_random_and_foreign_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "random").write_bytes(os.urandom(100_000))
    refused(tmp_path / "random", "not a zstd-compressed occ backup")
    (tmp_path / "random.zst").write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(100_000))
    with pytest.raises(ba.BadArchive):
        ba.verify(str(tmp_path / "random.zst"))
    foreign = io.BytesIO()
    with tarfile.open(fileobj=foreign, mode="w") as tar:
        info = tarfile.TarInfo("etc/passwd")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"root"))
    recompress(tmp_path / "foreign.tar.zst", foreign.getvalue())
    refused(tmp_path / "foreign.tar.zst", "not made by occ backup")


def test_an_archive_from_a_newer_occ_is_refused(tmp_path: Path) -> None:
    for change in ({"occ_version": "99.0.0"}, {"format": ba.FORMAT + 1}):
        path = tmp_path / f"newer-{len(change)}-{next(iter(change))}"
        write_backup(path, {**ba.header("h1", "opencode-cloud"), **change})
        message = refused(path, "newer than this occ")
        with pytest.raises(ba.BadArchive) as caught:
            ba.verify(str(path))
        assert "Update occ" in caught.value.hint, message


def test_an_entry_that_could_leave_its_volume_is_refused(backup: Path, tmp_path: Path) -> None:
    for name in ("volumes/workspace/../../etc/x", "volumes/other/x", "/etc/passwd"):
        def rename(member, dst, name=name):
            if member.name == "volumes/workspace/a.txt":
                member.name = name
            return member
        bad = tmp_path / "escape.tar.zst"
        recompress(bad, rewritten(backup, rename))
        with pytest.raises(ba.BadArchive):
            ba.verify(str(bad))


def test_member_names_stay_inside_their_volume() -> None:
    assert ba.volume_member_name("volumes/workspace/a/b") == ("workspace", "a/b")
    assert ba.volume_member_name("volumes/data") == ("data", "")
    for bad in ("volumes/workspace/../x", "volumes/cache/x", "x/workspace/a",
                "volumes/workspace//a", "volumes/workspace/./a", "volumes"):
        assert ba.volume_member_name(bad) is None


def test_the_output_file_is_refused_when_it_exists_and_never_left_half(tmp_path: Path) -> None:
    existing = tmp_path / "old.tar.zst"
    existing.write_bytes(b"keep me")
    with pytest.raises(OccError, match="exists already"):
        write_backup(existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(RuntimeError), output_file(existing, force=True) as sink:
        sink.write(b"partial")
        raise RuntimeError("the connection dropped")
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.tar.zst"]
    with pytest.raises(OccError, match="does not exist"):
        write_backup(tmp_path / "nowhere" / "b.tar.zst")


def test_a_full_disk_removes_the_partial_file(tmp_path: Path) -> None:
    import resource
    import subprocess
    import sys

    script = ("import sys; from pathlib import Path; from opencode_cloud.storage.backup_file"
              " import output_file\nwith output_file(Path(sys.argv[1]), False) as s:\n"
              "    for _ in range(100): s.write(b'x' * 65536)\n")
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # noqa: E731
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "b.tar.zst")],
                       capture_output=True, text=True, preexec_fn=limit, timeout=60)
    assert r.returncode != 0
    assert "the disk filled up" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_manifest_lists_json_that_round_trips(backup: Path) -> None:
    manifest = ba.verify(str(backup)).manifest
    assert json.loads(json.dumps(manifest)) == manifest
    assert "password" not in json.dumps(manifest)


def test_an_entry_under_a_symlink_is_refused(backup: Path, tmp_path: Path) -> None:
    def through_the_link(member, dst):
        if member.name == "volumes/workspace/latest":  # a symlink: one entry after it
            evil = tarfile.TarInfo("volumes/workspace/latest/x")
            evil.size = 1
            dst.append((evil, b"x"))
        return member
    bad = tmp_path / "through-link.tar.zst"
    recompress(bad, rewritten(backup, through_the_link))
    refused(bad, "lies under a symbolic link")
