"""Disk upkeep: which images to keep and remove (service/images.py), the disk report of
``occ status`` (service/disk.py, output/disk.py), and both on the fake Engine."""

from __future__ import annotations

import pytest

from opencode_cloud.errors import OccError
from opencode_cloud.image.build import OPENCODE_VERSION_LABEL
from opencode_cloud.image.refs import repository
from opencode_cloud.output.disk import disk_lines
from opencode_cloud.service import images, lifecycle, update
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.disk import disk_report
from opencode_cloud.service.images import (
    ImageEntry,
    Removal,
    removal_summary,
    select_after_update,
    select_for_reset,
)
from opencode_cloud.service.names import ServiceNames
from opencode_cloud.service.status import collect_status
from tests.unit.fake_docker import FakeClient, RecordingReporter

REPO = "reg.example:5000/team/sandbox"
OCC = {OPENCODE_VERSION_LABEL: "1.0.0"}
MIB = 1024 * 1024


def entry(image_id: str, *tags: str, labels: dict | None = None, created: int = 0,
          containers: int = 0, size: int = 100 * MIB, shared: int = 40 * MIB) -> dict:
    """One image as /system/df lists it."""
    return {"Id": f"sha256:{image_id * 12}", "RepoTags": list(tags) or ["<none>:<none>"],
            "Labels": OCC if labels is None else labels, "Size": size,
            "SharedSize": shared, "Containers": containers, "Created": created}


def ids(selected: list[ImageEntry]) -> list[str]:
    return [i.short_id[:1] for i in selected]


ENGINE = [
    entry("a", f"{REPO}:1.0.3", created=9),                                 # current
    entry("b", f"{REPO}:occ-previous", created=8),                          # previous
    entry("c", f"{REPO}:1.0.1", created=7),                                 # old: goes
    entry("d", f"{REPO}:1.0.0", f"{REPO}:stable", created=6),               # old, two tags
    entry("e", created=5),                                                  # left by a rebuild
    entry("f", f"{REPO}:0.9", created=4, containers=1),                     # a container's
    entry("g", f"{REPO}:0.8", "mine/fork:x", created=3),                    # also someone's
    entry("h", f"{REPO}:plain", labels={}, created=2),                      # not occ's
    entry("i", "other/sandbox:1.0.0", created=1),                           # other repository
    entry("j", labels={"dev.opencode-cloud.stage": "opencode-build"}),      # build cache
    entry("k", "debian:bookworm-slim", labels={}),
]


def test_after_an_update_only_the_current_and_the_previous_image_stay() -> None:
    chosen = select_after_update([ImageEntry.from_df(r) for r in ENGINE], REPO,
                                 "sha256:" + "a" * 12, in_use={"sha256:" + "c" * 12})
    # c is in use by a container (from the container list, not only df's count)
    assert ids(chosen.remove) == ["d", "e"]  # newest first
    assert [(i.short_id[:1], why) for i, why in chosen.keep] == [
        ("a", "current"), ("b", "previous"), ("c", "used by a container"),
        ("f", "used by a container"), ("g", f"also tagged outside {REPO}")]


def test_reset_images_takes_every_image_of_the_service() -> None:
    chosen = select_for_reset([ImageEntry.from_df(r) for r in ENGINE], REPO, in_use=set())
    assert ids(chosen.remove) == ["a", "b", "c", "d", "e"]  # not the build cache j
    assert [(i.short_id[:1], why) for i, why in chosen.keep] == [
        ("f", "used by a container"), ("g", f"also tagged outside {REPO}")]


def test_an_image_entry_from_df() -> None:
    raw = {"Id": "sha256:" + "7" * 64, "RepoTags": ["<none>:<none>"], "Labels": None,
           "Size": 5, "SharedSize": -1, "Containers": -1, "Created": 3}
    image = ImageEntry.from_df(raw)
    assert image.tags == () and image.labels == {} and image.name == "7" * 12
    assert image.unique_size is None and image.containers == -1
    assert ImageEntry.from_df(entry("a", "x:1")).unique_size == 60 * MIB


@pytest.mark.parametrize(("ref", "repo"), [
    ("reg.example:5000/team/sandbox:1.0", REPO),
    ("reg.example:5000/team/sandbox", REPO),
    ("sandbox@sha256:abcd", "sandbox"),
    ("opencode-cloud-sandbox:occ-previous", "opencode-cloud-sandbox"),
])
def test_image_repository(ref: str, repo: str) -> None:
    assert repository(ref) == repo


