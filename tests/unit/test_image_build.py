"""The sandbox image: its tag, what a build depends on, and build vs reuse vs pull."""

from __future__ import annotations

import io
import tarfile
from importlib import resources
from pathlib import Path

import pytest

from opencode_cloud import __version__
from opencode_cloud.config.model import Config
from opencode_cloud.image import build
from tests.unit.fake_docker import FakeClient, RecordingReporter, api_error

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(("image", "ref"), [
    ("opencode-cloud-sandbox", "opencode-cloud-sandbox:1.18.33"),
    ("registry.example:5000/team/sandbox", "registry.example:5000/team/sandbox:1.18.33"),
    ("team/sandbox:stable", "team/sandbox:stable"),
    ("sandbox@sha256:abcd", "sandbox@sha256:abcd"),
])
def test_image_ref_adds_the_opencode_version_unless_a_tag_is_given(image: str, ref: str) -> None:
    assert build.image_ref(Config(image=image)) == ref


def test_build_inputs_are_the_packaged_files_and_the_version() -> None:
    inputs = build.build_inputs(Config(opencode_version="1.2.3", extra_ca_certs="none"))
    package = resources.files("opencode_cloud.image")
    assert inputs.files == {"Dockerfile": (package / "Dockerfile").read_bytes(),
                            "entrypoint.sh": (package / "entrypoint.sh").read_bytes(),
                            "extra-ca.crt": b""}
    assert inputs.build_args == {"OPENCODE_VERSION": "1.2.3", "BASE_IMAGE": build.BASE_IMAGE,
                                 "COCKPIT": "0"}  # Cockpit only in the image when enabled


def test_the_digest_changes_exactly_when_an_input_changes(tmp_path: Path) -> None:
    base = build.build_inputs(Config())
    assert len(base.digest) == 32
    assert build.build_inputs(Config()).digest == base.digest
    assert build.build_inputs(Config(memory_limit="1g")).digest == base.digest  # not an input
    assert build.build_inputs(Config(opencode_version="1.0.0")).digest != base.digest
    ca = tmp_path / "ca.pem"
    ca.write_bytes(PEM)
    with_ca = build.build_inputs(Config(extra_ca_certs=str(ca)))
    assert with_ca.files["extra-ca.crt"] == PEM and with_ca.digest != base.digest
    ca.write_bytes(PEM + PEM)
    assert build.build_inputs(Config(extra_ca_certs=str(ca))).digest != with_ca.digest
    edited = build.BuildInputs({**base.files, "entrypoint.sh": b"#!/bin/sh\n"}, base.build_args)
    assert edited.digest != base.digest
    # A file's name is part of it, not only its bytes.
    renamed = build.BuildInputs({"a": b"x"}, {}), build.BuildInputs({"b": b"x"}, {})
    assert renamed[0].digest != renamed[1].digest


def test_extra_ca_that_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(build.ImageError, match=r"extra_ca_certs: cannot read .*missing.pem: No "
                                               r"such file") as e:
        build.build_inputs(Config(extra_ca_certs=str(tmp_path / "missing.pem")))
    assert "occ config set extra_ca_certs" in e.value.hint
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(build.ImageError, match="holds no PEM certificate"):
        build.build_inputs(Config(extra_ca_certs=str(tmp_path / "junk.pem")))


def test_context_tar_holds_every_file_with_its_mode() -> None:
    inputs = build.BuildInputs({"entrypoint.sh": b"#!/bin/sh\n", "Dockerfile": b"FROM x\n",
                                "extra-ca.crt": b""}, {})
    with tarfile.open(fileobj=io.BytesIO(inputs.context_tar())) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["Dockerfile", "entrypoint.sh", "extra-ca.crt"]
        assert [m.mode for m in members] == [0o644, 0o755, 0o644]
        assert tar.extractfile("Dockerfile").read() == b"FROM x\n"
        assert tar.extractfile("extra-ca.crt").read() == b""


