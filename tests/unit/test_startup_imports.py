"""The commands people type most must not pay for the Docker SDK (or Rich) at start-up."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["config", "show"], ["config", "get", "opencode_web_port"]]
)
def test_light_commands_do_not_import_docker(occ, args):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "opencode_cloud", *args],
        env=occ.env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    imported = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "opencode_cloud" in imported  # the measurement itself works
    assert "docker" not in imported
    assert "rich" not in imported
