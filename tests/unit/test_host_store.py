"""hosts.json: the original occ's format, validation of hand edits, locked changes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from opencode_cloud.errors import ConfigError
from opencode_cloud.hosts import store
from opencode_cloud.hosts.model import HostConfig, HostsFile

pytestmark = pytest.mark.unit

# Written by the original occ (serde, pretty-printed): every field present, nulls included.
ORIGINAL = """{
  "version": 1,
  "default_host": "prod-1",
  "hosts": {
    "prod-1": {
      "hostname": "prod1.example.com",
      "user": "admin",
      "port": 2222,
      "identity_file": "~/.ssh/prod_key",
      "jump_host": "jump@bastion.example.com:22",
      "groups": ["production", "eu"],
      "description": "Main production box"
    },
    "staging": {
      "hostname": "10.0.0.5",
      "user": "ubuntu",
      "port": null,
      "identity_file": null,
      "jump_host": null,
      "groups": [],
      "description": null
    }
  }
}
"""


@pytest.fixture
def hosts_path(tmp_path: Path) -> Path:
    return tmp_path / "opencode-cloud" / "hosts.json"


def test_original_file_is_read_as_is(hosts_path: Path) -> None:
    hosts_path.parent.mkdir()
    hosts_path.write_text(ORIGINAL)
    hosts = store.load_hosts(hosts_path)
    assert hosts.default_host == "prod-1"
    assert hosts.names() == ["prod-1", "staging"]
    prod = hosts.hosts["prod-1"]
    assert (prod.hostname, prod.user, prod.port) == ("prod1.example.com", "admin", 2222)
    assert prod.identity_file == "~/.ssh/prod_key"
    assert prod.jump_host == "jump@bastion.example.com:22"
    assert prod.groups == ("production", "eu")
    assert prod.docker_socket is None and prod.effective_docker_socket == "/var/run/docker.sock"
    assert hosts.names("eu") == ["prod-1"]
    # Writing it back keeps the original's fields and values (the original can read it).
    assert json.loads(store.render_hosts(hosts)) == json.loads(ORIGINAL)


def test_minimal_and_commented_files(hosts_path: Path) -> None:
    hosts_path.parent.mkdir()
    hosts_path.write_text('{"version": 1}')
    assert store.load_hosts(hosts_path).hosts == {}
    hosts_path.write_text('{\n // my hosts\n "hosts": {"a": {"hostname": "a.example",},},\n}')
    assert store.load_hosts(hosts_path).names() == ["a"]


def test_missing_file_is_an_empty_registry(hosts_path: Path) -> None:
    assert store.load_hosts(hosts_path) == HostsFile({})
    assert not hosts_path.exists()


def test_written_sorted_private_and_compatible(hosts_path: Path) -> None:
    store.change_hosts(lambda h: h.with_host("zeta", HostConfig.from_dict({"hostname": "z"})),
                       hosts_path)
    store.change_hosts(lambda h: h.with_host("alpha", HostConfig.from_dict(
        {"hostname": "a", "docker_socket": "/run/user/1000/docker.sock"})), hosts_path)
    data = json.loads(hosts_path.read_text())
    assert list(data["hosts"]) == ["alpha", "zeta"]
    assert data["version"] == 1 and data["default_host"] is None
    # user absent when unset (the original requires a string there); extras only when set.
    assert data["hosts"]["zeta"] == {"hostname": "z", "port": None, "identity_file": None,
                                     "jump_host": None, "groups": [], "description": None}
    assert data["hosts"]["alpha"]["docker_socket"] == "/run/user/1000/docker.sock"
    assert stat.S_IMODE(hosts_path.stat().st_mode) == 0o600


def _write(path: Path, hosts: dict, **top: object) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"version": 1, "hosts": hosts, **top}))


@pytest.mark.parametrize(("entry", "field", "fix"), [
    ({"hostname": "-oProxyCommand=touch /tmp/x"}, "hostname", "occ host edit web --hostname"),
    ({"hostname": "h", "user": "root;id"}, "user", "occ host edit web -u"),
    ({"hostname": "h", "port": 70000}, "port", "occ host edit web -p"),
    ({"hostname": "h", "port": "22"}, "port", "occ host edit web -p"),
    ({"hostname": "h", "identity_file": "-i/x"}, "identity_file", "occ host edit web -i"),
    ({"hostname": "h", "jump_host": "-oProxyCommand=x"}, "jump_host", "occ host edit web -J"),
    ({"hostname": "h", "groups": ["ok", "not ok"]}, "groups", "Correct it by hand"),
    ({"hostname": "h", "groups": "prod"}, "groups", "Correct it by hand"),
    ({"hostname": "h", "docker_socket": "rel.sock"}, "docker_socket", "Correct it by hand"),
    ({"hostname": "h", "description": "a\nb"}, "description", "occ host edit web -d"),
])
def test_bad_entry_names_host_field_and_fix(hosts_path: Path, entry: dict, field: str,
                                           fix: str) -> None:
    _write(hosts_path, {"web": entry})
    before = hosts_path.read_bytes()
    with pytest.raises(ConfigError) as err:
        store.load_hosts(hosts_path)
    assert f"host 'web', field '{field}'" in err.value.message
    assert str(hosts_path) in err.value.message
    assert fix in (err.value.hint or "")
    # A change never "repairs" a bad file silently: it fails the same way, file unchanged.
    with pytest.raises(ConfigError):
        store.change_hosts(lambda h: h, hosts_path)
    assert hosts_path.read_bytes() == before


@pytest.mark.parametrize(("hosts", "top", "expect"), [
    ({"web": {"hostname": "h", "prot": 22}}, {}, "unknown field 'prot'"),
    ({"web": {"user": "u"}}, {}, "host 'web' has no 'hostname'"),
    ({"-oProxyCommand=x": {"hostname": "h"}}, {}, "host '-oProxyCommand=x'"),
    ({"local": {"hostname": "h"}}, {}, "reserved"),
    ({"web": "h"}, {}, "must be an object"),
    ({"web": {"hostname": "h"}}, {"default_host": "nope"}, "default_host 'nope'"),
    ({}, {"version": 2}, "version 2"),
    ({}, {"extra": 1}, "unknown top-level field 'extra'"),
])
def test_bad_file_structure(hosts_path: Path, hosts: dict, top: dict, expect: str) -> None:
    _write(hosts_path, hosts, **top)
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(")):
        store.load_hosts(hosts_path)


def test_not_json_at_all(hosts_path: Path) -> None:
    hosts_path.parent.mkdir()
    hosts_path.write_text("{hosts: [")
    with pytest.raises(ConfigError, match="not valid JSON"):
        store.load_hosts(hosts_path)


def test_failed_change_writes_nothing(hosts_path: Path) -> None:
    store.change_hosts(lambda h: h.with_host("a", HostConfig.from_dict({"hostname": "a"})),
                       hosts_path)
    before = hosts_path.read_bytes()

    def boom(_h: HostsFile) -> HostsFile:
        raise ConfigError("no")

    with pytest.raises(ConfigError):
        store.change_hosts(boom, hosts_path)
    assert hosts_path.read_bytes() == before


def test_remove_default_clears_it() -> None:
    hosts = HostsFile({"a": HostConfig.from_dict({"hostname": "a"})}).with_default("a")
    assert hosts.without_host("a").default_host is None
    assert hosts.without_host("b").default_host == "a"


def test_changed_validates_and_clears() -> None:
    config = HostConfig.from_dict({"hostname": "a", "user": "u", "port": 2})
    assert config.changed(user=None).user is None
    with pytest.raises(ValueError):
        config.changed(port=0)
    assert config.changed(groups=["x", "x", "y"]).groups == ("x", "y")


def test_resolve_host_and_target() -> None:
    hosts = HostsFile({"web": HostConfig.from_dict({"hostname": "w"})})
    assert store.resolve_host("web", hosts).config.hostname == "w"
    with pytest.raises(store.UnknownHostError) as err:
        store.resolve_host("nope", hosts)
    assert "Known hosts: web" in (err.value.hint or "")
    assert store.resolve_target(None, False, hosts) is None
    assert store.resolve_target("web", False, hosts).name == "web"
    assert store.resolve_target("web", True, hosts) is None
    assert store.resolve_target("local", False, hosts.with_default("web")) is None
    assert store.resolve_target(None, False, hosts.with_default("web")).name == "web"
