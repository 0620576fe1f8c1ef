"""The config.json schema. Field names follow the original occ where they exist.

msgspec validates it: strict types, unknown keys refused, and an import cost of a few
milliseconds, which keeps `occ config show` well under its start-up budget.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

import msgspec

from opencode_cloud.config.masking import mask_env_entry
from opencode_cloud.config.mounts import Mount, check_mounts

DEFAULT_OPENCODE_VERSION = "1.18.33"
# \Z, not $ (which also matches before a final newline); re.ASCII: \d is 0-9 only.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?\Z", re.ASCII)
# A Docker image reference: [registry[:port]/]path[:tag][@digest], no spaces or shell syntax.
IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*\Z")
# Debian policy: lowercase letters, digits, + - . ; two characters at least, first alphanumeric.
DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+\Z", re.ASCII)
MAX_IMAGE_PACKAGES = 200
MEMORY = re.compile(r"^\d+[bkmg]?\Z", re.IGNORECASE | re.ASCII)

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Seconds = Annotated[int, msgspec.Meta(ge=1, le=3600)]


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Validated settings. Unknown keys are errors, never silently ignored."""

    opencode_web_port: Port = 3000
    bind_address: str = "127.0.0.1"
    cockpit_enabled: bool = False
    cockpit_port: Port = 9090
    container_env: list[str] = msgspec.field(default_factory=list)
    image: str = "opencode-cloud-sandbox"
    image_source: Literal["build", "prebuilt", "ship"] = "build"
    opencode_version: str = DEFAULT_OPENCODE_VERSION
    # "auto": the trust store of the machine occ runs on; "none"; or a PEM file's path
    # (image/trust.py). Behind a TLS-inspecting proxy, builds then work out of the box.
    extra_ca_certs: str | None = "auto"
    memory_limit: str | None = "4g"
    # Debian packages added to the image (a build input: a change rebuilds it).
    image_packages: list[str] = msgspec.field(default_factory=list)
    # A Dockerfile on this machine built on top of occ's image (image/custom.py).
    image_dockerfile: str | None = None
    # Providers whose login redirects the browser to localhost (OpenAI 1455, a Gemini
    # plugin 8085): occ open --host forwards these from here into the sandbox.
    oauth_callback_ports: list[Port] = msgspec.field(default_factory=lambda: [1455, 8085])
    # The watchdog in the container (image/entrypoint.sh): restarts a wedged or bloated
    # opencode without any occ command running.
    watchdog: bool = True
    watchdog_interval: Annotated[int, msgspec.Meta(ge=2, le=3600)] = 10
    watchdog_timeout: Seconds = 5
    watchdog_failures: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    watchdog_memory_percent: Annotated[int, msgspec.Meta(ge=10, le=100)] = 90
    # Host folders bind-mounted into the sandbox ("HOST:CONTAINER[:ro]", config/mounts.py).
    # Paths belong to one machine: config.json's are this machine's, a remote host has
    # its own in hosts.json (settings.mounts).
    mounts: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        # msgspec reports a ValueError raised here as a ValidationError without a path,
        # so each message names its key itself.
        try:
            ipaddress.ip_address(self.bind_address)
            if "%" in self.bind_address:  # a zone id ('fe80::1%eth0') may hold anything
                raise ValueError
        except ValueError:
            invalid(
                "bind_address",
                "must be an IPv4 or IPv6 address such as 127.0.0.1",
                self.bind_address,
            )
        for entry in self.container_env:
            name, sep, _ = entry.partition("=")
            if not sep or not ENV_NAME.match(name):
                invalid("container_env",
                        f"entry {mask_env_entry(entry)!r} must look like KEY=value")
        for key, text in (("extra_ca_certs", self.extra_ca_certs),
                          ("image_dockerfile", self.image_dockerfile),
                          *(("container_env", entry) for entry in self.container_env)):
            # NUL fits no path or environment; a lone surrogate cannot even be printed
            if text is not None and any(ch == "\0" or "\ud800" <= ch <= "\udfff" for ch in text):
                shown = mask_env_entry(text) if key == "container_env" else text
                invalid(key, "must not hold NUL or unpaired surrogates", shown)
        if not IMAGE_REF.match(self.image):
            invalid(
                "image",
                "must be a Docker image reference such as opencode-cloud-sandbox",
                self.image,
            )
        if not VERSION.match(self.opencode_version):
            invalid(
                "opencode_version",
                "must be a release version such as 1.18.33",
                self.opencode_version,
            )
        self._check_image_packages()
        if self.memory_limit is not None and not MEMORY.match(self.memory_limit):
            invalid("memory_limit", "must be a size such as 4g or 2048m", self.memory_limit)
        try:
            check_mounts(self.mounts)
        except ValueError as exc:
            invalid("mounts", str(exc))

    @property
    def mount_list(self) -> list[Mount]:
        """The ``mounts`` entries, parsed (they were checked on load)."""
        return check_mounts(self.mounts)

    def _check_image_packages(self) -> None:
        seen: set[str] = set()
        for name in self.image_packages:
            if not DEBIAN_PACKAGE.match(name):
                invalid("image_packages", "entries must be Debian package names such as "
                        "python3 or build-essential (lowercase letters, digits, + - .)", name)
            if name in seen:
                invalid("image_packages", "names a package twice", name)
            seen.add(name)
        if len(self.image_packages) > MAX_IMAGE_PACKAGES:
            invalid("image_packages", f"holds more than {MAX_IMAGE_PACKAGES} packages")

    @property
    def watchdog_settings(self) -> list[int] | None:
        """What the watchdog runs with (None: off), for the container and its summary."""
        if not self.watchdog:
            return None
        return [self.watchdog_interval, self.watchdog_timeout, self.watchdog_failures,
                self.watchdog_memory_percent]

    @property
    def exposed_to_network(self) -> bool:
        return not is_loopback(self.bind_address)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


FIELDS: tuple[str, ...] = Config.__struct_fields__
# Settings that name things of one machine: a remote host never inherits config.json's.
MACHINE_KEYS: tuple[str, ...] = ("mounts",)


def invalid(key: str, message: str, value: Any = msgspec.UNSET) -> None:
    got = "" if value is msgspec.UNSET else f" (got {value!r})"
    raise ValueError(f"key '{key}' is invalid: {message}{got}")


def is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback
