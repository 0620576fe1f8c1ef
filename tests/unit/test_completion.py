"""Shell completion through Click's protocol, as bash calls it: host names, groups, config
keys and enum values are offered, and nothing connects anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config" / "opencode-cloud"
    config.mkdir(parents=True)
    (config / "hosts.json").write_text(json.dumps({"version": 1, "default_host": None, "hosts": {
        "web1": {"hostname": "192.0.2.1", "groups": ["prod"]},
        "web2": {"hostname": "192.0.2.2", "groups": ["prod", "eu"]},
        "lab": {"hostname": "192.0.2.3"}}}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ssh", "docker"):  # a completion that tried to connect would leave a mark
        (bin_dir / tool).write_text(f"#!/bin/sh\ntouch {tmp_path}/CONNECTED\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("OCC_", "XDG_"))},
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}


def complete(env: dict[str, str], line: str) -> list[str]:
    words = line.split(" ")
    answer = subprocess.run([sys.executable, "-m", "opencode_cloud"], capture_output=True,
                            text=True, timeout=30,
                            env={**env, "_OCC_COMPLETE": "bash_complete",
                                 "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)})
    assert answer.returncode == 0, answer.stderr
    return [row.split(",", 1)[1] for row in answer.stdout.splitlines() if "," in row]


@pytest.mark.parametrize(("line", "expected"), [
    ("occ status --host ", ["local", "lab", "web1", "web2"]),
    ("occ logs --host w", ["web1", "web2"]),
    ("occ restart --group ", ["eu", "prod"]),
    ("occ host show ", ["lab", "web1", "web2"]),
    ("occ host test w", ["web1", "web2"]),
    ("occ host default ", ["lab", "web1", "web2"]),
    ("occ config get opencode_", ["opencode_web_port", "opencode_version"]),
    ("occ config set image_source ", ["build", "prebuilt", "ship"]),
    ("occ config set watchdog ", ["true", "false"]),
    ("occ config set opencode_web_port ", []),
    ("occ sta", ["start", "status"]),
])
def test_completion_offers_names_keys_and_values(env, line, expected, tmp_path) -> None:
    offered = complete(env, line)
    assert sorted(offered) == sorted(expected)
    assert not (tmp_path / "CONNECTED").exists()


def test_completion_scripts_for_each_shell_and_a_clear_error_for_others(env) -> None:
    for shell, marker in (("bash", "complete -o"), ("zsh", "#compdef occ"),
                          ("fish", "complete --no-files --command occ")):
        r = subprocess.run([sys.executable, "-m", "opencode_cloud", "completion", shell],
                           env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and marker in r.stdout, (shell, r.stdout[:200])
    r = subprocess.run([sys.executable, "-m", "opencode_cloud", "completion", "tcsh"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "'tcsh' is not one of" in r.stderr


def test_a_broken_hosts_json_completes_nothing_and_does_not_fail(env, tmp_path) -> None:
    (tmp_path / "config" / "opencode-cloud" / "hosts.json").write_text("{not json")
    assert complete(env, "occ status --host ") == ["local"]
