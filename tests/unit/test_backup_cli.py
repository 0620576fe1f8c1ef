"""occ backup / occ restore refuse bad input before connecting anywhere: DOCKER_HOST points
at a socket that does not exist, so any attempt to reach an Engine would fail differently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opencode_cloud.service.names import ServiceNames
from opencode_cloud.service.volume_copy import MOUNT_ROOT, helper_kwargs
from tests.conftest import OccRunner

pytestmark = pytest.mark.unit


@pytest.fixture
def nowhere(occ: OccRunner, tmp_path: Path) -> OccRunner:
    occ.env["DOCKER_HOST"] = f"unix://{tmp_path}/no-docker.sock"
    return occ


def test_backup_refuses_an_existing_file_and_keeps_it(nowhere: OccRunner, tmp_path: Path) -> None:
    old = tmp_path / "b.tar.zst"
    old.write_bytes(b"keep")
    r = nowhere("backup", "-o", str(old))
    assert r.returncode == 1
    assert "exists already" in r.stderr and "--force" in r.stderr
    assert old.read_bytes() == b"keep"


def test_backup_refuses_a_missing_folder(nowhere: OccRunner, tmp_path: Path) -> None:
    r = nowhere("backup", "-o", str(tmp_path / "no" / "b.tar.zst"))
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_backup_refuses_an_unwritable_folder(nowhere: OccRunner, tmp_path: Path) -> None:
    # root may write in a 0500 folder; not even root may create a file in sysfs
    locked = Path("/sys") if os.geteuid() == 0 else tmp_path / "locked"
    if locked != Path("/sys"):
        locked.mkdir(mode=0o500)
    r = nowhere("backup", "-o", str(locked / "b.tar.zst"))
    assert r.returncode == 1 and "cannot write in" in r.stderr, r.stderr


def test_restore_refuses_a_random_file_before_connecting(nowhere: OccRunner,
                                                          tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.zst"
    junk.write_bytes(os.urandom(4096))
    r = nowhere("restore", str(junk), "--yes", "--force")
    assert r.returncode == 1
    assert "is not a usable occ backup" in r.stderr and "Nothing was changed" in r.stderr
    assert "Docker" not in r.stderr and "Traceback" not in r.stderr


def test_restore_of_a_missing_file_is_a_clear_error(nowhere: OccRunner, tmp_path: Path) -> None:
    r = nowhere("restore", str(tmp_path / "none.tar.zst"))
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_the_helper_never_runs_and_mounts_each_volume_by_role() -> None:
    kwargs = helper_kwargs(ServiceNames("svc"), "sha256:abc", ["workspace", "data"],
                           writable=False)
    assert kwargs["volumes"] == {
        "svc-workspace": {"bind": f"{MOUNT_ROOT}/workspace", "mode": "ro"},
        "svc-data": {"bind": f"{MOUNT_ROOT}/data", "mode": "ro"}}
    assert kwargs["network_disabled"] and kwargs["entrypoint"] == ["/bin/true"]
    assert kwargs["name"].startswith("svc-volumes-")
    assert "detach" not in kwargs and "ports" not in kwargs
    writable = helper_kwargs(ServiceNames("svc"), "x", ["state"], writable=True)
    assert writable["volumes"]["svc-state"]["mode"] == "rw"


def test_dockers_unhealthy_after_a_pause_is_no_verdict() -> None:
    """Pausing stops Docker's health checks and sets "unhealthy" with no failure at all
    (FailingStreak 0) until the next check, an interval after the unpause."""
    from opencode_cloud.service.health import docker_health

    ok_entry = {"ExitCode": 0, "Output": '{"healthy":true,"version":"1.18.33"}'}
    after_pause = {"State": {"Health": {"Status": "unhealthy", "FailingStreak": 0,
                                        "Log": [ok_entry]}}}
    assert docker_health(after_pause) is None  # status then asks opencode itself
    failing = {"State": {"Health": {"Status": "unhealthy", "FailingStreak": 3, "Log": [
        {"ExitCode": 1, "Output": "connection refused"}]}}}
    assert docker_health(failing).healthy is False
    fine = {"State": {"Health": {"Status": "healthy", "FailingStreak": 0, "Log": [ok_entry]}}}
    assert docker_health(fine).healthy is True


def test_restore_refuses_an_archive_from_a_newer_occ(nowhere: OccRunner, tmp_path: Path) -> None:
    from opencode_cloud.storage.backup_archive import header
    from tests.unit.test_backup_archive import write_backup

    newer = tmp_path / "newer.tar.zst"
    write_backup(newer, {**header("h1", "opencode-cloud"), "occ_version": "99.1.0"})
    r = nowhere("restore", str(newer), "--yes", "--force")
    assert r.returncode == 1
    assert "made by occ 99.1.0, newer than this occ" in r.stderr, r.stderr
    assert "Update occ" in r.stderr and "Traceback" not in r.stderr
