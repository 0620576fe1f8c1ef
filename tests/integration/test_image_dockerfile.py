"""image_dockerfile: people's own Dockerfile on top of occ's image, on the real Engine."""

from __future__ import annotations

import json

from tests.integration.conftest import untag_repository


def test_own_dockerfile_on_top_of_occs_image(service, docker_client, tmp_path):
    image = f"{service.instance}-own"  # this test's own repository: nothing shared retagged
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "hello.txt").write_text("first\n")
    dockerfile = tools / "Dockerfile"
    dockerfile.write_text("ARG OCC_SANDBOX\nFROM ${OCC_SANDBOX}\n"
                          "COPY hello.txt /opt/occ-test/hello.txt\n")
    service("config", "set", "image", image, check=True)
    service("config", "set", "image_dockerfile", str(dockerfile), check=True)
    try:
        started = service("start", check=True)
        assert f"from {dockerfile}" in started.stdout
        assert service("exec", "--", "cat", "/opt/occ-test/hello.txt",
                       check=True).stdout == "first\n"
        status = json.loads(service("status", "--json", check=True).stdout)
        assert status["image"] == f"{image}:1.18.33-custom", status["image"]
        assert status["image_dockerfile"] == str(dockerfile)
        assert status["health"] == "healthy" and status["drift"] == []

        # A change in the folder is a build input: update rebuilds on top.
        (tools / "hello.txt").write_text("second\n")
        service("update", "--yes", check=True)
        assert service("exec", "--", "cat", "/opt/occ-test/hello.txt",
                       check=True).stdout == "second\n"
        running = service.container().image.id

        # A Dockerfile from another base is refused before anything changes.
        dockerfile.write_text("FROM debian:bookworm-slim\nCOPY hello.txt /x\n")
        refused = service("update", "--yes")
        assert refused.returncode == 1
        assert "builds FROM debian:bookworm-slim, not from occ's sandbox image" in refused.stderr
        assert "ARG OCC_SANDBOX" in refused.stderr and "Traceback" not in refused.stderr
        assert service.container().image.id == running
        assert service.container().status == "running"

        # Without it, update goes back to occ's own image.
        service("config", "set", "image_dockerfile", "", check=True)
        service("update", "--yes", check=True)
        gone = service("exec", "--", "test", "-e", "/opt/occ-test/hello.txt")
        assert gone.returncode == 1
        assert json.loads(service("status", "--json", check=True).stdout)["image"] == \
            f"{image}:1.18.33"
    finally:
        service("config", "set", "image_dockerfile", "")
        service("reset")
        untag_repository(docker_client, image)
