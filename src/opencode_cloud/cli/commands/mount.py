"""``occ mount``: folders of the target machine bind-mounted into the sandbox.

Stored with the settings: this machine's in config.json (``mounts``), a remote host's in
its own ``settings`` in hosts.json. A change applies on the next start or restart and shows
as drift in ``occ status`` until then.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from opencode_cloud.cli.fleet import one_target_only
from opencode_cloud.cli.service_target import ServiceCommand, open_service
from opencode_cloud.cli.state import app_state, global_options, make_printer
from opencode_cloud.errors import OccError


@click.group("mount")
@global_options
def mount_group() -> None:
    """Mount folders of the target machine into the sandbox.

    \b
    Examples:
      occ mount add ~/src/project                  at ~/workspace/project in the sandbox
      occ mount add /srv/data:~/data:ro --host web1
      occ mount list --json
      occ mount remove /srv/data --host web1
    """


@mount_group.command("add", cls=ServiceCommand)
@click.argument("spec", metavar="HOST_PATH[:CONTAINER_PATH][:ro]")
@one_target_only
@global_options
def add(spec: str) -> None:
    """Mount a folder (absolute path on the target) into the sandbox.

    The folder must exist there. CONTAINER_PATH defaults to ~/workspace/<name of the
    folder>; ':ro' mounts it read-only. Applies on the next 'occ restart'.

    \b
    Examples:
      occ mount add /home/me/project
      occ mount add /home/me/notes:~/notes:ro --host web1
    """
    from opencode_cloud.config.mounts import parse_mount
    from opencode_cloud.service.mounts import check_on_target, owner_mount, with_mount

    mount = _parsed(parse_mount, spec)
    service = open_service()
    with_mount(service.config.mounts, mount)  # refused before anything is asked or written
    checked = check_on_target(service.endpoint, mount)
    entries = _change_mounts(lambda current: with_mount(current, mount))
    out = make_printer(service.endpoint.host)
    mode = " (read-only)" if mount.read_only else ""
    out.success(f"{mount.host_path} is mounted at {mount.container_path}{mode} "
                f"from the next 'occ restart{_host_flag()}'.")
    from opencode_cloud.config.mounts import check_mounts

    owner = owner_mount(check_mounts(entries))
    if owner == mount:
        if checked.uid == 0:
            out.warn(f"{mount.host_path} belongs to root: opencode keeps its own uid (1000) "
                     "and writes there only if the folder lets it.")
        else:
            out.detail(f"opencode runs as uid {checked.uid} (the folder's owner), so what it "
                       "writes there belongs to that user.")
    elif owner is not None and not mount.read_only:
        out.detail(f"opencode runs as the owner of {owner.host_path} (the first read-write "
                   f"mount); what it writes in {mount.host_path} belongs to that user.")


@mount_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the mounts as a JSON list.")
@one_target_only
@global_options
def list_(as_json: bool) -> None:
    """List the folders mounted into the sandbox of the target.

    \b
    Examples:
      occ mount list
      occ mount list --host web1 --json
    """
    host = _target()
    mounts = _configured(host).mount_list
    out = make_printer(host.name if host is not None else None)
    if as_json:
        out.json([m.to_dict() for m in mounts])
        return
    if not mounts:
        out.line("No folders mounted. Add one with: occ mount add HOST_PATH")
        return
    out.table(["HOST PATH", "IN THE SANDBOX", "MODE"],
              [[m.host_path, m.container_path, "read-only" if m.read_only else "read-write"]
               for m in mounts])


@mount_group.command("remove")
@click.argument("host_path", metavar="HOST_PATH")
@one_target_only
@global_options
def remove(host_path: str) -> None:
    """Stop mounting a folder (from the next 'occ restart'); the folder stays as it is.

    \b
    Examples:
      occ mount remove /home/me/project
      occ mount remove /srv/data --host web1
    """
    from opencode_cloud.service.mounts import without_mount

    _change_mounts(lambda current: without_mount(current, host_path))
    host = _target()
    make_printer(host.name if host is not None else None).success(
        f"{host_path} is no longer mounted from the next 'occ restart{_host_flag()}'.")


def _parsed(parse: Callable, text: str):
    try:
        return parse(text)
    except ValueError as exc:
        raise OccError(f"cannot mount {text!r}: {exc}",
                       hint="The form is HOST_PATH[:CONTAINER_PATH][:ro], e.g. "
                       "occ mount add /home/me/project:~/workspace/project") from None


def _target():
    from opencode_cloud.engine.target import resolve_host

    state = app_state()
    return resolve_host(state.host, state.local)


def _host_flag() -> str:
    host = _target()
    return f" --host {host.name}" if host is not None else ""


def _configured(host):
    """The settings that apply on ``host`` (None: this machine)."""
    from opencode_cloud.cli.service_target import host_config
    from opencode_cloud.config.store import load_config

    return host_config(load_config(), host)


def _change_mounts(change: Callable[[list[str]], list[str]]) -> list[str]:
    """Apply ``change`` to the target's ``mounts`` under the file's lock: config.json for
    this machine, the host's ``settings`` in hosts.json for a remote one."""
    host = _target()
    result: list[list[str]] = []
    if host is None:
        from opencode_cloud.config import store

        def change_config(config):
            result.append(change(list(config.mounts)))
            return store.with_value(config, "mounts", result[-1])

        store.change_config(change_config)
        return result[-1]
    from opencode_cloud.hosts import store as hosts_store

    def change_hosts(hosts):
        entry = hosts.hosts.get(host.name)
        if entry is None:
            raise hosts_store.unknown_host(host.name, hosts)
        settings = dict(entry.settings)
        result.append(change(list(settings.get("mounts", []))))
        if result[-1]:
            settings["mounts"] = result[-1]
        else:
            settings.pop("mounts", None)
        return hosts.with_host(host.name, entry.changed(settings=settings))

    hosts_store.change_hosts(change_hosts)
    return result[-1]