def test_a_missing_image_is_built_with_labels_naming_its_inputs(client: FakeClient) -> None:
    reporter = RecordingReporter()
    config = Config()
    image = build.ensure_image(client, config, reporter)
    inputs = build.build_inputs(config)
    [call] = client.api.builds
    assert call["tag"] == "opencode-cloud-sandbox:1.18.33"
    assert call["labels"] == {build.INPUTS_LABEL: inputs.digest,
                              build.OCC_VERSION_LABEL: __version__,
                              build.OPENCODE_VERSION_LABEL: "1.18.33"}
    assert call["buildargs"] == inputs.build_args
    assert call["context"] == inputs.context_tar()
    assert (call["custom_context"], call["pull"], call["decode"]) == (True, False, True)
    assert image is client.images.get("opencode-cloud-sandbox:1.18.33")
    assert reporter.events == [
        ("step", "Building image opencode-cloud-sandbox:1.18.33 (opencode 1.18.33); this "
                 "takes a minute"),
        ("activity", "Step 1/2 : FROM debian"),
        ("detail", " ---> abc"),
        ("detail", "Successfully built abc"),
        ("success", "Built image opencode-cloud-sandbox:1.18.33."),
    ]


def test_an_image_built_from_the_same_inputs_is_reused(client: FakeClient) -> None:
    first = build.ensure_image(client, Config(), RecordingReporter())
    assert build.ensure_image(client, Config(), RecordingReporter()) is first
    assert len(client.api.builds) == 1
    assert client.api.pulls == []


def test_an_image_from_other_inputs_is_rebuilt(client: FakeClient) -> None:
    stale = client.images.make("opencode-cloud-sandbox:1.18.33",
                               labels={build.INPUTS_LABEL: "0" * 32})
    unlabelled = client.images.make("mine:1")
    fresh = build.ensure_image(client, Config(), RecordingReporter())
    assert fresh is not stale and len(client.api.builds) == 1
    assert build.ensure_image(client, Config(image="mine:1"), RecordingReporter()) \
        is not unlabelled
    assert len(client.api.builds) == 2


def test_prebuilt_images_are_pulled_only_when_absent_or_refreshed(client: FakeClient) -> None:
    config = Config(image_source="prebuilt", image="ghcr.io/x/sandbox")
    reporter = RecordingReporter()
    pulled = build.ensure_image(client, config, reporter)
    assert client.api.pulls == ["ghcr.io/x/sandbox:1.18.33"]
    assert reporter.of("step") == ["Pulling ghcr.io/x/sandbox:1.18.33"]
    assert reporter.of("success") == ["Pulled ghcr.io/x/sandbox:1.18.33."]
    assert build.ensure_image(client, config, reporter) is pulled
    assert len(client.api.pulls) == 1
    build.ensure_image(client, config, reporter, refresh=True)
    assert len(client.api.pulls) == 2
    assert client.api.builds == []


def test_pull_progress_adds_up_the_layers(client: FakeClient) -> None:
    client.api.pull_stream = [
        {"status": "Pulling fs layer", "id": "a"},
        {"status": "Downloading", "id": "a", "progressDetail": {"current": 10, "total": 100}},
        {"status": "Downloading", "id": "b", "progressDetail": {"current": 5, "total": 50}},
        {"status": "Downloading", "id": "c", "progressDetail": {}},  # size unknown yet
        {"status": "Downloading", "id": "a", "progressDetail": {"current": 100, "total": 100}},
        {"status": "Extracting", "id": "a", "progressDetail": {"current": 1, "total": 100}},
        {"status": "Pull complete", "id": "a"},
    ]
    reporter = RecordingReporter()
    build.pull_image(client, "x:1", reporter)
    assert reporter.of("progress") == [("Pulling x:1", 10, 100), ("Pulling x:1", 15, 150),
                                       ("Pulling x:1", 105, 150)]


