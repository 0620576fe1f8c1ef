"""The questions of ``occ setup``, asked with Click's prompts (the CLI layer asks; the core
never does).

Each question shows the current value as its default, so a second run changes only what
the person changes. A bad answer is asked again with the reason: Click prints the
``BadParameter`` message of the check and asks once more. The checks are the ones the
config file and hosts.json use, so an answer that passes here also passes a load.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import click

from opencode_cloud.config.masking import mask_env_entry
from opencode_cloud.config.model import ENV_NAME, Config

# Variables the providers opencode talks to read their API key from (suggestions only;
# any NAME=value is accepted).
PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY",
                 "OPENROUTER_API_KEY")
NEW_HOST = "new"


def checked(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """A prompt's value_proc from a check that raises ValueError: the reason is shown and
    the question asked again."""
    def proc(text: str) -> Any:
        try:
            return check(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return proc


def _optional(check: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda text: check(text) if text.strip() else None


def bind_address(text: str) -> str:
    text = text.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address; give one such as 127.0.0.1 "
                         "(this machine only) or 0.0.0.0 (every network)") from None
    if "%" in text:
        raise ValueError("give the address without a zone id ('%…')")
    return text


def env_name(text: str) -> str:
    text = text.strip()
    if text and not ENV_NAME.match(text):
        raise ValueError(f"{text!r} is not a variable name: letters, digits and '_', not "
                         "starting with a digit (such as ANTHROPIC_API_KEY)")
    return text


# -- where -----------------------------------------------------------------------------------
def ask_target(hosts: Any, current: str) -> str:
    """``local``, a host's name, or :data:`NEW_HOST`."""
    from opencode_cloud.cli.commands.host import fields

    click.echo("Where should opencode run?")
    rows = [("local", "this machine")]
    rows += [(name, fields.describe(hosts.hosts[name])) for name in hosts.names()]
    rows.append((NEW_HOST, "add a server you reach over SSH"))
    width = max(len(name) for name, _ in rows)
    for name, what in rows:
        click.echo(f"  {name.ljust(width)}  {what}")
    return click.prompt("Run on", default=current,
                        type=click.Choice([name for name, _ in rows]), show_choices=False)


def ask_new_host(known: set[str]) -> dict[str, Any]:
    """What ``occ host add`` needs for a new host (its checks, asked again when bad)."""
    from opencode_cloud.cli.commands.host.fields import identity
    from opencode_cloud.hosts import validation as v

    def new_name(text: str) -> str:
        name = v.check_host_name(text.strip())
        if name in known:
            raise ValueError(f"a host named '{name}' already exists; pick it above instead")
        return name

    optional = {"default": "", "show_default": False}
    return {
        "name": click.prompt("Name for the host (such as web1)", value_proc=checked(new_name)),
        "hostname": click.prompt("Its address (DNS name or IP)",
                                 value_proc=checked(v.check_hostname)),
        "user": click.prompt("SSH user (empty: your ~/.ssh/config, else your login name)",
                             value_proc=checked(_optional(v.check_user)), **optional),
        "port": click.prompt("SSH port (empty: 22 or your ~/.ssh/config)",
                             value_proc=checked(_optional(v.parse_port)), **optional),
        "identity_file": click.prompt(
            "Private key file (empty: ssh-agent and your ~/.ssh/config)",
            value_proc=checked(_optional(lambda text: identity(v.check_identity_file(
                text.strip())))), **optional),
    }


# -- the service's settings: each returns the changed values -----------------------------------
def ask_port(current: Config) -> dict[str, Any]:
    port = click.prompt("Port of the web UI", default=current.opencode_web_port,
                        type=click.IntRange(1, 65535))
    return {"opencode_web_port": port}


def ask_bind_address(current: Config) -> dict[str, Any]:
    address = click.prompt("Address to listen on (127.0.0.1: only this machine)",
                           default=current.bind_address, value_proc=checked(bind_address))
    return {"bind_address": address}


def ask_cockpit(current: Config) -> dict[str, Any]:
    on = click.confirm("Run Cockpit, a web console of the sandbox?",
                       default=current.cockpit_enabled)
    return {"cockpit_enabled": on}


def ask_api_keys(current: Config) -> dict[str, Any]:
    """Provider API keys as container_env entries: values typed hidden, shown masked."""
    env = list(current.container_env)
    if env:
        click.echo("Variables for the container now: "
                   + ", ".join(mask_env_entry(entry) for entry in env))
    while True:
        name = click.prompt(f"API key variable to set ({', '.join(PROVIDER_KEYS[:2])}, …; "
                            "empty: done)", default="", show_default=False,
                            value_proc=checked(env_name))
        if not name:
            break
        value = click.prompt(f"Value of {name} (hidden; empty removes it)", default="",
                             show_default=False, hide_input=True)
        env = [entry for entry in env if entry.partition("=")[0] != name]
        if value:
            env.append(f"{name}={value}")
            click.echo(f"  {mask_env_entry(env[-1])}")
        else:
            click.echo(f"  {name} removed")
    return {"container_env": env}


# The questions about the service, in order. A question for bind mounts (`occ mount`, being
# built separately) joins this list once that feature exists: a function of the current
# Config that returns the values to save.
QUESTIONS: tuple[Callable[[Config], dict[str, Any]], ...] = (
    ask_port, ask_bind_address, ask_cockpit, ask_api_keys,
)
