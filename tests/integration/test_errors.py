"""Errors a person meets read well: one message, a hint, exit 1, no traceback."""

from __future__ import annotations

import os
import socket

import pytest

from tests.integration.conftest import free_port


def assert_clean_error(result, *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") or "\nError: " in result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_docker_not_running(occ, tmp_path):
    occ.env["DOCKER_HOST"] = f"unix://{tmp_path}/no-such.sock"
    assert_clean_error(occ("status"), "Docker is not installed or not running", "Hint:")


def test_permission_denied_on_socket(occ, tmp_path):
    if os.geteuid() == 0:
        pytest.fail(
            "root ignores file permissions: run this test as an unprivileged user, "
            "as scripts/test does"
        )
    path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    path.chmod(0)
    try:
        occ.env["DOCKER_HOST"] = f"unix://{path}"
        assert_clean_error(occ("status"), "permission denied", "docker' group")
    finally:
        listener.close()


def test_port_in_use_names_a_free_port(service):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy = blocker.getsockname()[1]
    try:
        service("config", "set", "opencode_web_port", str(busy), check=True)
        result = service("start")
        assert_clean_error(result, f"port {busy} on 127.0.0.1 is already in use", "is free")
        suggested = int(result.stderr.split("Hint: Port ")[1].split()[0])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", suggested))  # really free
    finally:
        blocker.close()
    service("config", "set", "opencode_web_port", str(free_port()), check=True)


def test_build_failure_shows_the_failing_step(service):
    service("config", "set", "opencode_version", "0.0.1", check=True)
    try:
        result = service("start")
        # npm's own words vary (no such version, or the registry's answer); the failing
        # step and the version asked for are always there.
        assert_clean_error(result, "the image build failed", "npm install", "opencode-ai@")
        assert "(opencode 0.0.1)" in result.stdout + result.stderr
    finally:
        service("config", "set", "opencode_version", "1.18.33", check=True)


def test_remote_host_is_refused_not_ignored(occ):
    assert_clean_error(occ("status", "--host", "prod-1"), "prod-1")
