"""How ``occ status --disk`` shows the disk the service takes (service/disk.py's report)."""

from __future__ import annotations

from typing import Any

from opencode_cloud.service.status import format_bytes


def disk_lines(disk: dict[str, Any] | None) -> list[tuple[str, str]]:
    """One line for the images, one for the volumes; [] when not asked for."""
    if disk is None:
        return []
    if "error" in disk:
        return [("Disk", f"unknown: {disk['error']}")]
    images = ", ".join(
        f"{i['tags'][0] if i['tags'] else i['id']} {format_bytes(i['size_bytes'])} "
        f"({i['role']}"
        + (f", {format_bytes(i['unique_bytes'])} its own" if i["unique_bytes"] is not None
           else "") + ")"
        for i in disk["images"]) or "none"
    volumes = ", ".join(f"{v['name']} {format_bytes(v['size_bytes'])}"
                        for v in disk["volumes"]) or "none"
    return [("Images", images), ("Volumes", f"{volumes} (together "
                                            f"{format_bytes(disk['volumes_bytes'])})"
             if disk["volumes"] else volumes)]
