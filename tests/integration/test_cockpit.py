"""Cockpit in the sandbox: off by default, and when on, it accepts the same credentials."""

from __future__ import annotations

from tests.integration.conftest import free_port, http_status


def test_cockpit_disabled_explains_how_to_enable(service):
    result = service("cockpit", "--print-url")
    assert result.returncode == 1
    assert "occ config set cockpit_enabled true" in result.stderr


def test_cockpit_login_accepts_credentials_and_rejects_wrong_password(service):
    cockpit_port = free_port()
    service("config", "set", "cockpit_port", str(cockpit_port), check=True)
    service("config", "set", "cockpit_enabled", "true", check=True)
    started = service("start", check=True)
    assert f"http://127.0.0.1:{cockpit_port}" in started.stdout
    url = service("cockpit", "--print-url", check=True).stdout.strip()
    assert url == f"http://127.0.0.1:{cockpit_port}"
    _, password = service.credentials()
    assert http_status(url + "/") == 200
    assert http_status(url + "/cockpit/login", ("opencoder", password)) == 200
    assert http_status(url + "/cockpit/login", ("opencoder", "not-the-password")) == 401
