"""ssh's stderr (real samples from OpenSSH 9.2) classified, with messages and hints."""

from __future__ import annotations

import pytest

from opencode_cloud.ssh.errors import RETRYABLE, Destination, Problem, classify, make_error

pytestmark = pytest.mark.unit

CHANGED = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:nEnSrV0pUBA4x30pU5SdhGTJev/ZjDW6IGVqpf4fVME.
Please contact your system administrator.
Add correct host key in /tmp/kh_bad to get rid of this message.
Offending ED25519 key in /tmp/kh_bad:1
  remove with:
  ssh-keygen -f "/tmp/kh_bad" -R "10.213.1.2"
Host key for 10.213.1.2 has changed and you have requested strict checking.
Host key verification failed.
"""

SAMPLES = {
    "ssh: connect to host 10.213.9.2 port 22: Connection refused": Problem.REFUSED,
    "ssh: connect to host 10.9.9.9 port 22: Connection timed out": Problem.TIMEOUT,
    "ssh: connect to host 10.9.9.9 port 22: No route to host": Problem.UNREACHABLE,
    "ssh: connect to host 10.9.9.9 port 22: Network is unreachable": Problem.UNREACHABLE,
    "kex_exchange_identification: read: Connection reset by peer\r\n"
    "Connection reset by 10.213.1.2 port 22": Problem.RESET,
    "kex_exchange_identification: Connection closed by remote host\r\n"
    "Connection closed by UNKNOWN port 65535": Problem.RESET,
    # a jump host that refuses: the refusal is what matters
    "ssh: connect to host 10.213.9.2 port 22: Connection refused\r\n"
    "kex_exchange_identification: Connection closed by remote host\r\n"
    "Connection closed by UNKNOWN port 65535": Problem.REFUSED,
    "ssh: Could not resolve hostname nope.invalid: Name or service not known":
        Problem.NAME_NOT_RESOLVED,
    "ssh: Could not resolve hostname x: Temporary failure in name resolution":
        Problem.NAME_NOT_RESOLVED,
    "Warning: Permanently added '10.213.1.2' (ED25519) to the list of known hosts.\r\n"
    "occ-test@10.213.1.2: Permission denied (publickey).": Problem.AUTH,
    "Received disconnect from 10.0.0.1 port 22:2: Too many authentication failures":
        Problem.AUTH,
    CHANGED: Problem.HOST_KEY_CHANGED,
    "No ED25519 host key is known for 10.213.1.2 and you have requested strict checking.\r\n"
    "Host key verification failed.": Problem.HOST_KEY_UNVERIFIED,
    "command-line: line 0: Bad configuration option: bogus": Problem.CONFIG,
    "/home/u/.ssh/config: line 3: Bad configuration option: hostnme\r\n"
    "/home/u/.ssh/config: terminating, 1 bad configuration options": Problem.CONFIG,
    "Bad owner or permissions on /home/u/.ssh/config": Problem.CONFIG,
    "something nobody has seen before": Problem.OTHER,
}


@pytest.mark.parametrize(("stderr", "problem"), SAMPLES.items())
def test_classify(stderr: str, problem: Problem) -> None:
    assert classify(stderr) is problem


def test_only_connection_problems_are_retried() -> None:
    assert set(RETRYABLE) == {Problem.UNREACHABLE, Problem.REFUSED, Problem.TIMEOUT, Problem.RESET,
                         Problem.NAME_NOT_RESOLVED}


DEST = Destination(name="web1", hostname="10.213.1.2", port=None, user="occ-test",
                   identity_file="~/.ssh/id_web", known_hosts="/home/u/.ssh/known_hosts")


def test_host_key_changed_explains_risk_and_fix() -> None:
    err = make_error(Problem.HOST_KEY_CHANGED, CHANGED, DEST, batch=True)
    assert err.host == "web1" and not err.retryable
    assert "CHANGED" in err.message and "line 1 of /tmp/kh_bad" in err.message
    assert "man-in-the-middle" in err.hint
    assert "ssh-keygen -R '10.213.1.2' -f /tmp/kh_bad" in err.hint


def test_host_key_hint_on_other_port_uses_brackets() -> None:
    dest = Destination("w", "10.0.0.1", 2222, None, None, "/kh")
    err = make_error(Problem.HOST_KEY_CHANGED, "Host key for [10.0.0.1]:2222 has changed",
                     dest, batch=True)
    assert "ssh-keygen -R '[10.0.0.1]:2222' -f /kh" in err.hint


def test_auth_failure_hints() -> None:
    stderr = "occ-test@10.213.1.2: Permission denied (publickey)."
    err = make_error(Problem.AUTH, stderr, DEST, batch=True)
    assert "refused the key ~/.ssh/id_web" in err.message
    assert "authorized_keys" in err.hint
    locked = make_error(Problem.AUTH, stderr, DEST, batch=True, encrypted_key=True)
    assert "passphrase" in locked.message and "no terminal" in locked.message
    assert "ssh-add ~/.ssh/id_web" in locked.hint


def test_connection_failure_after_retries() -> None:
    err = make_error(Problem.REFUSED, "ssh: connect to host 10.213.9.2 port 22: Connection "
                     "refused", DEST, batch=True, attempts=4)
    assert err.retryable
    assert err.message == ("cannot reach 10.213.1.2:22: connect to host 10.213.9.2 port 22: "
                           "Connection refused (after 3 retries)")
    assert "sshd" in err.hint


def test_every_problem_has_a_message_and_hint() -> None:
    for problem in Problem:
        err = make_error(problem, "", DEST, batch=False)
        assert err.message and err.hint and err.problem is problem
