"""Names of the Docker objects that make up one opencode service."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from opencode_cloud.errors import OccError

INSTANCE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")
HOME = "/home/opencoder"

# volume role -> mount point in the container. opencode keeps its state in the XDG folders of
# the process's HOME; its cache (~/.cache/opencode) is disposable and not kept.
VOLUME_MOUNTS = {
    "workspace": f"{HOME}/workspace",
    "data": f"{HOME}/.local/share/opencode",
    "config": f"{HOME}/.config/opencode",
    "state": f"{HOME}/.local/state/opencode",
}


@dataclass(frozen=True)
class ServiceNames:
    instance: str = "opencode-cloud"

    @classmethod
    def from_environment(cls) -> ServiceNames:
        """OCC_INSTANCE runs a second, separate service on the same Engine (tests use it)."""
        instance = os.environ.get("OCC_INSTANCE", "opencode-cloud")
        if not INSTANCE_RE.match(instance):
            raise OccError(
                f"OCC_INSTANCE {instance!r} is not a valid name",
                hint="Use lowercase letters, digits, '.', '_' or '-'.",
            )
        return cls(instance)

    @property
    def container(self) -> str:
        return f"{self.instance}-sandbox"

    def volume(self, role: str) -> str:
        return f"{self.instance}-{role}"

    @property
    def volumes(self) -> dict[str, str]:
        """volume name -> mount point"""
        return {self.volume(role): path for role, path in VOLUME_MOUNTS.items()}

    @property
    def operation_marker(self) -> str:
        """A volume that exists only while an update or a recreating start is under way
        (service/switch.py): not one of the service's volumes, never mounted."""
        return f"{self.instance}-operation"

    @property
    def credentials_volume(self) -> str:
        # Credentials live as labels of the data volume: on the target, readable by whoever
        # may use its Docker (root-equivalent anyway), never in a world-readable file, and
        # gone only when the person deletes the volumes with --force.
        return self.volume("data")
