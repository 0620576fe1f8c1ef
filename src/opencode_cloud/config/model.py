"""The config.json schema. Field names follow the original occ where they exist."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_OPENCODE_VERSION = "1.18.33"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
# A Docker image reference: [registry[:port]/]path[:tag][@digest], no spaces or shell syntax.
IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$")
MEMORY = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)

Port = Field(ge=1, le=65535)


class Config(BaseModel):
    """Validated settings. Unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)

    opencode_web_port: int = Field(default=3000, ge=1, le=65535)
    bind_address: str = "127.0.0.1"
    cockpit_enabled: bool = False
    cockpit_port: int = Field(default=9090, ge=1, le=65535)
    container_env: list[str] = Field(default_factory=list)
    image: str = "opencode-cloud-sandbox"
    image_source: Literal["build", "prebuilt"] = "build"
    opencode_version: str = DEFAULT_OPENCODE_VERSION
    extra_ca_certs: str | None = None
    memory_limit: str | None = "4g"

    @field_validator("bind_address")
    @classmethod
    def _bind_is_ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IPv4 or IPv6 address such as 127.0.0.1") from None
        return value

    @field_validator("container_env")
    @classmethod
    def _env_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            name, sep, _ = entry.partition("=")
            if not sep or not ENV_NAME.match(name):
                raise ValueError(f"entry {entry!r} must look like KEY=value")
        return value

    @field_validator("image")
    @classmethod
    def _image_ref(cls, value: str) -> str:
        if not IMAGE_REF.match(value):
            raise ValueError("must be a Docker image reference such as opencode-cloud-sandbox")
        return value

    @field_validator("opencode_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not VERSION.match(value):
            raise ValueError("must be a release version such as 1.18.33")
        return value

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and not MEMORY.match(value):
            raise ValueError("must be a size such as 4g or 2048m")
        return value

    @property
    def exposed_to_network(self) -> bool:
        return not ipaddress.ip_address(self.bind_address).is_loopback


def is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback
