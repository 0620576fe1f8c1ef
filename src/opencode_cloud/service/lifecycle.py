"""start, stop, restart and reset of the opencode service on one Docker Engine."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from opencode_cloud.errors import OccError
from opencode_cloud.service import DEFAULT_START_TIMEOUT, spec, switch
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.credentials import Credentials, ensure_volumes, login_digest
from opencode_cloud.service.health import Health, NotHealthy, wait_until_healthy
from opencode_cloud.service.mounts import verify_mounts


@dataclass
class StartOutcome:
    action: str  # "already-running" | "started" | "created" | "recreated"
    health: Health
    credentials: Credentials
    changes: list[str]


def running_summary(container) -> dict | None:
    """The settings summary the container was made with (None: none readable)."""
    return spec.running_summary({"Config": {"Labels": container.labels or {}}}) or None


def is_rolled_back(container) -> bool:
    return bool((running_summary(container) or {}).get("pinned_image"))


def start(
    ctx: ServiceContext,
    timeout: float = DEFAULT_START_TIMEOUT,
    image=None,
    rolled_back: bool = False,
    mounts_checked: bool = False,
) -> StartOutcome:
    """Bring the service up and wait until it is healthy. Idempotent.

    ``image`` forces an image (update, rollback); otherwise the settings decide, except that
    a rolled-back service keeps its image until the next ``occ update``. The mounted
    folders are checked first (``mounts_checked``: the caller did, before stopping).
    """
    if ctx.config.mounts and not mounts_checked:
        verify_mounts(ctx)  # before anything changes
    if ctx.operation is None:
        switch.recover(ctx)  # an update or start cut off earlier, from any machine
    creds = ensure_volumes(ctx.client, ctx.names)
    existing = ctx.container()
    if image is None and existing is not None and is_rolled_back(existing):
        image, rolled_back = existing.image, True
    if image is None:
        image = ctx.ensure_image()
    wanted = spec.settings_summary(ctx.config, image.id, rolled_back, login_digest(creds))

    action, changes = "created", []
    if existing is not None:
        current = running_summary(existing)
        if current == wanted:
            if existing.status == "paused":  # e.g. a backup whose connection dropped
                existing.unpause()
                existing.reload()
            if existing.status == "running":
                health = wait_until_healthy(ctx, existing, timeout)
                return StartOutcome("already-running", health, creds, [])
            existing.start()
            return StartOutcome("started", wait_until_healthy(ctx, existing, timeout), creds, [])
        changes = spec.describe_drift(current or {}, wanted)
        ctx.reporter.info(
            f"Settings changed ({', '.join(changes)}): recreating the container; volumes are kept."
        )
        return replace(ctx, existing, image, creds, rolled_back, timeout, changes)

    container = create_and_start(ctx, image, creds, rolled_back)
    return StartOutcome(action, wait_until_healthy(ctx, container, timeout), creds, changes)


def replace(ctx: ServiceContext, existing, image, creds: Credentials, rolled_back: bool,
            timeout: float, changes: list[str]) -> StartOutcome:
    """A new container for ``existing``, which is kept aside until the new one is healthy
    (service/switch.py: a cut-off at any step leaves what recover() can mend)."""
    was_running = existing.status == "running"
    with switch.operation(ctx, "start", was_running):
        ctx.reporter.checkpoint(switch.IMAGE_READY)
        retired = switch.retire(ctx, existing)
        try:
            container = create_and_start(ctx, image, creds, rolled_back)
        except Exception:
            with contextlib.suppress(Exception):  # the first error is the one to tell
                switch.restore(ctx, retired, was_running)
            raise
        try:
            health = wait_until_healthy(ctx, container, timeout)
        except NotHealthy:
            # The new settings were asked for: the old container does not come back (an
            # update rolls back to the old image itself).
            remove_container(retired)
            raise
        remove_container(retired)
    return StartOutcome("recreated", health, creds, changes)


def create_and_start(ctx: ServiceContext, image, creds: Credentials, rolled_back: bool = False):
    from docker.errors import APIError

    kwargs = spec.container_kwargs(ctx.config, ctx.names, image.id, creds, rolled_back)
    kwargs["image"] = image.tags[0] if image.tags else image.id  # readable in docker ps
    container = ctx.client.containers.create(**kwargs)
    ctx.reporter.checkpoint(switch.NEW_CREATED)
    try:
        container.start()
        ctx.reporter.checkpoint(switch.NEW_STARTED)
    except APIError as exc:
        remove_container(container)
        text = str(exc.explanation or exc)
        if "address already in use" in text or "port is already allocated" in text:
            raise port_in_use_error(ctx, text) from None
        raise OccError(f"the container could not start: {text}") from None
    return container


def port_in_use_error(ctx: ServiceContext, text: str) -> OccError:
    config = ctx.config
    # Docker names the port as ADDRESS:PORT ("Bind for 0.0.0.0:8080 failed", "listen tcp4
    # 127.0.0.1:8080: bind: address already in use"): compare whole numbers, not text.
    named = {int(n) for n in re.findall(r":(\d{1,5})\b", text)}
    cockpit = config.cockpit_port in named and config.opencode_web_port not in named
    key, port = ("cockpit_port", config.cockpit_port) if cockpit else \
        ("opencode_web_port", config.opencode_web_port)
    message = f"port {port} on {config.bind_address} is already in use {ctx.endpoint.where}"
    # Only an endpoint on this machine can try ports; for a host, let the person choose.
    finder = ctx.endpoint.free_port_near
    free = finder(config.bind_address, port + 1) if finder is not None else None
    if free is None:
        return OccError(message, hint=f"Choose another port: occ config set {key} PORT, "
                        "then occ start.")
    return OccError(message, hint=f"Port {free} is free: occ config set {key} {free}, then "
                    f"occ start (or: occ start --port {free}).")


def stop(ctx: ServiceContext, timeout: int = 30) -> bool:
    """Stop gracefully. Returns False when there was nothing running."""
    container = ctx.container()
    if container is None or container.status != "running":
        return False
    container.stop(timeout=timeout)
    return True


def remove_container(container) -> None:
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        container.remove(force=True)


def reset(ctx: ServiceContext, volumes: bool) -> list[str]:
    """Remove the container; with ``volumes`` also every volume. Returns what was removed."""
    from docker.errors import NotFound

    removed = []
    container = ctx.container()
    if container is not None:
        remove_container(container)
        removed.append(f"container {ctx.names.container}")
    for leftover in ctx.client.containers.list(
            all=True, filters={"name": switch.replaced_name(ctx)}):
        if leftover.name == switch.replaced_name(ctx):  # the filter matches substrings
            remove_container(leftover)
            removed.append(f"container {leftover.name}")
    with contextlib.suppress(NotFound):
        ctx.client.volumes.get(ctx.names.operation_marker).remove(force=True)
    if volumes:
        from opencode_cloud.service.credentials import rotated_volumes

        for name in ctx.names.volumes:
            try:
                ctx.client.volumes.get(name).remove()
            except NotFound:
                continue
            removed.append(f"volume {name}")
        for volume in rotated_volumes(ctx.client, ctx.names):
            volume.remove()
            removed.append(f"volume {volume.name}")
    return removed


def rotate_login(ctx: ServiceContext, timeout: float = DEFAULT_START_TIMEOUT
                 ) -> tuple[Credentials, StartOutcome | None]:
    """A new password for the web UI and Cockpit. A running service is recreated with it
    (volumes kept) and the old password stops working; a stopped one gets it at its next
    start. Returns the new login and the start outcome (None when not running)."""
    from opencode_cloud.errors import NotRunningError
    from opencode_cloud.service.credentials import (
        drop_older_logins,
        generate_password,
        read_credentials,
        store_rotated,
    )

    old = read_credentials(ctx.client, ctx.names)
    if old is None:
        raise NotRunningError("there is no login to rotate: the service was never started "
                              f"{ctx.endpoint.where}", hint="Run 'occ start'; it makes one.")
    new = Credentials(old.username, generate_password())
    kept = store_rotated(ctx.client, ctx.names, new)
    container = ctx.container()
    outcome = None
    if container is not None and container.status == "running":
        ctx.reporter.info("New password stored; recreating the container with it.")
        outcome = start(ctx, timeout)
    drop_older_logins(ctx.client, ctx.names, keep=kept)
    return new, outcome
