"""image_dockerfile: the final stage must come from occ's image; the folder is the context;
everything is checked before a build."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.image.custom import DockerfileError, final_base, read_custom
from opencode_cloud.image.refs import service_ref

pytestmark = pytest.mark.unit

IMAGE = "opencode-cloud-sandbox"


@pytest.mark.parametrize(("text", "base"), [
    ("ARG OCC_SANDBOX\nFROM ${OCC_SANDBOX}\nRUN true\n", "${OCC_SANDBOX}"),
    ("# syntax note\nARG OCC_SANDBOX\nfrom $OCC_SANDBOX as tools\n", "$OCC_SANDBOX"),
    ("FROM debian:bookworm AS build\nRUN make\nARG OCC_SANDBOX\nFROM ${OCC_SANDBOX}\n"
     "COPY --from=build /out /opt\n", "${OCC_SANDBOX}"),
    ("ARG OCC_SANDBOX\nFROM ${OCC_SANDBOX} AS base\nRUN \\\n  apt-get update\nFROM base\n",
     "${OCC_SANDBOX}"),  # a stage of a stage: followed back to its base
    ("FROM --platform=linux/amd64 opencode-cloud-sandbox:1.18.33\n",
     "opencode-cloud-sandbox:1.18.33"),
])
def test_the_final_stage_base_is_found(text: str, base: str) -> None:
    assert final_base(text) == base


def write(tmp_path: Path, text: str, name: str = "Dockerfile") -> Path:
    folder = tmp_path / "tools"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


@pytest.mark.parametrize("text", [
    "ARG OCC_SANDBOX\nFROM ${OCC_SANDBOX}\n",
    "FROM opencode-cloud-sandbox\n",
    "FROM opencode-cloud-sandbox:1.2.3\n",
    "FROM opencode-cloud-sandbox@sha256:" + "a" * 64 + "\n",
])
def test_occs_image_is_accepted(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    (path.parent / "hello.txt").write_text("hi")
    custom = read_custom(str(path), IMAGE)
    assert sorted(custom.files) == ["Dockerfile", "hello.txt"]
    assert custom.digest("sha256:base1") != custom.digest("sha256:base2")  # a new base rebuilds


@pytest.mark.parametrize(("text", "message"), [
    ("FROM debian:bookworm\n", "builds FROM debian:bookworm, not from occ's sandbox image"),
    ("ARG OCC_SANDBOX\nFROM ${OCC_SANDBOX} AS a\nFROM python:3.12\n", "FROM python:3.12"),
    ("FROM opencode-cloud-sandbox-evil\n", "not from occ's sandbox image"),
    ("FROM other/opencode-cloud-sandbox\n", "not from occ's sandbox image"),
    ("RUN true\n", "has no FROM instruction"),
    ("", "has no FROM instruction"),
])
def test_other_bases_are_refused_with_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")) as caught:
        read_custom(str(write(tmp_path, text)), IMAGE)
    assert "FROM ${OCC_SANDBOX}" in caught.value.hint or "FROM" in caught.value.message


def test_a_missing_file_and_a_huge_folder_are_refused(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DockerfileError, match="cannot read"):
        read_custom(str(tmp_path / "nope" / "Dockerfile"), IMAGE)
    path = write(tmp_path, "FROM opencode-cloud-sandbox\n")
    from opencode_cloud.image import custom

    monkeypatch.setattr(custom, "MAX_CONTEXT_BYTES", 10)
    (path.parent / "big.bin").write_bytes(b"x" * 100)
    with pytest.raises(DockerfileError, match="too big to be the build context"):
        read_custom(str(path), IMAGE)


def test_the_service_runs_a_tag_of_its_own_with_a_dockerfile() -> None:
    assert service_ref(Config()) == "opencode-cloud-sandbox:1.18.33"
    assert service_ref(Config(image_dockerfile="/x/Dockerfile")) == \
        "opencode-cloud-sandbox:1.18.33-custom"
    assert service_ref(Config(image="reg:5000/a/b@sha256:" + "a" * 64,
                              image_dockerfile="/x")) == "reg:5000/a/b:custom"
