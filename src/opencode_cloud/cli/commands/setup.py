"""``occ setup``: a short guided first run: where, port, address, Cockpit, API keys; then
the service is started as ``occ start`` starts it, and occ says how to log in."""

from __future__ import annotations

from typing import Any

import click

from opencode_cloud.cli.service_target import readiness_timeout_option
from opencode_cloud.cli.state import app_state, global_options, interactive, make_printer
from opencode_cloud.errors import OccError


@click.command("setup")
@click.option("-y", "--yes", "assume_yes", is_flag=True,
              help="Ask nothing: take the current settings (the defaults on a first run), "
              "and install or start Docker if it is missing. For scripts and cloud-init.")
@readiness_timeout_option()
@global_options
def setup_command(assume_yes: bool, timeout: float) -> None:
    """A guided first run: where to run, port, address, Cockpit, API keys; then start.

    Each question shows the current value as its default, so running it again changes
    only what you change. Picking a target makes it the default host of later commands
    (with --host H, H is used and the default stays). Without a terminal it needs --yes.

    \b
    Examples:
      occ setup
      occ setup --host web1
      occ setup --yes          (cloud-init: the current settings, no questions)
    """
    from opencode_cloud.cli import setup_questions as ask
    from opencode_cloud.cli.commands.start import start_here
    from opencode_cloud.cli.service_target import host_config, run_repairing
    from opencode_cloud.config.store import load_config

    if not assume_yes and not interactive():
        raise OccError(
            "occ setup asks its questions in a terminal, and there is none here",
            hint="Take the current settings without asking: occ setup --yes (change one "
            "first with 'occ config set KEY VALUE').")
    ctx = click.get_current_context()
    host = choose_target(ask_where=not assume_yes)
    current = host_config(load_config(), host)
    answers: dict[str, Any] = {}
    if not assume_yes:
        for question in ask.QUESTIONS:
            answers.update(question(current))
    changed = {key: value for key, value in answers.items() if getattr(current, key) != value}
    save_answers(host, changed)
    host = reloaded(host)  # with the settings just saved
    show_summary(host, host_config(load_config(), host), changed, assume_yes)
    service = run_repairing(ctx, lambda: start_here(timeout), assume_yes=assume_yes)
    how_to_log_in(service)


def choose_target(*, ask_where: bool):
    """The target (None = this machine): --host/--local if given, else asked (and made the
    default host), else the default host. Sets it as the command's target."""
    from opencode_cloud.engine.target import resolve_host
    from opencode_cloud.hosts import store

    state = app_state()
    if state.host is not None or state.local or not ask_where:
        return resolve_host(state.host, state.local)
    from opencode_cloud.cli import setup_questions as ask

    hosts = store.load_hosts()
    name = ask.ask_target(hosts, hosts.default_host or "local")
    if name == ask.NEW_HOST:
        name = add_host(set(hosts.hosts))
    make_default(None if name == "local" else name)
    if name == "local":
        state.local = True
        return None
    state.host = name
    return store.resolve_host(name)


def add_host(known: set[str]) -> str:
    """Ask for a new host and add it exactly as ``occ host add`` does (SSH checked first,
    Docker offered if missing)."""
    from opencode_cloud.cli import setup_questions as ask
    from opencode_cloud.cli.commands.host.add import add

    values = ask.ask_new_host(known)
    port = values.pop("port")
    click.get_current_context().invoke(add, **values,
                                       port=None if port is None else str(port))
    return values["name"]


def reloaded(host):
    from opencode_cloud.hosts import store

    return None if host is None else store.resolve_host(host.name)


def make_default(name: str | None) -> None:
    from opencode_cloud.hosts import store

    if store.load_hosts().default_host == name:
        return
    store.change_hosts(lambda hosts: hosts.with_default(name))
    make_printer().line(f"Commands now act on {name or 'this machine'} by default "
                        f"(change it with: occ host default NAME|local).")


def save_answers(host, changed: dict[str, Any]) -> None:
    from opencode_cloud.cli.commands.config import warn_if_exposed
    from opencode_cloud.cli.service_target import save_target_settings

    save_target_settings(host, changed)
    if "bind_address" in changed:
        warn_if_exposed(make_printer(), changed["bind_address"])


def show_summary(host, config, changed: dict[str, Any], assume_yes: bool) -> None:
    from opencode_cloud.config.masking import mask_env_entry

    out = make_printer()
    where = f"{host.name} ({host.config.hostname})" if host else "this machine"
    saved = ("the current settings" if assume_yes else
             "saved: " + ", ".join(changed) if changed else "nothing changed")
    out.line(f"Setting up opencode on {where} ({saved}):")
    out.key_values([
        ("Port", str(config.opencode_web_port)),
        ("Address", config.bind_address),
        ("Cockpit", "on" if config.cockpit_enabled else "off"),
        ("Variables", ", ".join(mask_env_entry(e) for e in config.container_env) or "none"),
    ])


def how_to_log_in(service) -> None:
    from opencode_cloud.cli.commands.start import url_of

    host = service.endpoint.host
    where = (f"run 'occ open --host {host}' (it forwards the port here and opens the "
             "browser)" if host else f"open {url_of(service)}")
    service.reporter.printer.line(
        f"Log in: {where} and sign in with the username above and the password from "
        "'occ credentials'.")
