"""Bind mounts (issue 14, part 1): the mount spec and its checks, the command that looks at
a folder on the host, the container spec and drift with mounts, the entrypoint's re-owning,
and ``occ mount`` on config.json."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from opencode_cloud.cli.service_target import host_config
from opencode_cloud.config import store
from opencode_cloud.config.model import Config
from opencode_cloud.config.mounts import (
    Mount,
    check_container_path,
    check_host_path,
    check_mounts,
    parse_entry,
    parse_mount,
)
from opencode_cloud.engine.endpoint import DockerEndpoint
from opencode_cloud.engine.host_paths import host_path_command, local_host_path, parse_host_path
from opencode_cloud.errors import ConfigError
from opencode_cloud.hosts.model import Host, HostConfig
from opencode_cloud.service import spec
from opencode_cloud.service.credentials import Credentials
from opencode_cloud.service.mounts import (
    MountError,
    check_on_target,
    owner_mount,
    with_mount,
    without_mount,
)
from opencode_cloud.service.names import ServiceNames

WS = "/home/opencoder/workspace"
CREDS = Credentials("opencode", "pw")


# -- the spec ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "mount"), [
    ("/home/me/proj", Mount("/home/me/proj", f"{WS}/proj")),
    ("/home/me/proj/", Mount("/home/me/proj", f"{WS}/proj")),
    ("/home/me//proj:ro", Mount("/home/me/proj", f"{WS}/proj", True)),
    ("/home/me/proj:rw", Mount("/home/me/proj", f"{WS}/proj")),
    ("/data/x:~/x", Mount("/data/x", "/home/opencoder/x")),
    ("/data/x:~/workspace/a b:ro", Mount("/data/x", f"{WS}/a b", True)),
    ("/srv/www/site:/srv/site", Mount("/srv/www/site", "/srv/site")),
    ("/tmp/t:/mnt/t", Mount("/tmp/t", "/mnt/t")),
])
def test_a_mount_spec_is_parsed_with_its_defaults(text: str, mount: Mount) -> None:
    assert parse_mount(text) == mount
    assert parse_entry(str(mount)) == mount  # the stored form reads back the same


@pytest.mark.parametrize(("text", "message"), [
    ("proj", "must be absolute"),
    ("~/proj", "must be absolute"),
    ("./proj", "must be absolute"),
    ("/home/me/../../etc", "'..'"),
    ("/home/me/a:b:c", "too many ':'"),
    ("/home/me/a:b:c:ro", "too many ':'"),
    ("/home/me/a\nb", "control character"),
    ("/home/me/a\tb", "control character"),
    ("/home/me/a\x7fb", "control character"),
    ("", "empty"),
    ("/home/me/x:", "empty"),
    ("/home/me/x:relative", "must be absolute"),
    ("/home/me/x:/etc/x", "not a place"),
    ("/home/me/x:/home/opencoder", "not a place"),
    ("/home/me/x:~/workspace", "not a place"),
    ("/home/me/x:~/.config/opencode", "not a place"),
    ("/home/me/x:~/.local/share/opencode/x", "not a place"),
    ("/home/me/x:/mnt", "not a place"),
    ("/home/me/x:/usr/local/x", "not a place"),
])
def test_bad_specs_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_mount(text)


@pytest.mark.parametrize("path", [
    "/", "/etc", "/etc/ssh", "/proc", "/sys/fs", "/dev", "/boot", "/usr", "/usr/local/bin",
    "/var/run", "/var/run/docker.sock", "/run", "/run/user/1000", "/var/lib/docker/volumes",
    "/home", "/var", "/root", "/tmp", "/var/tmp", "/bin", "/lib", "/lib64", "/sbin",
])
def test_system_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="system folder|Docker socket"):
        check_host_path(path)


@pytest.mark.parametrize("path", ["/home/me", "/root/projects", "/tmp/x", "/var/www",
                                  "/srv/data", "/opt/app", "/mnt/disk", "/etcetera"])
def test_ordinary_folders_pass(path: str) -> None:
    assert check_host_path(path) == path


def test_the_docker_socket_folder_and_every_folder_holding_it_are_refused() -> None:
    socket = "/data/docker/run/docker.sock"
    for path in ("/data/docker/run", "/data/docker/run/sub", "/data/docker", "/data"):
        with pytest.raises(ValueError, match="holds the Docker socket"):
            check_host_path(path, socket)
    assert check_host_path("/data/other", socket) == "/data/other"


def test_container_paths_below_the_home_and_not_in_its_dot_folders() -> None:
    assert check_container_path("~/projects/a") == "/home/opencoder/projects/a"
    assert check_container_path("~/workspace/a/") == f"{WS}/a"
    for bad in ("~/.ssh/x", "~", "/home/opencoder/.cache", "/home/other/x", "/srv"):
        with pytest.raises(ValueError, match="not a place"):
            check_container_path(bad)


def test_the_same_folder_or_place_twice_is_refused() -> None:
    a = f"/home/me/a:{WS}/a"
    assert check_mounts([a, f"/home/me/b:{WS}/b:ro"])[1].read_only
    with pytest.raises(ValueError, match="mounted twice"):
        check_mounts([a, f"/home/me/a:{WS}/other"])
    with pytest.raises(ValueError, match="overlap"):
        check_mounts([a, f"/home/me/b:{WS}/a"])
    with pytest.raises(ValueError, match="overlap"):
        check_mounts([a, f"/home/me/b:{WS}/a/inner"])
    with pytest.raises(ValueError, match="HOST_PATH:CONTAINER_PATH"):
        check_mounts(["/home/me/a"])  # stored entries always name their place
    with pytest.raises(ValueError, match="HOST_PATH:CONTAINER_PATH"):
        check_mounts(["/home/me/a:ro"])


def test_the_config_model_validates_mounts_like_any_key() -> None:
    config = store.validate({"mounts": [f"/home/me/a:{WS}/a:ro"]}, "config.json")
    assert config.mount_list == [Mount("/home/me/a", f"{WS}/a", True)]
    for bad in (["/etc:/mnt/etc"], ["rel:/mnt/x"], [f"/home/me/a:{WS}/a", f"/home/me/a:{WS}/b"],
                "not-a-list", [1]):
        with pytest.raises(ConfigError, match="mounts"):
            store.validate({"mounts": bad}, "config.json")


def test_a_host_never_inherits_this_machines_mounts() -> None:
    config = Config(mounts=[f"/home/me/a:{WS}/a"], memory_limit="2g")
    plain = Host("web1", HostConfig(hostname="web1"))
    assert host_config(config, plain).mounts == []
    assert host_config(config, plain).memory_limit == "2g"  # other settings are inherited
    own = Host("web2", HostConfig(hostname="web2", settings={"mounts": [f"/srv/b:{WS}/b"]}))
    assert host_config(config, own).mounts == [f"/srv/b:{WS}/b"]
    assert host_config(config, None).mounts == config.mounts


# -- the list's edits ---------------------------------------------------------------------------
def test_adding_and_removing_mounts() -> None:
    entries = with_mount([], Mount("/home/me/a", f"{WS}/a"))
    entries = with_mount(entries, Mount("/home/me/b", f"{WS}/b", True))
    assert entries == [f"/home/me/a:{WS}/a", f"/home/me/b:{WS}/b:ro"]
    with pytest.raises(MountError, match="already mounted"):
        with_mount(entries, Mount("/home/me/a", f"{WS}/c"))
    with pytest.raises(MountError, match="overlap"):
        with_mount(entries, Mount("/home/me/c", f"{WS}/a"))
    assert without_mount(entries, "/home/me/a/") == [f"/home/me/b:{WS}/b:ro"]
    with pytest.raises(MountError, match="not mounted"):
        without_mount(entries, "/home/me/c")
    assert owner_mount(check_mounts(entries)) == Mount("/home/me/a", f"{WS}/a")
    assert owner_mount([Mount("/x/y", f"{WS}/y", True)]) is None


# -- the folder on the host ---------------------------------------------------------------------
def run_host_command(path: str, socket: str) -> str:
    """The remote command, run by a real POSIX shell here."""
    return subprocess.run(["sh", "-c", host_path_command(path, socket)], capture_output=True,
                          text=True, check=True).stdout


def test_the_host_command_tells_a_folder_a_file_and_nothing_apart(tmp_path: Path) -> None:
    folder = tmp_path / "it's a folder; $(touch pwned)"
    folder.mkdir()
    (tmp_path / "file").write_text("x")
    socket = str(tmp_path / "run" / "docker.sock")
    found = parse_host_path(str(folder), run_host_command(str(folder), socket))
    assert (found.kind, found.uid, found.gid) == ("directory", os.getuid(), os.getgid())
    assert found.real_path == str(folder.resolve()) and not found.is_socket_folder
    assert found == local_host_path(str(folder), socket)
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()
    for name, kind in (("file", "other"), ("missing", "missing")):
        path = str(tmp_path / name)
        assert parse_host_path(path, run_host_command(path, socket)).kind == kind
        assert local_host_path(path, socket).kind == kind
    with pytest.raises(ValueError, match="unexpected answer"):
        parse_host_path("/x", "sh: stat: not found\n")


def test_the_socket_folder_under_another_name_is_recognised(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(run)
    socket = str(run / "docker.sock")
    assert parse_host_path(str(alias), run_host_command(str(alias), socket)).is_socket_folder
    assert local_host_path(str(alias), socket).is_socket_folder
    endpoint = DockerEndpoint(inspect_path=local_host_path, docker_socket=socket)
    with pytest.raises(MountError, match="holds the Docker socket"):
        check_on_target(endpoint, Mount(str(alias), f"{WS}/alias"))


def test_check_on_target_needs_an_existing_folder_and_follows_links(tmp_path: Path) -> None:
    endpoint = DockerEndpoint(inspect_path=local_host_path)
    (tmp_path / "proj").mkdir()
    checked = check_on_target(endpoint, Mount(str(tmp_path / "proj"), f"{WS}/proj"))
    assert (checked.uid, checked.gid) == (os.getuid(), os.getgid())
    with pytest.raises(MountError, match="does not exist on this machine"):
        check_on_target(endpoint, Mount(str(tmp_path / "nope"), f"{WS}/nope"))
    (tmp_path / "f").write_text("")
    with pytest.raises(MountError, match="is not a directory"):
        check_on_target(endpoint, Mount(str(tmp_path / "f"), f"{WS}/f"))
    (tmp_path / "etc").symlink_to("/etc")
    with pytest.raises(MountError, match="leads to /etc"):
        check_on_target(endpoint, Mount(str(tmp_path / "etc"), f"{WS}/etc"))
    with pytest.raises(MountError, match="cannot look at folders"):
        check_on_target(DockerEndpoint(base_url="tcp://x:2375"),
                        Mount(str(tmp_path / "proj"), f"{WS}/proj"))


# -- the container ------------------------------------------------------------------------------
def test_the_container_gets_bind_mounts_and_the_entrypoint_its_hints() -> None:
    config = Config(mounts=[f"/srv/ref:{WS}/ref:ro", f"/home/me/a b:{WS}/a b",
                            "/home/me/c:/mnt/c"])
    kwargs = spec.container_kwargs(config, ServiceNames("t1"), "img", CREDS)
    assert kwargs["mounts"] == [
        {"Type": "bind", "Source": "/srv/ref", "Target": f"{WS}/ref", "ReadOnly": True},
        {"Type": "bind", "Source": "/home/me/a b", "Target": f"{WS}/a b", "ReadOnly": False},
        {"Type": "bind", "Source": "/home/me/c", "Target": "/mnt/c", "ReadOnly": False},
    ]
    env = kwargs["environment"]
    assert f"OCC_MOUNT_TARGETS={WS}/ref:{WS}/a b:/mnt/c" in env
    assert f"OCC_OWNER_FROM={WS}/a b" in env  # the first read-write one
    assert len(kwargs["volumes"]) == 4  # the named volumes stay
    read_only = spec.container_kwargs(Config(mounts=[f"/srv/ref:{WS}/ref:ro"]),
                                      ServiceNames(), "img", CREDS)["environment"]
    assert not any(e.startswith("OCC_OWNER_FROM=") for e in read_only)
    plain = spec.container_kwargs(Config(), ServiceNames(), "img", CREDS)
    assert "mounts" not in plain
    assert not any(e.startswith(("OCC_MOUNT", "OCC_OWNER")) for e in plain["environment"])


def labels_of(config: Config) -> dict[str, str]:
    return spec.container_kwargs(config, ServiceNames(), "img", CREDS)["labels"]


def test_a_changed_mount_is_drift_until_the_container_is_made_anew() -> None:
    mounted = Config(mounts=[f"/home/me/a:{WS}/a"])
    drift = spec.configuration_drift(labels_of(Config()), "r", mounted, "r")
    assert drift == [{"key": "mounts", "running": [], "configured": [f"/home/me/a:{WS}/a"]}]
    assert spec.configuration_drift(labels_of(mounted), "r", mounted, "r") == []
    read_only = Config(mounts=[f"/home/me/a:{WS}/a:ro"])
    assert [d["key"] for d in spec.configuration_drift(labels_of(mounted), "r", read_only,
                                                       "r")] == ["mounts"]
    # A container made before mounts existed has none: no drift without mounts.
    summary = json.loads(labels_of(Config())[spec.SUMMARY_LABEL])
    del summary["mounts"]
    old = {spec.SUMMARY_LABEL: json.dumps(summary)}
    assert spec.configuration_drift(old, "r", Config(), "r") == []
    assert spec.describe_drift(spec.settings_summary(Config(), "i"),
                               spec.settings_summary(mounted, "i")) == ["mounts changed"]


# -- the entrypoint -----------------------------------------------------------------------------
ENTRYPOINT = (resources.files("opencode_cloud.image") / "entrypoint.sh").read_text()


def test_reown_leaves_every_mounted_folder_alone(tmp_path: Path) -> None:
    """The entrypoint's reown() with a chown that only records what it is given."""
    home = tmp_path / "home"
    for folder in ("ws/p*1/deep", "ws/p1", "ws/other", "proj [x]/in", ".config"):
        (home / folder).mkdir(parents=True)
    (home / "ws/p1/file").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "chowned"
    (bin_dir / "chown").write_text(f'#!/bin/sh\nshift 2\nprintf "%s\\n" "$@" >> {record}\n')
    (bin_dir / "chown").chmod(0o755)
    function = ENTRYPOINT[ENTRYPOINT.index("reown() {"):ENTRYPOINT.index("adopt_mount_owner() {")]
    targets = f"{home}/ws/p*1:{home}/proj [x]:{home}/none"
    subprocess.run(["sh", "-c", f'{function}\nreown 1234:1234 "$1"', "sh", str(home)],
                   env={"PATH": f"{bin_dir}:/usr/bin:/bin", "OCC_MOUNT_TARGETS": targets},
                   check=True)
    given = record.read_text().split()
    chowned = {Path(p).relative_to(home).as_posix() for p in given[:-1]}
    assert chowned == {"ws", "ws/p1", "ws/p1/file", "ws/other", ".config"}
    # The folder itself comes last: its owner tells the next start that all of it is done.
    assert given[-1] == str(home)


