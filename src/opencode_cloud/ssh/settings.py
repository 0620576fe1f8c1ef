"""Where the SSH layer reads and keeps its files, and the knobs set through the environment.

ssh takes ``~/.ssh`` from the account's home in the password database, not from ``$HOME``,
so the defaults below do the same; tests and unusual setups point occ elsewhere with:

- ``OCC_SSH_CONFIG``: the user ssh config that occ's generated config includes
  (default ``~/.ssh/config``; ``none`` includes no user config at all);
- ``OCC_SSH_KNOWN_HOSTS``: the known_hosts file for host keys (default: ssh's own,
  ``~/.ssh/known_hosts``, unless your ssh config says otherwise);
- ``OCC_SSH_CONTROL_DIR``: the private folder for master sockets and generated configs
  (default ``$XDG_RUNTIME_DIR/occ``, else ``/tmp/occ-UID``);
- ``OCC_SSH_CONTROL_PERSIST``: how long an idle master connection stays open
  (default ``10m``; seconds or an sshd_config time such as ``90s``, ``5m``, ``1h``);
- ``OCC_SSH_RETRY_DELAY``: the first retry delay in seconds (default 1; doubles each time).
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from opencode_cloud.errors import ConfigError

SYSTEM_SSH_CONFIG = Path("/etc/ssh/ssh_config")
DEFAULT_CONTROL_PERSIST = "10m"
DEFAULT_RETRY_DELAY = 1.0
RETRIES = 3
# sun_path is 108 bytes on Linux and 104 on macOS; ssh appends ".XXXXXXXXXXXXXXXX" while
# it binds. Our socket names are 24 characters, so the folder may have at most this many.
MAX_CONTROL_DIR = 104 - 1 - 24 - 17 - 1
DURATION_RE = re.compile(r"^(?:\d+[sSmMhHdDwW]?)+$")
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+@,=:~-]*$")


def account_home() -> Path:
    """The home folder ssh itself uses: the password database's, not $HOME."""
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:  # an account without a passwd entry (some containers)
        return Path(os.path.expanduser("~"))


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = Path.cwd() / path
    text = str(path)
    if any(ch.isspace() or ch in "\"'%$`\\" or ord(ch) < 32 for ch in text):
        raise ConfigError(f"{name}={value!r} holds spaces, quotes, '%' or '$'",
                          hint=f"Point {name} at a path without them.")
    return path


@dataclass(frozen=True)
class SshSettings:
    user_config: Path | None  # None: include no user config
    known_hosts: Path | None  # None: ssh's own default (or the user's UserKnownHostsFile)
    control_dir: Path
    control_persist: str
    retry_delay: float

    @property
    def known_hosts_for_hints(self) -> Path:
        return self.known_hosts or account_home() / ".ssh" / "known_hosts"


def default_control_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and len(runtime) + 4 <= MAX_CONTROL_DIR:
        return Path(runtime) / "occ"
    return Path(f"/tmp/occ-{os.getuid()}")


def load_settings() -> SshSettings:
    """Read the ``OCC_SSH_*`` environment (validated: these values reach ssh too)."""
    raw_config = os.environ.get("OCC_SSH_CONFIG", "").strip()
    if raw_config.lower() == "none":
        user_config: Path | None = None
    else:
        user_config = _env_path("OCC_SSH_CONFIG") or account_home() / ".ssh" / "config"
    control_dir = _env_path("OCC_SSH_CONTROL_DIR") or default_control_dir()
    if len(str(control_dir)) > MAX_CONTROL_DIR or not SAFE_PATH_RE.match(str(control_dir)):
        raise ConfigError(
            f"the folder for SSH control sockets {control_dir} is too long or unusual "
            f"(unix sockets allow about 104 characters)",
            hint=f"Set OCC_SSH_CONTROL_DIR to a short private path (at most "
            f"{MAX_CONTROL_DIR} characters), e.g. /tmp/occ-{os.getuid()}.",
        )
    persist = os.environ.get("OCC_SSH_CONTROL_PERSIST", "").strip() or DEFAULT_CONTROL_PERSIST
    if not DURATION_RE.match(persist) or not any(ch in "123456789" for ch in persist):
        raise ConfigError(
            f"OCC_SSH_CONTROL_PERSIST={persist!r} is not a positive time",
            hint="Use seconds or an sshd_config time such as 90s, 5m or 1h.",
        )
    delay_text = os.environ.get("OCC_SSH_RETRY_DELAY", "").strip()
    try:
        retry_delay = float(delay_text) if delay_text else DEFAULT_RETRY_DELAY
    except ValueError:
        retry_delay = -1.0
    if not 0 <= retry_delay <= 60:
        raise ConfigError(f"OCC_SSH_RETRY_DELAY={delay_text!r} is not 0 to 60 seconds")
    return SshSettings(
        user_config=user_config,
        known_hosts=_env_path("OCC_SSH_KNOWN_HOSTS"),
        control_dir=control_dir,
        control_persist=persist,
        retry_delay=retry_delay,
    )


def ensure_control_dir(path: Path) -> Path:
    """Create the private folder (0700) or check that an existing one is really ours.

    It may live in the shared /tmp, so refuse a symlink, a folder of another account
    or one that others can write to (they could plant a socket or a config there).
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path.parent, 0o700, exist_ok=True)
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    problem = None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        problem = "is not a plain folder (a symlink or a file)"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another account (uid {info.st_uid})"
    elif info.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours but too open: fix it
    if problem:
        raise ConfigError(
            f"occ's private SSH folder {path} {problem}",
            hint="Remove it (or set OCC_SSH_CONTROL_DIR to another private folder) and retry.",
        )
    return path
