"""What every service operation needs: the Engine, the settings, the names, the reporter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    # Where ``image_source: ship`` takes images from (image/ship.py ShipSource: this
    # machine's Engine, shared by the hosts of one command); None for this machine itself.
    ship: Any = None

    @property
    def client(self):
        return self.endpoint.client()

    def ensure_image(self, *, refresh: bool = False):
        """The image the settings ask for on this Engine, built, pulled or sent."""
        from opencode_cloud.image.build import ensure_image

        return ensure_image(self.client, self.config, self.reporter, refresh=refresh,
                            ship=self.ship if self.endpoint.host else None,
                            where=self.endpoint.host or "this machine",
                            origin=self.endpoint)

    def container(self):
        """The service's container, or None when there is none."""
        from docker.errors import NotFound

        try:
            return self.client.containers.get(self.names.container)
        except NotFound:
            return None
