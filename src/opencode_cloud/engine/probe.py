"""``occ host test``: what to ask a host (one remote shell command) and what the answer means.

The builders and parsers are pure; :func:`probe_host` is the thin part that runs them
over a :class:`~opencode_cloud.ssh.connection.HostConnection`. Everything is asked in a
single command so that a test over an open connection costs one round trip or two.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from opencode_cloud.distros.os_release import OsRelease
from opencode_cloud.distros.plans import DOCKERD_INSTALLED, MANUAL_URL, typed_package_commands
from opencode_cloud.errors import OccError

MARKER = "occ-probe-v1"

_SCRIPT = r"""sock=__SOCK__
echo __MARKER__
[ -r /etc/os-release ] &&
  sed -nE 's/^(PRETTY_NAME|NAME|VERSION_ID|ID|ID_LIKE)=/os_\1=/p' /etc/os-release
echo "uname=$(uname -srm)"
echo "whoami=${LOGNAME:-${USER:-$(id -un)}}"
if command -v docker >/dev/null 2>&1; then echo cli=yes; else echo cli=no; fi
if __DOCKERD_INSTALLED__; then echo engine=yes; else echo engine=no; fi
if [ -S "$sock" ]; then
  echo socket=yes
  if [ -r "$sock" ] && [ -w "$sock" ]; then echo socket_access=yes; else echo socket_access=no; fi
else
  echo socket=no
fi
"""

# Only when the Engine did not answer through the forwarded socket: does the CLI get an
# answer there (then SSH forwarding is what fails), and what does it say?
_CLI_SCRIPT = r"""out=$(DOCKER_HOST="unix://$1" docker version --format '{{.Server.Version}}' 2>&1)
echo "docker_rc=$?"
echo "docker_out=$(printf '%s' "$out" | tr '\n' ' ')"
"""


# Does Docker start when the host boots? Asked by `occ host test` only (one more round
# trip): a service that comes back by itself after a reboot needs it. Each init system has
# its own record: systemd's unit (or socket) enablement, OpenRC's runlevels, SysV's S links.
_BOOT_SCRIPT = r"""echo __MARKER__
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  echo init=systemd
  if systemctl is-enabled --quiet docker.service 2>/dev/null \
     || systemctl is-enabled --quiet docker.socket 2>/dev/null; then
    echo boot=enabled; else echo boot=disabled; fi
elif command -v rc-update >/dev/null 2>&1; then
  echo init=openrc
  if rc-update show 2>/dev/null | grep -Eq '^[[:space:]]*docker[[:space:]]*[|].*(boot|default)'
  then echo boot=enabled; else echo boot=disabled; fi
elif [ -e /etc/init.d/docker ]; then
  echo init=sysv
  set -- /etc/rc[2345].d/S[0-9]*docker
  if [ -e "$1" ]; then echo boot=enabled; else echo boot=disabled; fi
else
  echo init=unknown
  echo boot=unknown
fi
"""

BOOT_FIXES = {
    "systemd": "sudo systemctl enable docker",
    "openrc": "sudo rc-update add docker default",
    "sysv": "sudo update-rc.d docker defaults",
}


@dataclass(frozen=True)
class BootCheck:
    """Whether the host's init system starts Docker at boot (``enabled``: None = unknown)."""

    init: str
    enabled: bool | None

    @property
    def state(self) -> str:
        return {True: "enabled", False: "disabled", None: "unknown"}[self.enabled]

    @property
    def fix(self) -> str | None:
        return BOOT_FIXES.get(self.init)


def boot_command() -> str:
    return shlex.join(["sh", "-c", _BOOT_SCRIPT.replace("__MARKER__", MARKER)])


def parse_boot(stdout: str) -> BootCheck:
    probe = parse_probe(stdout)
    enabled = {"enabled": True, "disabled": False}.get(probe.get("boot"))
    init = probe.get("init")
    return BootCheck(init if init in (*BOOT_FIXES, "unknown") else "unknown", enabled)


def probe_command(docker_socket: str) -> str:
    """The remote command: POSIX sh, whatever the login shell; the socket path is quoted."""
    script = (_SCRIPT.replace("__SOCK__", shlex.quote(docker_socket))
              .replace("__MARKER__", MARKER).replace("__DOCKERD_INSTALLED__", DOCKERD_INSTALLED))
    return shlex.join(["sh", "-c", script])


def docker_cli_command(docker_socket: str) -> str:
    """Ask the host's docker CLI for the server version (the socket is passed as $1)."""
    return shlex.join(["sh", "-c", "echo " + MARKER + "\n" + _CLI_SCRIPT, "sh", docker_socket])


def engine_info(answer: Any) -> dict[str, Any] | None:
    """The Engine's ``GET /info`` answer (an EngineAnswer) -> its JSON object (plus
    ``ApiVersion`` from the response header), or None if it is not a good answer."""
    try:
        payload = answer.json()
    except ValueError:
        return None
    if answer.status != 200 or not isinstance(payload, dict) or "ServerVersion" not in payload:
        return None
    payload.setdefault("ApiVersion", answer.headers.get("api-version"))
    return payload


