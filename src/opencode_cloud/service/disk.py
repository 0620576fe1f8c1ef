"""The disk the service takes on its Engine: its images and each of its volumes.

From one ``/system/df`` answer (the figures ``docker system df -v`` shows). It costs the
Engine a walk through the volumes, so ``occ status`` asks for it only with ``--disk`` or
``--json``.
"""

from __future__ import annotations

from typing import Any

from opencode_cloud.engine.labels import label
from opencode_cloud.service.images import image_entries, is_service_image, role
from opencode_cloud.service.names import ServiceNames

INSTANCE_LABEL = label("instance")


def is_service_volume(raw: dict[str, Any], names: ServiceNames) -> bool:
    """One of the service's named volumes, or another occ made for it (rotated logins)."""
    return (raw.get("Name") in names.volumes
            or (raw.get("Labels") or {}).get(INSTANCE_LABEL) == names.instance)


def disk_report(df: dict[str, Any], names: ServiceNames, repository: str,
                current_image_id: str | None) -> dict[str, Any]:
    """The service's images (tagged in its repository) and volumes.

    Sizes in bytes; ``unique_bytes`` is what only that image uses (shared layers, such
    as the base image's, count in ``size_bytes`` of every image that has them). A volume's
    size is None when the Engine could not count it (another volume driver)."""
    images = [
        {"id": image.short_id, "tags": list(image.tags),
         "role": role(image, repository, current_image_id),
         "size_bytes": image.size, "unique_bytes": image.unique_size}
        for image in image_entries(df)
        # Untagged ones are occ's leftovers, not attributable to one service (an update or
        # reset --images removes them when unused).
        if image.tags and is_service_image(image, repository)
    ]
    images.sort(key=lambda i: ("current", "previous", "old").index(i["role"]))
    volumes = []
    for raw in df.get("Volumes") or ():
        if not is_service_volume(raw, names):
            continue
        size = (raw.get("UsageData") or {}).get("Size")
        volumes.append({"name": raw["Name"],
                        "size_bytes": None if size is None or size < 0 else int(size)})
    volumes.sort(key=lambda v: v["name"])
    return {
        "images": images,
        "volumes": volumes,
        "volumes_bytes": sum(v["size_bytes"] or 0 for v in volumes),
    }
