"""Pure builders of the container's settings. No Docker calls: unit-tested directly."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from typing import Any

from opencode_cloud.config.model import Config
from opencode_cloud.engine.labels import label
from opencode_cloud.service.credentials import Credentials, login_digest
from opencode_cloud.service.names import ServiceNames

WEB_PORT = 3000  # inside the container
COCKPIT_PORT = 9090
SUMMARY_LABEL = label("spec")


def settings_summary(config: Config, image_id: str, pinned: bool = False,
                     login: str | None = None) -> dict[str, Any]:
    """What the container's behaviour depends on, without secrets (it is stored as a label).

    Env values may hold API keys, so only their hash is kept. ``pinned`` marks a service
    rolled back to an older image, which keeps that image until the next update.
    """
    env_digest = hashlib.sha256("\n".join(sorted(config.container_env)).encode()).hexdigest()
    return {
        "image": image_id,
        "bind_address": config.bind_address,
        "opencode_web_port": config.opencode_web_port,
        "cockpit_port": config.cockpit_port if config.cockpit_enabled else None,
        "container_env": env_digest[:16],
        "memory_limit": config.memory_limit,
        "pinned_image": pinned,
        "login": login,  # a digest of the credentials (credentials.login_digest)
        "watchdog": config.watchdog_settings,
        "image_packages": list(config.image_packages),
        "image_dockerfile": config.image_dockerfile,
        "mounts": list(config.mounts),
    }


def running_summary(attrs: dict[str, Any]) -> dict[str, Any]:
    """The settings summary a container was created with (its label), {} if unreadable."""
    try:
        summary = json.loads((attrs["Config"].get("Labels") or {}).get(SUMMARY_LABEL) or "{}")
    except ValueError:
        return {}
    return summary if isinstance(summary, dict) else {}


def configuration_drift(labels: dict[str, str], running_ref: str, config: Config,
                        wanted_ref: str) -> list[dict[str, Any]]:
    """The settings whose configured value differs from the running container, each as
    ``{"key", "running", "configured"}``; ``labels`` are the container's, ``running_ref``
    the image reference it was created from, ``wanted_ref`` the one configured now."""
    current = running_summary({"Config": {"Labels": labels}})
    wanted = settings_summary(config, "")
    drift = []

    def differ(key: str, running: Any, configured: Any) -> None:
        drift.append({"key": key, "running": running, "configured": configured})

    for key in ("bind_address", "opencode_web_port", "memory_limit", "watchdog"):
        if current.get(key) != wanted[key]:
            differ(key, current.get(key), wanted[key])
    was, now = current.get("cockpit_port"), wanted["cockpit_port"]
    if (was is None) != (now is None):
        differ("cockpit_enabled", was is not None, now is not None)
    elif was != now:
        differ("cockpit_port", was, now)
    if current.get("mounts", []) != wanted["mounts"]:  # containers from before mounts: none
        differ("mounts", current.get("mounts", []), wanted["mounts"])
    if current.get("container_env") != wanted["container_env"]:  # digests: no secrets shown
        differ("container_env", f"digest {current.get('container_env')}",
               f"digest {wanted['container_env']}")
    # (containers made before image_packages existed have none in their label)
    if (current.get("image_packages") or []) != wanted["image_packages"]:
        differ("image_packages", current.get("image_packages") or [], wanted["image_packages"])
    if current.get("image_dockerfile") != wanted["image_dockerfile"]:
        differ("image_dockerfile", current.get("image_dockerfile"), wanted["image_dockerfile"])
    if not current.get("pinned_image") and running_ref != wanted_ref:
        differ("image", running_ref, wanted_ref)  # a rolled-back service keeps its image
    return drift


def describe_drift(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human phrases for what changed between two summaries."""
    changes = []
    for key in new:
        if old.get(key) != new[key]:
            if key == "image":
                changes.append("image changed")
            elif key == "container_env":
                changes.append("container_env changed")
            elif key == "login":
                changes.append("the login changed")
            elif key == "mounts":
                changes.append("mounts changed")
            else:
                changes.append(f"{key} {old.get(key)} -> {new[key]}")
    return changes


def watchdog_environment(config: Config) -> list[str]:
    """The entrypoint's watchdog settings (see image/entrypoint.sh)."""
    settings = config.watchdog_settings
    if settings is None:
        return ["OCC_WATCHDOG=0"]
    names = ("INTERVAL", "TIMEOUT", "FAILURES", "MEMORY_PERCENT")
    return ["OCC_WATCHDOG=1", *(f"OCC_WATCHDOG_{n}={v}" for n, v in zip(names, settings,
                                                                          strict=True))]


def container_kwargs(
    config: Config,
    names: ServiceNames,
    image_id: str,
    creds: Credentials,
    rolled_back: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create``."""
    ports: dict[str, tuple[str, int]] = {
        f"{WEB_PORT}/tcp": (config.bind_address, config.opencode_web_port)
    }
    if config.cockpit_enabled:
        ports[f"{COCKPIT_PORT}/tcp"] = (config.bind_address, config.cockpit_port)
    environment = [
        *config.container_env,
        # occ's own settings come last so a container_env entry cannot switch auth off.
        f"OPENCODE_SERVER_USERNAME={creds.username}",
        f"OPENCODE_SERVER_PASSWORD={creds.password}",
        "OPENCODE_DISABLE_AUTOUPDATE=1",
        f"OCC_COCKPIT_ENABLED={1 if config.cockpit_enabled else 0}",
        *watchdog_environment(config),
        *mount_environment(config),
    ]
    labels = {
        label("instance"): names.instance,
        SUMMARY_LABEL: json.dumps(settings_summary(config, image_id, rolled_back,
                                                   login_digest(creds)), sort_keys=True),
    }
    kwargs: dict[str, Any] = {
        "image": image_id,
        "name": names.container,
        "hostname": names.instance,
        "environment": environment,
        "ports": ports,
        "volumes": {name: {"bind": path, "mode": "rw"} for name, path in names.volumes.items()},
        # Long-running opencode servers grow in memory: a limit plus a restart policy.
        "restart_policy": {"Name": "unless-stopped"},
        "labels": labels,
        "detach": True,
    }
    if config.memory_limit:
        kwargs["mem_limit"] = config.memory_limit
    if config.mounts:
        kwargs["mounts"] = bind_mounts(config)
    return kwargs


def bind_mounts(config: Config) -> list[dict[str, Any]]:
    """The Engine's Mounts entries: of type bind, which (unlike -v) refuses a missing
    source instead of creating it as root."""
    return [{"Type": "bind", "Source": m.host_path, "Target": m.container_path,
             "ReadOnly": m.read_only} for m in config.mount_list]


def mount_environment(config: Config) -> list[str]:
    """What the entrypoint needs to give opencoder the owner of the first read-write
    mount, and to leave every mounted folder alone when it re-owns opencoder's own files
    (image/entrypoint.sh). Paths hold no ':' (config/mounts.py), so it separates them."""
    from opencode_cloud.service.mounts import owner_mount

    mounts = config.mount_list
    if not mounts:
        return []
    owner = owner_mount(mounts)
    return [f"OCC_MOUNT_TARGETS={':'.join(m.container_path for m in mounts)}",
            *([f"OCC_OWNER_FROM={owner.container_path}"] if owner else [])]


def url_for(address: str, port: int) -> str:
    """The URL a browser on the target uses; wildcard binds are reached via loopback."""
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified:
        ip = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"http://{host}:{port}"
