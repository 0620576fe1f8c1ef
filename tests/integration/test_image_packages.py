"""image_packages: Debian packages in the sandbox image, added and taken away by `occ update`,
on the real Engine with the real build (only the packages' own layer is new: every layer
above it comes from the build cache of the default image)."""

from __future__ import annotations

import json

from tests.integration.conftest import untag_repository


def test_python3_comes_with_image_packages_and_goes_without(service, docker_client):
    # An image name of this test's own, so the shared default image is never retagged.
    image = f"{service.instance}-pkgs"
    service("config", "set", "image", image, check=True)
    try:
        service("start", check=True)
        plain = service.container().image.id
        missing = service("exec", "--", "sh", "-c", "command -v python3")
        assert missing.returncode != 0, missing.stdout  # the default image has no python3

        service("config", "set", "image_packages", '["python3"]', check=True)
        status = json.loads(service("status", "--json", check=True).stdout)
        assert {"key": "image_packages", "running": [], "configured": ["python3"]} \
            in status["drift"]
        updated = service("update", "--yes", check=True)
        assert "updated to" in updated.stdout.lower(), updated.stdout
        version = service("exec", "--", "python3", "--version", check=True)
        assert version.stdout.startswith("Python 3."), version.stdout
        status = json.loads(service("status", "--json", check=True).stdout)
        assert status["image_packages"] == ["python3"] and status["drift"] == []
        assert status["health"] == "healthy"
        assert "(+ python3)" in service("status", check=True).stdout

        service("config", "set", "image_packages", "[]", check=True)
        service("update", "--yes", check=True)
        gone = service("exec", "--", "sh", "-c", "command -v python3")
        assert gone.returncode != 0, gone.stdout
        assert service.container().image.id == plain  # the same layers again, from cache

        # An unknown package: the build fails naming it, and the service keeps running.
        service("config", "set", "image_packages", '["python3", "no-such-package-occ"]',
                check=True)
        failed = service("update", "--yes")
        assert failed.returncode == 1
        assert "Debian has no package 'no-such-package-occ' (image_packages)" in failed.stderr
        assert "Traceback" not in failed.stderr
        status = json.loads(service("status", "--json", check=True).stdout)
        assert status["state"] == "running" and service.container().image.id == plain
    finally:
        service("config", "set", "image_packages", "[]")
        service("reset")
        untag_repository(docker_client, image)