def test_pull_failures(client: FakeClient) -> None:
    client.api.pull_stream = [{"status": "Pulling"}, {"error": "manifest unknown"}]
    with pytest.raises(build.ImageError, match="pulling x:1 failed: manifest unknown"):
        build.pull_image(client, "x:1", RecordingReporter())
    client.api.pull_stream = api_error("pull access denied for x")
    with pytest.raises(build.ImageError, match="pulling x:1 failed: pull access denied") as e:
        build.pull_image(client, "x:1", RecordingReporter())
    assert "logged in" in e.value.hint


def test_a_failed_build_names_its_last_lines(client: FakeClient) -> None:
    lines = [{"stream": f"line {n}\n"} for n in range(30)]
    client.api.build_stream = [*lines, {"stream": "Step 9/9 : RUN false\n"},
                               {"error": "The command '/bin/sh -c false' returned a non-zero "
                                         "code: 1\n"}]
    reporter = RecordingReporter()
    with pytest.raises(build.ImageError) as e:
        build.build_image(client, "x:1", build.build_inputs(Config()), Config(), reporter)
    assert e.value.message == ("the image build failed: The command '/bin/sh -c false' "
                               "returned a non-zero code: 1")
    shown = e.value.hint.splitlines()
    assert shown[0] == "Last lines of the build:"
    assert shown[1:] == [f"line {n}" for n in range(6, 30)] + ["Step 9/9 : RUN false"]
    assert reporter.of("success") == []
    assert reporter.of("activity") == ["Step 9/9 : RUN false"]


def test_a_missing_base_image_gets_its_own_hint(client: FakeClient) -> None:
    client.api.build_stream = [{"error": "pull access denied for debian, repository does not "
                                         "exist"}]
    with pytest.raises(build.ImageError) as e:
        build.build_image(client, "x:1", build.build_inputs(Config()), Config(),
                          RecordingReporter())
    assert "The base image debian:bookworm-slim is missing on that Engine" in e.value.hint
    client.api.build_stream = api_error("debian:bookworm-slim not found")
    with pytest.raises(build.ImageError, match="the image build failed: debian:bookworm-slim "
                                               "not found") as e:
        build.build_image(client, "x:1", build.build_inputs(Config()), Config(),
                          RecordingReporter())
    assert "docker import" in e.value.hint
    client.api.build_stream = api_error("no space left on device")
    with pytest.raises(build.ImageError) as e:
        build.build_image(client, "x:1", build.build_inputs(Config()), Config(),
                          RecordingReporter())
    assert e.value.hint is None


# -- image_packages ---------------------------------------------------------------------
def test_image_packages_are_a_build_input_and_absent_when_empty() -> None:
    plain = build.build_inputs(Config())
    assert "EXTRA_PACKAGES" not in plain.build_args  # the default image keeps its digest
    extra = build.build_inputs(Config(image_packages=["python3", "build-essential"]))
    assert extra.build_args["EXTRA_PACKAGES"] == "python3 build-essential"
    assert extra.digest != plain.digest


@pytest.mark.parametrize("bad", ["Python3", "p", "-y", "a b", "python3;id", "$(id)", "pkg\n",
                                 "café", "--allow-unauthenticated", ""])
def test_image_packages_must_be_debian_package_names(bad: str) -> None:
    import msgspec

    with pytest.raises((msgspec.ValidationError, ValueError), match="image_packages"):
        msgspec.convert({"image_packages": [bad]}, Config)


def test_image_packages_twice_is_refused() -> None:
    import msgspec

    with pytest.raises((msgspec.ValidationError, ValueError), match="twice"):
        msgspec.convert({"image_packages": ["git", "git"]}, Config)


def test_a_missing_package_is_named() -> None:
    lines = ["Step 18/30 : RUN if ...", "Reading package lists...",
             "E: Unable to locate package pyhton3", "E: Unable to locate package nope"]
    hint = build.missing_packages_hint(lines, ["pyhton3", "git"])
    assert "Debian has no package 'pyhton3' (image_packages)" in hint
    assert build.missing_packages_hint(["Step 3/30", "E: 404 Not Found"], ["git"]) == ""
