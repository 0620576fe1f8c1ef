"""The checks every hosts.json value passes before it can reach an ssh command line."""

from __future__ import annotations

import pytest

from opencode_cloud.hosts import validation as v

pytestmark = pytest.mark.unit

# Values that must never reach ssh, whatever the field.
HOSTILE = [
    "-oProxyCommand=touch /tmp/pwned",
    "-oProxyCommand=sh",
    "host name",
    "host\tname",
    "host\nname",
    "a;b",
    "a|b",
    "a&b",
    "$(id)",
    "`id`",
    "a'b",
    'a"b',
    "a\\b",
    "",
]


@pytest.mark.parametrize("value", ["web1", "prod-1", "a.b_c-d", "X" * 63, "0"])
def test_good_names(value: str) -> None:
    assert v.check_host_name(value) == value
    assert v.check_group(value) == value


@pytest.mark.parametrize("value", [*HOSTILE, "X" * 64, ".hidden", "_x", "a/b", "a:b", "a@b",
                                   "ünï", "a*"])
def test_bad_names(value: str) -> None:
    with pytest.raises(ValueError):
        v.check_host_name(value)
    with pytest.raises(ValueError):
        v.check_group(value)


@pytest.mark.parametrize("value", ["local", "LOCAL", "Local"])
def test_local_is_reserved(value: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        v.check_host_name(value)


@pytest.mark.parametrize("value", ["example.com", "web1", "my_alias", "10.213.1.2", "::1",
                                   "2001:db8::1", "a" * 63 + ".example.com", "host.example."])
def test_good_hostnames(value: str) -> None:
    assert v.check_hostname(value) == value


@pytest.mark.parametrize("value", [*HOSTILE, "[::1]", "fe80::1%eth0", "a..b", "-a.com",
                                   "a-.com", "a" * 64 + ".com", "a" * 254, "host:22",
                                   "user@host", "a/b", "*.example.com", "%h"])
def test_bad_hostnames(value: str) -> None:
    with pytest.raises(ValueError):
        v.check_hostname(value)


@pytest.mark.parametrize("value", ["root", "occ-test", "deploy_1", "first.last", "A"])
def test_good_users(value: str) -> None:
    assert v.check_user(value) == value


@pytest.mark.parametrize("value", [*HOSTILE, "a@b", "a:b", "x" * 33, "-root", ".x", "a/b"])
def test_bad_users(value: str) -> None:
    with pytest.raises(ValueError):
        v.check_user(value)


@pytest.mark.parametrize("value", [1, 22, 2222, 65535])
def test_good_ports(value: int) -> None:
    assert v.check_port(value) == value


@pytest.mark.parametrize("value", [0, -1, 65536, True, "22", 22.0, None])
def test_bad_ports(value: object) -> None:
    with pytest.raises(ValueError):
        v.check_port(value)


@pytest.mark.parametrize("text", ["0", "65536", "-22", "22a", "", " 22", "0x16"])
def test_bad_port_text(text: str) -> None:
    with pytest.raises(ValueError):
        v.parse_port(text)


@pytest.mark.parametrize("value", ["bastion", "user@bastion", "user@bastion:2222",
                                   "a@j1:22,b@j2", "[2001:db8::1]", "u@[2001:db8::1]:2200",
                                   "10.213.1.2"])
def test_good_jump_hosts(value: str) -> None:
    assert v.check_jump_host(value) == value


@pytest.mark.parametrize("value", [*HOSTILE, "a,,b", ",a", "a,", "a,-oProxyCommand=x",
                                   "u@h:0", "u@h:99999", "u@h:port", "2001:db8::1",
                                   "[host]:22", "u;x@h", "ssh://u@h", "a," * 9 + "a",
                                   "@h", "u@"])
def test_bad_jump_hosts(value: str) -> None:
    with pytest.raises(ValueError):
        v.check_jump_host(value)


def test_jump_hop_parts() -> None:
    assert v.split_jump_hop("u@h:2") == ("u", "h", 2)
    assert v.split_jump_hop("h") == (None, "h", None)
    assert v.split_jump_hop("[::1]:3") == (None, "::1", 3)


@pytest.mark.parametrize("value", ["~/.ssh/id_ed25519", "/home/u/.ssh/key", "/k/a+b@c,d=e:f"])
def test_good_identity_files(value: str) -> None:
    assert v.check_identity_file(value) == value


@pytest.mark.parametrize("value", [*HOSTILE, "relative/key", "~other/key", "/a/~/b",
                                   "/key%h", "/key${HOME}", "/a b"])
def test_bad_identity_files(value: str) -> None:
    with pytest.raises(ValueError):
        v.check_identity_file(value)


@pytest.mark.parametrize("value", ["/var/run/docker.sock", "/run/user/1000/docker.sock",
                                   "/run/podman/podman.sock"])
def test_good_docker_sockets(value: str) -> None:
    assert v.check_docker_socket(value) == value


@pytest.mark.parametrize("value", [*HOSTILE, "docker.sock", "/a/../b", "/a:b", "/a b"])
def test_bad_docker_sockets(value: str) -> None:
    with pytest.raises(ValueError):
        v.check_docker_socket(value)


def test_descriptions_are_free_text_on_one_line() -> None:
    assert v.check_description("Prod box; don't `touch` -it $(x)") .startswith("Prod")
    assert v.check_description("") == ""
    for bad in ["two\nlines", "tab\there", "x" * 201, 5]:
        with pytest.raises(ValueError):
            v.check_description(bad)
