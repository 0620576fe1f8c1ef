"""update and rollback with real pulls from a real (local) registry."""

from __future__ import annotations

import io
import json


def build_derived(client, base: str, tag: str, extra: str) -> str:
    """An image FROM ``base`` with one more Dockerfile line; returns its id."""
    dockerfile = f"FROM {base}\n{extra}\n".encode()
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    return image.id


def publish(client, image_id: str, ref: str) -> None:
    """Push ``image_id`` as ``ref`` but leave the local tag elsewhere, so occ has to pull."""
    client.images.get(image_id).tag(ref)
    for line in client.images.push(ref, stream=True, decode=True):
        assert "error" not in line, line


def test_update_pulls_keeps_work_rolls_back(service, registry, docker_client):
    # v1: the real sandbox image, built by occ itself, published in the registry.
    service("start", check=True)  # builds opencode-cloud-sandbox:1.18.33 if needed
    v1 = service.container().image.id
    repo = f"{registry.address}/occ/sandbox"
    ref = f"{repo}:1.18.33"
    publish(docker_client, v1, ref)
    service("reset", check=True)
    service("config", "set", "image", repo, check=True)
    service("config", "set", "image_source", "prebuilt", check=True)
    service("start", check=True)
    assert service.container().image.id == v1
    service.write_workspace_file("keep.txt", "survives updates")
    creds = service.credentials()

    assert "Already up to date" in service("update", "--yes", check=True).stdout

    # v2 appears in the registry; the local tag still points at v1.
    v2 = build_derived(docker_client, ref, f"{repo}:v2-build", 'LABEL occ.test="v2"')
    publish(docker_client, v2, ref)
    docker_client.images.get(v1).tag(ref)
    refused = service("update")  # no terminal: must not go ahead without --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert service.container().image.id == v1
    updated = service("update", "--yes", check=True)
    assert "Updated to" in updated.stdout
    assert service.container().image.id == v2
    assert service.read_workspace_file("keep.txt") == "survives updates"
    assert service.credentials() == creds

    # Rollback on request goes to v1; start keeps it there; update moves forward again.
    rolled = service("update", "--rollback", "--yes", check=True)
    assert "Rolled back" in rolled.stdout
    assert service.container().image.id == v1
    service("stop", check=True)
    service("start", check=True)
    assert service.container().image.id == v1
    assert service.read_workspace_file("keep.txt") == "survives updates"
    service("update", "--yes", check=True)
    assert service.container().image.id == v2

    # v3 is broken: opencode never answers. The update must roll back to v2 by itself.
    v3 = build_derived(
        docker_client,
        ref,
        f"{repo}:v3-build",
        'ENTRYPOINT ["/usr/bin/tini", "--", "sleep", "infinity"]',
    )
    publish(docker_client, v3, ref)
    docker_client.images.get(v2).tag(ref)
    failed = service("update", "--yes", "--timeout", "15")
    assert failed.returncode == 1
    assert "rolled back" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert service.container().image.id == v2
    report = json.loads(service("status", "--json", check=True).stdout)
    assert report["state"] == "running" and report["health"] == "healthy"
    assert service.read_workspace_file("keep.txt") == "survives updates"
    assert service.credentials() == creds
