"""``occ config``: show and change config.json."""

from __future__ import annotations

import json

import click

from opencode_cloud.cli.state import (
    LocalOnlyGroup,
    complete_with,
    global_options,
    interactive,
    make_printer,
)
from opencode_cloud.config import paths, store
from opencode_cloud.config.masking import mask_env_entry, mask_setting, mask_settings
from opencode_cloud.config.model import Config, is_loopback
from opencode_cloud.errors import ConfigError

# Secret values (container_env: API keys) are masked unless asked for; see config/masking.py.
show_secrets_option = click.option(
    "--show-secrets", is_flag=True,
    help="Print secret values (container_env) in clear instead of masked.")


def _format(value) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def warn_if_exposed(out, bind_address: str) -> None:
    """The warning for a bind address other than loopback (config set, setup)."""
    if not is_loopback(bind_address):
        out.warn(
            f"bind_address {bind_address} makes the web UI reachable from the network; "
            "keep the password strong and prefer a firewall or 'occ open' over SSH."
        )


@click.group("config", cls=LocalOnlyGroup)
@global_options
def config_group() -> None:
    """Show and change occ's settings (config.json)."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as one JSON object.")
@show_secrets_option
@global_options
def show(as_json: bool, show_secrets: bool) -> None:
    """Show every setting and the file it comes from (secrets masked)."""
    config = store.load_config()
    out = make_printer()
    values = config.to_dict() if show_secrets else mask_settings(config.to_dict())
    if as_json:
        out.json(values)
        return
    out.key_values([(key, _format(value)) for key, value in values.items()])
    out.detail(f"(from {paths.config_file()})")


@config_group.command("get")
@click.argument("key", shell_complete=complete_with("config_keys"))
@show_secrets_option
@global_options
def get(key: str, show_secrets: bool) -> None:
    """Print the value of one setting (a secret one masked)."""
    config = store.load_config()
    store.require_key(key)
    value = getattr(config, key)
    click.echo(_format(value if show_secrets else mask_setting(key, value)))


@config_group.command("set")
@click.argument("key", shell_complete=complete_with("config_keys"))
@click.argument("value", shell_complete=complete_with("config_values"))
@global_options
def set_(key: str, value: str) -> None:
    """Change one setting (an empty VALUE clears an optional one).

    \b
    Examples:
      occ config set opencode_web_port 3100
      occ config set cockpit_enabled true
      occ config set extra_ca_certs /etc/ssl/certs/ca-certificates.crt
    """
    coerced = store.coerce_value(key, value)
    config = store.change_config(lambda current: store.with_value(current, key, coerced))
    out = make_printer()
    out.success(f"{key} = {_format(mask_setting(key, getattr(config, key)))}")
    if key == "bind_address":
        warn_if_exposed(out, config.bind_address)
    if key != "container_env":
        out.detail("Takes effect on the next 'occ start' or 'occ restart'.")


@config_group.command("reset")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@global_options
def reset(force: bool) -> None:
    """Put every setting back to its default."""
    if not force:
        if not interactive():
            raise ConfigError(
                "refusing to reset the settings without confirmation",
                hint="Run 'occ config reset --force'.",
            )
        click.confirm("Reset every setting to its default?", abort=True)
    store.change_config(lambda _current: Config())
    make_printer().success(f"Settings reset to defaults ({paths.config_file()}).")


@config_group.group("env")
@global_options
def env_group() -> None:
    """Environment variables passed to the container (container_env)."""


@env_group.command("set")
@click.argument("assignment", metavar="KEY=VALUE")
@global_options
def env_set(assignment: str) -> None:
    """Add or replace one variable."""
    name, sep, _ = assignment.partition("=")
    if not sep:
        raise ConfigError(
            f"'{assignment}' is not KEY=VALUE", hint="Example: occ config env set TZ=Europe/Berlin"
        )

    def change(current: Config) -> Config:
        kept = [e for e in current.container_env if e.partition("=")[0] != name]
        return store.with_value(current, "container_env", [*kept, assignment])

    store.change_config(change)
    make_printer().success(f"{name} set for the container (applies on the next start).")


@env_group.command("list")
@show_secrets_option
@global_options
def env_list(show_secrets: bool) -> None:
    """List the variables (values masked)."""
    for entry in store.load_config().container_env:
        click.echo(entry if show_secrets else mask_env_entry(entry))


@env_group.command("remove")
@click.argument("name", metavar="KEY")
@global_options
def env_remove(name: str) -> None:
    """Remove one variable."""
    found: list[bool] = []

    def change(current: Config) -> Config:
        kept = [e for e in current.container_env if e.partition("=")[0] != name]
        found.append(len(kept) != len(current.container_env))
        return store.with_value(current, "container_env", kept)

    store.change_config(change)
    if not found[-1]:
        raise ConfigError(
            f"no container variable named '{name}'", hint="See them with: occ config env list"
        )
    make_printer().success(f"{name} removed (applies on the next start).")
