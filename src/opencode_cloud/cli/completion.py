"""Shell completion: what to offer after ``--host``, ``--group``, a host NAME, a config KEY
and its VALUE. Only this machine's files are read; completion never connects anywhere.

Click runs these when the shell asks (``_OCC_COMPLETE=bash_complete`` and friends, set by
the script ``occ completion SHELL`` prints).
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem


def _hosts():
    from opencode_cloud.hosts.store import load_hosts

    try:
        return load_hosts(keep_broken=True)
    except Exception:  # noqa: BLE001  a broken file completes nothing, and never fails
        return None


def host_names(_ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
    hosts = _hosts()
    names = ["local", *(hosts.names() if hosts else [])]
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def registered_host_names(ctx: click.Context, param: Any, incomplete: str
                          ) -> list[CompletionItem]:
    """Only hosts.json's names (``occ host show NAME``), not ``local``."""
    return [item for item in host_names(ctx, param, incomplete) if item.value != "local"]


def group_names(_ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
    hosts = _hosts()
    groups = sorted({g for c in hosts.hosts.values() for g in c.groups}) if hosts else []
    return [CompletionItem(g) for g in groups if g.startswith(incomplete)]


def config_keys(_ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
    from opencode_cloud.config.model import FIELDS

    return [CompletionItem(k) for k in FIELDS if k.startswith(incomplete)]


def config_values(ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
    """The allowed values of the KEY before it: an enum's members, true/false."""
    from opencode_cloud.config.model import Config

    key = ctx.params.get("key")
    if key == "image_source":
        choices = ["build", "prebuilt", "ship"]
    elif isinstance(getattr(Config(), key or "", None), bool):
        choices = ["true", "false"]
    else:
        return []
    return [CompletionItem(c) for c in choices if c.startswith(incomplete)]


SHELLS = ("bash", "zsh", "fish")


def script(shell: str, cli: click.Command) -> str:
    from click.shell_completion import get_completion_class

    completion = get_completion_class(shell)
    if completion is None:
        raise click.BadParameter(f"unknown shell {shell!r} (one of {', '.join(SHELLS)})")
    return completion(cli, {}, "occ", "_OCC_COMPLETE").source()