def test_the_disk_report_names_the_service_images_and_volumes_only() -> None:
    names = ServiceNames("t1")
    df = {"LayersSize": 1, "Images": ENGINE, "Volumes": [
        {"Name": "t1-workspace", "Labels": None, "UsageData": {"Size": 2048, "RefCount": 1}},
        {"Name": "t1-data", "Labels": {"dev.opencode-cloud.instance": "t1",
                                       "dev.opencode-cloud.auth.password": "s3cret"},
         "UsageData": {"Size": 100, "RefCount": 1}},
        {"Name": "t1-login-2", "Labels": {"dev.opencode-cloud.instance": "t1"},
         "UsageData": {"Size": -1, "RefCount": 0}},  # not counted by its driver
        {"Name": "t2-workspace", "Labels": {"dev.opencode-cloud.instance": "t2"},
         "UsageData": {"Size": 9, "RefCount": 0}},
        {"Name": "unrelated", "Labels": None, "UsageData": {"Size": 9, "RefCount": 0}},
    ]}
    report = disk_report(df, names, REPO, "sha256:" + "a" * 12)
    assert [(i["id"][:1], i["role"]) for i in report["images"]] == [
        ("a", "current"), ("b", "previous"), ("c", "old"), ("d", "old"), ("f", "old"),
        ("g", "old")]  # not e: untagged
    assert report["images"][0] == {"id": "a" * 12, "tags": [f"{REPO}:1.0.3"],
                                   "role": "current", "size_bytes": 100 * MIB,
                                   "unique_bytes": 60 * MIB}
    assert report["volumes"] == [{"name": "t1-data", "size_bytes": 100},
                                 {"name": "t1-login-2", "size_bytes": None},
                                 {"name": "t1-workspace", "size_bytes": 2048}]
    assert report["volumes_bytes"] == 2148
    assert "s3cret" not in repr(report)  # volume labels carry the login: never shown


def test_disk_lines() -> None:
    disk = {"images": [{"id": "a" * 12, "tags": ["sb:1"], "role": "current",
                        "size_bytes": 100 * MIB, "unique_bytes": 60 * MIB},
                       {"id": "e" * 12, "tags": [], "role": "old", "size_bytes": 2048,
                        "unique_bytes": None}],
            "volumes": [{"name": "t1-data", "size_bytes": 100},
                        {"name": "t1-x", "size_bytes": None}], "volumes_bytes": 100}
    assert disk_lines(disk) == [
        ("Images", "sb:1 100.0 MiB (current, 60.0 MiB its own), eeeeeeeeeeee 2.0 KiB (old)"),
        ("Volumes", "t1-data 100 B, t1-x - (together 100 B)")]
    assert disk_lines({"images": [], "volumes": [], "volumes_bytes": 0}) == [
        ("Images", "none"), ("Volumes", "none")]
    assert disk_lines({"error": "busy"}) == [("Disk", "unknown: busy")]
    assert disk_lines(None) == []


def test_removal_summary() -> None:
    one = ImageEntry.from_df(entry("c", f"{REPO}:1.0.1"))
    two = ImageEntry.from_df(entry("e"))
    assert removal_summary(Removal(removed=[one], freed_bytes=3 * MIB), "old ") == (
        f"Removed 1 old image ({REPO}:1.0.1); freed 3.0 MiB.")
    assert removal_summary(Removal(removed=[one, two], freed_bytes=None)) == (
        f"Removed 2 images ({REPO}:1.0.1, {'e' * 12}); freed an unknown amount.")


# -- on the fake Engine ------------------------------------------------------------------------

def occ_image(client: FakeClient, ref: str, version: str):
    return client.images.make(ref, labels={OPENCODE_VERSION_LABEL: version})


def test_three_updates_leave_the_current_and_the_previous_image(
        client: FakeClient, reporter: RecordingReporter, svc: ServiceContext) -> None:
    oldest = occ_image(client, "opencode-cloud-sandbox:1.18.31", "1.18.31")
    client.images.add(oldest, "opencode-cloud-sandbox:stable")  # by ID: refused, 2 tags
    lifecycle.start(svc, image=oldest)
    older = occ_image(client, "opencode-cloud-sandbox:1.18.32", "1.18.32")
    outcome = update.apply_update(svc, svc.container(), older, timeout=10)
    assert outcome.pruned is not None and outcome.pruned.removed == []  # both kept
    foreign = client.images.make("opencode-cloud-sandbox:hand-made")  # no occ label
    other = occ_image(client, "elsewhere/box:1", "1.0")
    container, newest = update.plan_update(svc)  # builds 1.18.33
    outcome = update.apply_update(svc, container, newest, timeout=10)
    assert [i.id for i in outcome.pruned.removed] == [oldest.id]
    assert outcome.pruned.freed_bytes == 100 * MIB
    assert ("remove_image", "opencode-cloud-sandbox:1.18.31", False) in client.calls
    assert [c for c in client.calls if c[0] == "remove_image" and c[2]] == []  # not forced
    assert reporter.of("info")[-1] == (
        "Removed 1 old image (opencode-cloud-sandbox:1.18.31); freed 100.0 MiB.")
    left = client.api.images_list()
    assert {i.id for i in left} == {older.id, newest.id, foreign.id, other.id}
    assert client.images.get("opencode-cloud-sandbox:occ-previous") is older


