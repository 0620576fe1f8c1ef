"""The README's two set-up commands on a fresh account: `pip install .` and `occ start`.

This machine's HTTPS goes through a TLS-inspecting proxy, so the image build only works
when the image trusts the proxy's CA. With an empty config (extra_ca_certs defaults to
auto) occ must take this machine's trust store by itself. The account here has nothing
but a new home: no config, no XDG variables, no SSL_CERT_FILE (a login shell on Debian sets
none), so auto falls back to the distribution's bundle.

When the Engine already has an image built from exactly these inputs (another test built
it), occ reuses it; the test then checks that the inputs are those of the machine's trust
store, which is what made that build pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.image.build import INPUTS_LABEL, build_inputs
from opencode_cloud.image.trust import DISTRO_BUNDLES
from tests.integration.conftest import http_status

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONTAINER = "opencode-cloud-sandbox"
DEFAULT_PORT = 3000


def fresh_account_env(home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "TERM", "USER", "LOGNAME", "PIP_FIND_LINKS", "PIP_CERT",
            "PIP_DEFAULT_TIMEOUT", "PIP_DISABLE_PIP_VERSION_CHECK")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    return {**env, "HOME": str(home), "NO_COLOR": "1"}


@pytest.fixture
def fresh_home(tmp_path: Path, docker_client):
    with socket.socket() as probe:  # occ start's default port must be free for this test
        try:
            probe.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            pytest.fail(f"port {DEFAULT_PORT} is in use on this machine: the first-run test "
                        "needs occ's default port")
    names = [c.name for c in docker_client.containers.list(all=True)]
    assert DEFAULT_CONTAINER not in names, "a default occ service already runs on this Engine"
    home = tmp_path / "home"
    home.mkdir()
    yield home
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        docker_client.containers.get(DEFAULT_CONTAINER).remove(force=True)
    for volume in docker_client.volumes.list(filters={"name": "opencode-cloud-"}):
        if volume.name.startswith("opencode-cloud-"):
            volume.remove(force=True)


def test_pip_install_then_occ_start_gives_a_healthy_service(fresh_home: Path, docker_client):
    env = fresh_account_env(fresh_home)
    venv = fresh_home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
                             env=env, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    occ = str(venv / "bin" / "occ")

    started = subprocess.run([occ, "start"], env=env, capture_output=True, text=True,
                             timeout=1200)
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"http://127.0.0.1:{DEFAULT_PORT}" in started.stdout
    status = json.loads(subprocess.run([occ, "status", "--json"], env=env, check=True,
                                       capture_output=True, text=True).stdout)
    assert status["state"] == "running" and status["health"] == "healthy", status
    creds = json.loads(subprocess.run([occ, "credentials", "--json"], env=env, check=True,
                                      capture_output=True, text=True).stdout)
    url = f"http://127.0.0.1:{DEFAULT_PORT}/"
    assert http_status(url, (creds["username"], creds["password"])) == 200

    # The image trusts this machine's store: its inputs hold the distribution's bundle.
    bundle = next(Path(p) for p in DISTRO_BUNDLES if Path(p).exists())
    with_bundle = build_inputs(Config(extra_ca_certs=str(bundle)))
    image = docker_client.containers.get(DEFAULT_CONTAINER).image
    assert image.labels[INPUTS_LABEL] == with_bundle.digest
