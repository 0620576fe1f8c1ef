"""What every service operation needs: the Engine, the settings, the names, the reporter."""

from __future__ import annotations

from dataclasses import dataclass

from opencode_cloud.config.model import Config
from opencode_cloud.engine.endpoint import DockerEndpoint
from opencode_cloud.report import SILENT, Reporter
from opencode_cloud.service.names import ServiceNames


@dataclass
class ServiceContext:
    endpoint: DockerEndpoint
    config: Config
    names: ServiceNames
    reporter: Reporter = SILENT
    # The switch under way (service/switch.py), so a start inside an update shares its marker.
    operation: str | None = None

    @property
    def client(self):
        return self.endpoint.client()

    def container(self):
        """The service's container, or None when there is none."""
        from docker.errors import NotFound

        try:
            return self.client.containers.get(self.names.container)
        except NotFound:
            return None
