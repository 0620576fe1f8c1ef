"""ssh's failures, classified from its stderr (exit status 255), as errors with a hint.

Connection problems (unreachable, refused, timed out, reset, name not resolved) may be
temporary and are retried; authentication, host key and configuration problems are not:
retrying cannot fix them and, for a changed host key, must not hide them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum

from opencode_cloud.errors import OccError


class Problem(Enum):
    UNREACHABLE = "unreachable"
    REFUSED = "connection refused"
    TIMEOUT = "timed out"
    RESET = "connection reset"
    NAME_NOT_RESOLVED = "name not resolved"
    AUTH = "authentication failed"
    HOST_KEY_CHANGED = "host key changed"
    HOST_KEY_UNVERIFIED = "host key not verified"
    CONFIG = "bad ssh configuration"
    OTHER = "ssh failed"


RETRYABLE = frozenset({Problem.UNREACHABLE, Problem.REFUSED, Problem.TIMEOUT, Problem.RESET,
                       Problem.NAME_NOT_RESOLVED})

# Checked in order: the first match wins (a changed key also prints "verification failed").
_PATTERN_TEXT: tuple[tuple[Problem, str], ...] = (
    (Problem.HOST_KEY_CHANGED, r"REMOTE HOST IDENTIFICATION HAS CHANGED|"
                               r"Host key for .* has changed"),
    (Problem.HOST_KEY_UNVERIFIED, r"Host key verification failed|"
                                  r"No \S+ host key is known for"),
    (Problem.CONFIG, r"Bad configuration option|line \d+: |Bad owner or permissions|"
                     r"no argument after keyword|garbage at end of line|"
                     r"Unsupported option|keyword .* extra arguments|"
                     r"terminating, \d+ bad configuration options|"
                     r"Invalid (?:multiplex command|ProxyJump)|"
                     r"Can't open user config file|Cannot execute command-line"),
    (Problem.AUTH, r"Permission denied|Too many authentication failures|"
                   r"No more authentication methods|incorrect passphrase|"
                   r"Authentication failed"),
    (Problem.NAME_NOT_RESOLVED, r"Could not resolve hostname|Name or service not known|"
                                r"nodename nor servname|Temporary failure in name"),
    (Problem.REFUSED, r"Connection refused"),
    (Problem.TIMEOUT, r"timed out|Connection timeout"),
    (Problem.RESET, r"Connection reset|Broken pipe|Connection closed by|"
                    r"kex_exchange_identification|Connection to .* closed"),
    (Problem.UNREACHABLE, r"No route to host|Network is unreachable|"
                          r"Host is unreachable|Network is down"),
)


@functools.cache
def _patterns() -> tuple[tuple[Problem, re.Pattern[str]], ...]:
    """Compiled on first use: most commands never see an ssh failure."""
    return tuple((problem, re.compile(text, re.IGNORECASE)) for problem, text in _PATTERN_TEXT)


def classify(stderr: str) -> Problem:
    for problem, pattern in _patterns():
        if pattern.search(stderr):
            return problem
    return Problem.OTHER


def key_line(stderr: str) -> str:
    """The line of ssh's stderr that says what went wrong (for messages)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for _problem, pattern in _patterns():
        for ln in lines:
            if pattern.search(ln) and not ln.startswith("@"):
                return ln.removeprefix("ssh: ")
    return lines[-1].removeprefix("ssh: ") if lines else "no output from ssh"


_OFFENDING = re.compile(r"Offending \S+ key in (\S+?):(\d+)")


@dataclass(frozen=True)
class Destination:
    """How to name the host in messages and in ``ssh-keygen -R`` hints."""

    name: str
    hostname: str
    port: int | None
    user: str | None
    identity_file: str | None
    known_hosts: str

    @property
    def address(self) -> str:
        return f"{self.hostname}:{self.port or 22}"

    @property
    def known_hosts_name(self) -> str:
        if self.port and self.port != 22:
            return f"[{self.hostname}]:{self.port}"
        return self.hostname


class SshError(OccError):
    """An SSH connection failure, with ``problem`` telling which kind."""

    def __init__(self, message: str, hint: str | None, *, problem: Problem, host: str,
                 stderr: str = "") -> None:
        super().__init__(message, hint)
        self.problem = problem
        self.host = host  # the CLI prefixes the message with [host]
        self.stderr = stderr

    @property
    def retryable(self) -> bool:
        return self.problem in RETRYABLE


