"""Telling a passphrase-protected key from a plain one (ssh's own error does not)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from opencode_cloud.ssh.keys import key_file_is_encrypted, key_is_encrypted

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("fmt", ["RFC4716", "PEM"])
def test_real_keys(tmp_path: Path, fmt: str) -> None:
    # Never a skip: scripts/test installs openssh-client, so a missing one is a failure.
    assert shutil.which("ssh-keygen"), "needs ssh-keygen (scripts/test installs openssh-client)"
    kind = "ed25519" if fmt == "RFC4716" else "ecdsa"
    for name, passphrase in (("plain", ""), ("locked", "secret")):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-m", fmt, "-N", passphrase,
                        "-f", str(tmp_path / name)], check=True, timeout=30)
    assert not key_file_is_encrypted(tmp_path / "plain")
    assert key_file_is_encrypted(tmp_path / "locked")


def test_not_a_key() -> None:
    assert not key_is_encrypted("hello")
    assert not key_is_encrypted("-----BEGIN OPENSSH PRIVATE KEY-----\n!!!\n-----END")
    assert not key_file_is_encrypted("/nonexistent/key")
