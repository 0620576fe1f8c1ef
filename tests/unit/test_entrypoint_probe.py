"""The entrypoint's way of handing curl the password: never on a command line."""

from __future__ import annotations

import subprocess
from importlib import resources

import pytest

ENTRYPOINT = (resources.files("opencode_cloud.image") / "entrypoint.sh").read_text()


def test_the_probe_never_puts_credentials_on_a_command_line():
    probe = ENTRYPOINT[ENTRYPOINT.index("probe() {") : ENTRYPOINT.index("case \"${1")]
    assert " -u " not in probe and "--user" not in probe
    assert "| curl" in probe and "-K -" in probe


def curl_quoted(value: str) -> str:
    function = ENTRYPOINT[ENTRYPOINT.index("curl_quoted() {") : ENTRYPOINT.index("probe() {")]
    result = subprocess.run(
        ["sh", "-c", function + '\ncurl_quoted "$VALUE"'],
        env={"VALUE": value, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("opencode:abc-_09XYZ", '"opencode:abc-_09XYZ"'),
        ('a"b', r'"a\"b"'),
        ("a\\b", r'"a\\b"'),
        ('\\"\\', r'"\\\"\\"'),
        ("sp ace*[x]$HOME", '"sp ace*[x]$HOME"'),
    ],
)
def test_curl_config_quoting_escapes_backslashes_and_quotes(value, quoted):
    assert curl_quoted(value) == quoted