def make_error(problem: Problem, stderr: str, dest: Destination, *, batch: bool,
               encrypted_key: bool = False, attempts: int = 1) -> SshError:
    """The message and hint a person needs for ``problem``."""
    line = key_line(stderr)
    retried = f" (after {attempts - 1} retries)" if attempts > 1 else ""
    edit = f"occ host edit {dest.name}"
    if problem in RETRYABLE:
        hints = {
            Problem.REFUSED: "Nothing accepts SSH connections there: is sshd running, and is "
                             f"the port right? ({edit} -p PORT)",
            Problem.TIMEOUT: "No answer: check the address, firewalls and VPN, and the jump "
                             f"host if the host needs one ({edit} -J USER@JUMP).",
            Problem.NAME_NOT_RESOLVED: f"Check the spelling of '{dest.hostname}' or use an IP "
                                       f"address ({edit} --hostname ADDRESS).",
            Problem.UNREACHABLE: "No route to the host: check the network, VPN or jump host.",
            Problem.RESET: "The connection was closed during the handshake: sshd may be "
                           "overloaded, restarting, or refusing this address (MaxStartups, "
                           "fail2ban).",
        }
        return SshError(f"cannot reach {dest.address}: {line}{retried}", hints[problem],
                        problem=problem, host=dest.name, stderr=stderr)
    if problem is Problem.AUTH:
        if encrypted_key and batch:
            key = dest.identity_file
            return SshError(
                f"the key {key} needs its passphrase and there is no terminal to ask for it",
                f"Load it into your agent once with 'ssh-add {key}', or run occ in a terminal "
                "to type the passphrase (asked once per connection).",
                problem=problem, host=dest.name, stderr=stderr)
        who = f"{dest.user}@{dest.hostname}" if dest.user else dest.hostname
        line = re.sub(r"^\S+@\S+: ", "", line)  # ssh's own "user@host: " prefix
        key_hint = (f"the key {dest.identity_file}" if dest.identity_file
                    else "your keys (ssh-agent or ~/.ssh/config)")
        return SshError(
            f"{who} refused {key_hint}: {line}",
            f"Check that the public key is in ~/.ssh/authorized_keys of that user on the "
            f"host, the user name ({edit} -u USER) and the key ({edit} -i KEYFILE). occ "
            "uses keys only, never passwords. If the key has a passphrase, 'ssh-add' it.",
            problem=problem, host=dest.name, stderr=stderr)
    if problem is Problem.HOST_KEY_CHANGED:
        match = _OFFENDING.search(stderr)
        known = match.group(1) if match else dest.known_hosts
        where = f" (line {match.group(2)} of {known})" if match else ""
        return SshError(
            f"the host key of {dest.known_hosts_name} has CHANGED since occ first connected"
            f"{where}; connection refused",
            "Either the server was reinstalled or its keys were replaced, or someone is "
            "intercepting the connection (a man-in-the-middle attack) and could read your "
            "code and credentials. Verify the new key with the server's administrator "
            "(ssh-keygen -lf on the server), then remove the old one with: "
            f"ssh-keygen -R '{dest.known_hosts_name}' -f {known}",
            problem=problem, host=dest.name, stderr=stderr)
    if problem is Problem.HOST_KEY_UNVERIFIED:
        return SshError(
            f"the host key of {dest.known_hosts_name} could not be verified: {line}",
            f"occ accepts a new host's key on first use and refuses unknown changes. Check "
            f"that {dest.known_hosts} is writable, and StrictHostKeyChecking in your ssh "
            "config for the jump host.",
            problem=problem, host=dest.name, stderr=stderr)
    if problem is Problem.CONFIG:
        return SshError(
            f"ssh rejected the configuration: {line}",
            "Fix the line ssh names (in your ~/.ssh/config or OCC_SSH_CONFIG), or the host's "
            f"settings with: {edit}",
            problem=problem, host=dest.name, stderr=stderr)
    return SshError(f"ssh to {dest.address} failed: {line}",
                    "Run the same command with -vv for details, or try: "
                    f"ssh {dest.user + '@' if dest.user else ''}{dest.hostname}",
                    problem=problem, host=dest.name, stderr=stderr)
