"""`occ setup` choosing "new": a real pseudo-terminal adds a lab host through `occ host add`
(SSH checked for real), and the service starts on that host with the answers as the host's
own settings; the host becomes the default target.

The lab host h1 builds or reuses the sandbox image itself (it usually has it from the
remote-service tests). The test's own OCC_INSTANCE is removed from h1 at the end.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect
from lab_occ import OccRun

if TYPE_CHECKING:
    from conftest import Lab

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
NAME = "setup-h1"
PORT = 3817  # in h1's own network namespace


def test_setup_adds_a_new_host_and_starts_opencode_there(occ: OccRun, lab: Lab,
                                                         lab_docker) -> None:
    occ.env["OCC_INSTANCE"] = instance = f"occsetup-{uuid.uuid4().hex[:6]}"
    if Path(CA_BUNDLE).exists():  # the same build inputs as the other lab tests' image
        assert occ("config", "set", "extra_ca_certs", CA_BUNDLE).returncode == 0
    child = pexpect.spawn(sys.executable, ["-m", "opencode_cloud", "setup"],
                          env={**occ.env, "NO_COLOR": "1"}, timeout=120, encoding="utf-8",
                          dimensions=(50, 200))
    try:
        child.expect(r"Run on \[local\]: ")
        child.sendline("new")
        child.expect(r"Name for the host .*: ")
        child.sendline(NAME)
        child.expect(r"Its address .*: ")
        child.sendline(lab.hosts["h1"].address)
        child.expect(r"SSH user .*: ")
        child.sendline(lab.user)
        child.expect(r"SSH port .*: ")
        child.sendline("")
        child.expect(r"Private key file .*: ")
        child.sendline(lab.keys.plain)
        child.expect(rf"\[{NAME}\] SSH: ok")  # occ host add checked it over SSH
        child.expect(f"Added host '{NAME}'")
        child.expect(f"Commands now act on {NAME} by default")
        child.expect(r"Port of the web UI \[3000\]: ")
        child.sendline(str(PORT))
        child.expect(r"\[127\.0\.0\.1\]: ")
        child.sendline("")
        child.expect(r"\[y/N\]: ")
        child.sendline("n")
        child.expect(r"empty: done\): ")
        child.sendline("")
        child.expect(pexpect.EOF, timeout=900)
        child.close()
        output = child.before
        assert child.exitstatus == 0, output
        assert f"[{NAME}] URL:" in output and f"127.0.0.1:{PORT}" in output
        assert f"Log in: run 'occ open --host {NAME}'" in output

        hosts = occ.hosts()
        assert hosts["default_host"] == NAME
        assert hosts["hosts"][NAME]["settings"] == {"opencode_web_port": PORT}
        report = json.loads(occ("status", "--json").stdout)  # the default host now
        assert report["host"] == NAME
        assert report["state"] == "running" and report["health"] == "healthy"
        container = lab_docker("h1").containers.get(f"{instance}-sandbox")
        bindings = container.attrs["HostConfig"]["PortBindings"]["3000/tcp"][0]
        assert bindings == {"HostIp": "127.0.0.1", "HostPort": str(PORT)}
    finally:
        if child.isalive():
            child.terminate(force=True)
        occ("reset", "--volumes", "--force", "--host", NAME, timeout=120)