@dataclass(frozen=True)
class ProbeResult:
    values: dict[str, str]

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    @property
    def os_name(self) -> str:
        name = self.get("os_PRETTY_NAME") or " ".join(
            part for part in (self.get("os_NAME"), self.get("os_VERSION_ID")) if part)
        return name or self.kernel or "unknown"

    @property
    def kernel(self) -> str:
        return " ".join(self.get("uname").split()[:2])

    @property
    def arch(self) -> str:
        words = self.get("uname").split()
        return words[-1] if len(words) >= 3 else ""

    @property
    def os_release(self) -> OsRelease:
        return OsRelease(id=self.get("os_ID").lower() or "linux",
                         id_like=tuple(self.get("os_ID_LIKE").lower().split()),
                         version_id=self.get("os_VERSION_ID"), pretty_name=self.os_name)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_probe(stdout: str) -> ProbeResult:
    """``key=value`` lines after the marker (a login banner before it is ignored)."""
    lines = stdout.splitlines()
    if MARKER not in lines:
        raise ValueError("the host's answer did not contain occ's probe marker")
    values: dict[str, str] = {}
    for line in lines[lines.index(MARKER) + 1:]:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = _unquote(value.strip())
    return ProbeResult(values)


class DockerState(Enum):
    OK = "ok"
    MISSING = "not installed"
    NOT_RUNNING = "daemon not running"
    PERMISSION = "permission denied"
    NO_FORWARDING = "socket not forwardable over SSH"


@dataclass(frozen=True)
class DockerCheck:
    state: DockerState
    version: str | None = None
    api_version: str | None = None
    detail: str = ""


def diagnose_docker(probe: ProbeResult, engine: dict[str, Any] | None,
                    cli: ProbeResult | None = None) -> DockerCheck:
    """What the host's answers mean. ``engine``: the API's /info through the forwarded
    socket (None: no answer); ``cli``: the docker CLI's answer, asked only then."""
    if engine is not None:
        return DockerCheck(DockerState.OK, version=str(engine.get("ServerVersion")),
                           api_version=engine.get("ApiVersion"))
    has_cli = probe.get("cli") == "yes"
    has_engine = probe.get("engine") == "yes"
    socket = probe.get("socket") == "yes"
    if socket and probe.get("socket_access") != "yes":
        return DockerCheck(DockerState.PERMISSION)
    if not has_cli and not has_engine and not socket:
        return DockerCheck(DockerState.MISSING)
    if not socket:
        return DockerCheck(DockerState.NOT_RUNNING, detail="no socket")
    out = cli.get("docker_out") if cli else ""
    if cli is not None and cli.get("docker_rc") == "0" and out:
        return DockerCheck(DockerState.NO_FORWARDING, version=out.split()[0])
    lowered = out.lower()
    if "permission denied" in lowered:
        return DockerCheck(DockerState.PERMISSION, detail=out)
    return DockerCheck(DockerState.NOT_RUNNING,
                       detail=out or "the socket exists but nothing answers on it")


def install_hint(os_release: OsRelease) -> str:
    """Installing Docker by hand, in the words of the plan occ itself would run."""
    typed = typed_package_commands(os_release)
    how = typed or f"your distribution's Docker Engine package (see {MANUAL_URL})"
    return f"install Docker Engine on the host yourself: {how}; then start it and add " \
           "your user to the docker group."


class DockerProblem(OccError):
    """SSH works but Docker on the host cannot be used (yet)."""

    def __init__(self, message: str, hint: str, *, state: DockerState, host: str) -> None:
        super().__init__(message, hint)
        self.state = state
        self.host = host


def docker_problem(check: DockerCheck, probe: ProbeResult, host: str, socket: str) -> DockerProblem:
    user = probe.get("whoami") or "this user"
    detail = f" ({check.detail.strip()})" if check.detail.strip() else ""
    finish = f"occ host install-docker {host}"
    if check.state is DockerState.MISSING:
        return DockerProblem(
            "Docker is not installed on the host",
            f"Let occ install it: {finish} (it shows the commands and asks first; --yes "
            "for scripts). Or " + install_hint(probe.os_release),
            state=check.state, host=host)
    if check.state is DockerState.NOT_RUNNING:
        return DockerProblem(
            f"Docker is installed but its daemon is not running (no answer on {socket}){detail}",
            f"Let occ finish the setup: {finish}. Or start it on the host: sudo systemctl "
            "enable --now docker (or sudo service docker start). For rootless Docker or "
            f"Podman give its socket: occ host edit {host} --docker-socket PATH",
            state=check.state, host=host)
    if check.state is DockerState.NO_FORWARDING:
        return DockerProblem(
            f"Docker {check.version} runs, but sshd on the host does not let occ forward "
            f"its socket {socket}",
            "occ reaches Docker through an SSH-forwarded socket: set "
            "'AllowStreamLocalForwarding yes' (the default) in the host's sshd_config and "
            "reload sshd.",
            state=check.state, host=host)
    if check.state is DockerState.PERMISSION:
        return DockerProblem(
            f"{user} may not use the Docker socket {socket}{detail}",
            f"On the host: sudo usermod -aG docker {user}; then run 'occ host disconnect "
            f"{host}' so the next connection logs in with the new group. Or let occ do "
            f"both: {finish}",
            state=check.state, host=host)
    raise AssertionError(f"no problem to explain for Docker state {check.state}")