def test_a_failed_removal_is_a_warning_and_the_update_stands(
        client: FakeClient, reporter: RecordingReporter, svc: ServiceContext,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = occ_image(client, "opencode-cloud-sandbox:1.18.31", "1.18.31")
    lifecycle.start(svc, image=first)
    occ_image(client, "opencode-cloud-sandbox:1.18.30", "1.18.30")
    other = client.containers.add("someone-else", client.images.get(
        "opencode-cloud-sandbox:1.18.30"), status="exited")
    # The container appears after occ looked (neither df nor the list saw it): the Engine
    # itself refuses, since occ never forces a removal.
    counted = client.api.df
    monkeypatch.setattr(client.api, "df", lambda: {**counted(), "Images": [
        {**raw, "Containers": 0} for raw in counted()["Images"]]})
    monkeypatch.setattr(images, "images_in_use", lambda ctx: set())
    container, new = update.plan_update(svc)
    outcome = update.apply_update(svc, container, new, timeout=10)
    assert outcome.action == "updated" and outcome.pruned.removed == []
    assert reporter.of("warn") == [
        "could not remove the old image opencode-cloud-sandbox:1.18.30: conflict: unable "
        f"to delete {other.image.id[7:19]} (must be forced) - image is being used"]


def test_reset_images_keeps_the_image_a_running_container_uses(
        client: FakeClient, svc: ServiceContext) -> None:
    mine = occ_image(client, "opencode-cloud-sandbox:1.18.33", "1.18.33")
    lifecycle.start(svc, image=mine)
    theirs = occ_image(client, "opencode-cloud-sandbox:1.18.32", "1.18.32")
    client.containers.add("other-sandbox", theirs)
    lifecycle.reset(svc, volumes=False)
    removal = images.remove_service_images(svc)
    assert [i.id for i in removal.removed] == [mine.id]
    assert [(i.id, why) for i, why in removal.kept] == [(theirs.id, "used by a container")]
    assert removal.freed_bytes == 100 * MIB


def test_a_busy_disk_count_is_waited_for(svc: ServiceContext,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list = [OccError("Docker on h1 refused: a disk usage operation is already "
                              "running"), {"Images": [], "Volumes": []}]
    monkeypatch.setattr(images, "DF_RETRY_SECONDS", 0)
    monkeypatch.setattr(svc.endpoint, "system_df", lambda: (
        (_ for _ in ()).throw(answers.pop(0)) if isinstance(answers[0], Exception)
        else answers.pop(0)))
    assert images.system_df(svc) == {"Images": [], "Volumes": []}
    monkeypatch.setattr(svc.endpoint, "system_df", lambda: (_ for _ in ()).throw(
        OccError("Docker refused: no such thing")))
    with pytest.raises(OccError, match="no such thing"):
        images.system_df(svc)


def test_status_reports_disk_only_when_asked(client: FakeClient, svc: ServiceContext) -> None:
    image = occ_image(client, "opencode-cloud-sandbox:1.18.33", "1.18.33")
    lifecycle.start(svc, image=image)
    assert "disk" not in collect_status(svc)
    disk = collect_status(svc, disk=True)["disk"]
    assert [(i["id"], i["role"]) for i in disk["images"]] == [(image.id[7:19], "current")]
    assert {v["name"] for v in disk["volumes"]} == set(svc.names.volumes)


def test_disk_goes_with_one_target_or_json(occ) -> None:
    """Refused before any connection: --watch and the fleet table have no disk column."""
    assert occ("host", "add", "db", "192.0.2.5", "--no-verify").returncode == 0
    for args in (("status", "--disk", "--watch"), ("status", "--disk", "--all")):
        result = occ(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "--disk shows one target's disk" in result.stderr


def test_the_base_of_a_kept_custom_image_is_kept() -> None:
    """image_dockerfile: <repo>:1.0-custom is built on <repo>:1.0; the Engine cannot remove
    the base while the custom image is there, so it is not even tried."""
    from opencode_cloud.engine.labels import label
    from opencode_cloud.service.images import ImageEntry, select_after_update

    occ = {label("opencode-version"): "1.0"}
    base = ImageEntry("sha256:base", ("sandbox:1.0",), occ, 500, 0, 0, 1)
    custom = ImageEntry("sha256:custom", ("sandbox:1.0-custom",), occ, 510, 500, 1, 2,
                        parent_id="sha256:base")
    old = ImageEntry("sha256:old", ("sandbox:0.9",), occ, 400, 0, 0, 0)
    selection = select_after_update([old, base, custom], "sandbox", "sha256:custom", set())
    assert [image.id for image in selection.remove] == ["sha256:old"]
    assert ("sha256:base", "the base of a kept image") in [
        (image.id, why) for image, why in selection.keep]
