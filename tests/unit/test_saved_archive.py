"""A docker save archive cut into pieces: the index, how many layers a host shares, and the
archive a host is sent without the layer files it has, read back by tarfile."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencode_cloud.image.saved_archive import (
    Piece,
    index_archive,
    pieces_for,
    shared_layers,
    whole,
)
from tests.conftest import tar_of
from tests.saved_images import diff_id, image_of_archive, layer_tar, saved_archive

pytestmark = pytest.mark.unit

BASE = layer_tar(("etc/os-release", b"bookworm\n" * 500))
TOOLS = layer_tar(("usr/bin/git", b"g" * 70_000))
APP = layer_tar(("usr/local/bin/opencode", b"o" * 150_000))
EMPTY = layer_tar()


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "saved.tar"
    path.write_bytes(data)
    return path


def joined(data: bytes, pieces: list[Piece]) -> bytes:
    return b"".join(data[p.start:p.end] for p in pieces)


def test_the_index_names_each_layer_and_covers_the_archive(tmp_path: Path) -> None:
    data = saved_archive([BASE, TOOLS, APP])
    saved = index_archive(written(tmp_path, data))
    assert saved.diff_ids == tuple(diff_id(x) for x in (BASE, TOOLS, APP))
    assert all(b.endswith("/layer.tar") for b in saved.blobs) and len(set(saved.blobs)) == 3
    assert saved.size == len(data)
    assert joined(data, list(saved.pieces)) == data  # end to end, no gap, no overlap
    assert [p.blob for p in saved.pieces if p.blob] == sorted(
        saved.blobs, key=lambda b: data.index(b.encode()))
    for piece in saved.pieces:
        if piece.blob is not None:  # a layer piece is its header and its padded data
            assert piece.start % 512 == 0 and piece.end % 512 == 0


@pytest.mark.parametrize("have", [0, 1, 2, 3])
def test_a_host_is_sent_the_archive_without_the_layer_files_it_has(tmp_path: Path,
                                                                   have: int) -> None:
    data = saved_archive([BASE, TOOLS, APP])
    saved = index_archive(written(tmp_path, data))
    sent = joined(data, pieces_for(saved, have))
    config, layers, members = image_of_archive(sent)
    assert config["rootfs"]["diff_ids"] == list(saved.diff_ids)
    for i, (path, layer) in enumerate(zip(layers, (BASE, TOOLS, APP), strict=True)):
        if i < have:
            assert path not in members  # left out: the host has it
        else:
            assert members[path] == layer  # byte for byte what docker save wrote
    assert len(sent) < len(data) or have == 0
    assert (have == 0) == (sent == data)


def test_a_layer_file_that_stands_for_a_missing_layer_too_is_kept(tmp_path: Path) -> None:
    # Docker writes the second EMPTY as a link to the first; the host has only the first.
    data = saved_archive([BASE, EMPTY, TOOLS, EMPTY])
    saved = index_archive(written(tmp_path, data))
    assert saved.blobs[1] == saved.blobs[3]  # the link is followed
    _, layers, members = image_of_archive(joined(data, pieces_for(saved, 2)))
    assert layers[0] not in members
    assert members[layers[1]] == EMPTY and members[layers[3]].startswith("-> ../")
    assert members[layers[2]] == TOOLS


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_names_in_extended_headers_stay_with_their_member(tmp_path: Path, tar_format) -> None:
    folders = ["f" * 120 + str(i) for i in range(3)]  # too long for a plain tar header
    data = saved_archive([BASE, TOOLS, APP], folder_names=folders, tar_format=tar_format)
    saved = index_archive(written(tmp_path, data))
    _, layers, members = image_of_archive(joined(data, pieces_for(saved, 2)))
    assert layers[0] not in members and layers[1] not in members
    assert members[layers[2]] == APP
    assert {f"{folders[0]}/json", f"{folders[1]}/VERSION"} <= set(members)


@pytest.mark.parametrize("data", [
    b"not a tar at all" * 100,
    tar_of({"hello.txt": b"hi"}),  # a tar, but no manifest
    tar_of({"manifest.json": b"{}"}),  # a manifest of no image
    tar_of({"manifest.json": b'[{"Config": "c.json", "Layers": ["l/layer.tar"]}]',
            "c.json": b'{"rootfs": {"diff_ids": []}}', "l/layer.tar": b""}),  # 1 file, 0 ids
    tar_of({"manifest.json": b'[{"Config": "c.json", "Layers": ["gone/layer.tar"]}]',
            "c.json": b'{"rootfs": {"diff_ids": ["sha256:00"]}}'}),
    tar_of({"manifest.json": b"[{]"}),
])
def test_what_is_not_an_image_archive_is_a_value_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ValueError):
        index_archive(written(tmp_path, data))


def test_an_archive_that_cannot_be_indexed_is_sent_whole() -> None:
    saved = whole(1234)
    assert pieces_for(saved, 0) == [Piece(0, 1234)] and saved.size == 1234


@pytest.mark.parametrize(("host", "have"), [
    ([], 0),
    ([["a"]], 1),
    ([["a", "b", "x"]], 2),
    ([["x", "b", "c"]], 0),  # a layer counts only with those under it (chain ids)
    ([["a"], ["a", "b", "c", "d"]], 3),
    ([["a", "b", "c"]], 3),
    ([["b", "c"], ["a", "x"]], 1),
])
def test_shared_layers_is_the_longest_common_base(host, have) -> None:
    assert shared_layers(["a", "b", "c"], host) == have


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([BASE, TOOLS, APP, EMPTY]), min_size=1, max_size=5),
       st.data())
def test_any_image_and_any_shared_base_give_a_loadable_archive(tmp_path_factory, layers,
                                                              data) -> None:
    raw = saved_archive(layers)
    saved = index_archive(written(tmp_path_factory.mktemp("p"), raw))
    have = data.draw(st.integers(0, len(layers)))
    _, paths, members = image_of_archive(joined(raw, pieces_for(saved, have)))
    needed = {saved.blobs[i] for i in range(have, len(layers))}
    for blob in needed:  # every layer the host lacks can be read from what it is sent
        assert blob in members and not isinstance(members[blob], str)
    for i in range(have):
        if saved.blobs[i] not in needed:
            assert saved.blobs[i] not in members