# -- occ mount on this machine ----------------------------------------------------------------
def test_occ_mount_add_list_remove_on_config_json(occ, tmp_path: Path) -> None:
    proj, ref = tmp_path / "proj", tmp_path / "ref"
    proj.mkdir()
    ref.mkdir()
    added = occ("mount", "add", f"{proj}/", check=True)
    assert f"{proj} is mounted at {WS}/proj" in added.stdout
    said = added.stdout + added.stderr  # who owns what opencode writes there
    assert ("belongs to root" if os.getuid() == 0 else f"uid {os.getuid()}") in said
    occ("mount", "add", f"{ref}:~/reference:ro", check=True)
    assert json.loads(occ.config_file.read_text())["mounts"] == [
        f"{proj}:{WS}/proj", f"{ref}:/home/opencoder/reference:ro"]
    listed = json.loads(occ("mount", "list", "--json", check=True).stdout)
    assert listed[1] == {"host_path": str(ref), "container_path": "/home/opencoder/reference",
                         "read_only": True}
    table = occ("mount", "list", check=True).stdout
    assert "read-only" in table and "read-write" in table
    before = occ.config_file.read_text()
    for args, message in ((["add", str(proj)], "already mounted"),
                          (["add", f"{tmp_path}/missing"], "does not exist"),
                          (["add", "relative/x"], "must be absolute"),
                          (["add", "/etc"], "system folder"),
                          (["add", f"{tmp_path}/a\nb"], "control character"),
                          (["add", f"{tmp_path}/x:y:z"], "too many ':'"),
                          (["remove", f"{tmp_path}/other"], "is not mounted")):
        r = occ("mount", *args)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r
    assert occ.config_file.read_text() == before
    occ("mount", "remove", str(proj), check=True)
    occ("mount", "remove", str(ref), check=True)
    assert json.loads(occ("mount", "list", "--json", check=True).stdout) == []
    assert "No folders mounted" in occ("mount", "list", check=True).stdout


def test_a_start_with_a_vanished_folder_changes_nothing(tmp_path: Path) -> None:
    from opencode_cloud.service.lifecycle import start
    from tests.unit.fake_docker import FakeClient, service_context

    (tmp_path / "here").mkdir()
    config = Config(mounts=[f"{tmp_path}/here:{WS}/here", f"{tmp_path}/gone:{WS}/gone:ro"])
    client = FakeClient()
    ctx = service_context(client, config, inspect_path=local_host_path, host="web1")
    with pytest.raises(MountError, match=r"cannot mount .*/gone: .* does not exist") as caught:
        start(ctx)
    assert f"occ mount remove {tmp_path}/gone --host web1" in (caught.value.hint or "")
    assert client.calls == []  # not a volume, image or container was asked for
    (tmp_path / "gone").mkdir()
    start(ctx)  # there again: the service starts, with both folders
    (created,) = client.containers.created
    assert [m["Source"] for m in created["mounts"]] == [f"{tmp_path}/here", f"{tmp_path}/gone"]