@dataclass
class HostReport:
    """What ``occ host test`` found. ``docker_problem`` is None when Docker is usable."""

    name: str
    new_connection: bool
    connect_ms: float
    command_ms: float
    os_name: str = ""
    arch: str = ""
    remote_user: str = ""
    docker: DockerCheck | None = None
    docker_socket: str = ""
    problem: DockerProblem | None = None
    boot: BootCheck | None = None  # asked only by `occ host test` (with_boot)

    def to_json(self) -> dict[str, Any]:
        docker = self.docker
        return {
            "name": self.name,
            "ssh": {"reachable": True, "new_connection": self.new_connection,
                    "connect_ms": round(self.connect_ms, 1),
                    "docker_api_round_trip_ms": round(self.command_ms, 1)},
            "os": self.os_name, "arch": self.arch, "remote_user": self.remote_user,
            "docker": {
                "state": docker.state.value if docker else None,
                "server_version": docker.version if docker else None,
                "api_version": docker.api_version if docker else None,
                "socket": self.docker_socket,
                "socket_usable": bool(docker and docker.state is DockerState.OK),
                "problem": self.problem.message if self.problem else None,
                # asked by `host test` only: "enabled", "disabled" or "unknown"
                **({"at_boot": self.boot.state, "init": self.boot.init} if self.boot else {}),
            },
        }


def query_engine(local_socket: str, path: str = "/info",
                 timeout: float = 10.0) -> dict[str, Any] | None:
    """``GET /info`` on a (forwarded) Engine socket; None if nothing good answers."""
    from opencode_cloud.engine.http import engine_get

    try:
        return engine_info(engine_get(local_socket, path, timeout))
    except OSError:
        return None


def probe_host(conn: Any, with_boot: bool = False) -> HostReport:
    """Connect (or reuse the master) and check the host: raises SshError if SSH fails.

    First the Engine is asked for /info through a socket the master forwards (the way occ
    talks to Docker later): when it answers, that one request (two round trips over an open
    connection) proves SSH, the socket permission and the Engine, and names the OS (the
    Engine reads it from the host's /etc/os-release). Only when it does not answer does a
    shell probe find out why (not installed, not running, permission, forwarding).
    ``with_boot``: also ask whether Docker starts at boot (one more command).
    """
    started = time.perf_counter()
    new = conn.ensure_master()
    connected = time.perf_counter()
    socket = conn.host.config.effective_docker_socket
    engine = query_engine(conn.docker_forward(socket))
    done = time.perf_counter()
    report = HostReport(
        name=conn.host.name, new_connection=new,
        connect_ms=(connected - started) * 1000, command_ms=(done - connected) * 1000,
        docker_socket=socket, remote_user=conn.host.config.user or "",
    )
    if engine is not None:
        report.os_name = str(engine.get("OperatingSystem") or engine.get("OSType") or "")
        report.arch = str(engine.get("Architecture") or "")
        report.docker = diagnose_docker(ProbeResult({}), engine)
        if with_boot:
            report.boot = probe_boot(conn)
        return report
    probe = _parse_answer(conn.run(probe_command(socket), timeout=60))
    cli = None
    if probe.get("cli") == "yes" and probe.get("socket") == "yes":
        cli = _parse_answer(conn.run(docker_cli_command(socket), timeout=60))
    report.os_name, report.arch = probe.os_name, probe.arch
    report.remote_user = probe.get("whoami") or report.remote_user
    report.docker = diagnose_docker(probe, None, cli)
    report.problem = docker_problem(report.docker, probe, conn.host.name, socket)
    if with_boot and probe.get("engine") == "yes":
        report.boot = probe_boot(conn)
    return report


def probe_boot(conn: Any) -> BootCheck:
    answer = conn.run(boot_command(), timeout=60)
    try:
        return parse_boot(answer.stdout.decode(errors="replace"))
    except ValueError:
        return BootCheck("unknown", None)


def _parse_answer(proc: Any) -> ProbeResult:
    try:
        return parse_probe(proc.stdout.decode(errors="replace"))
    except ValueError:
        raise OccError(
            f"the host did not run occ's check (exit status {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()[:300]}",
            hint="The account's login shell must run 'sh -c …' commands; check it.",
        ) from None
