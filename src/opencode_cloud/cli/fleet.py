"""``--group``/``--all``/``--parallel``: a container command on many hosts at once.

The options select hosts from hosts.json; :func:`run_on_hosts` runs the command's service
operation on each through the core's :class:`~opencode_cloud.fleet.runner.Fleet`, with a
:class:`~opencode_cloud.output.fleet.HostReporter` per host, and renders the live view,
the recap (or one JSON array) and the exit status: 0 only when every host succeeded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from opencode_cloud.cli.state import app_state, complete_with, make_printer
from opencode_cloud.errors import OccError

DEFAULT_PARALLEL = 10


def _store(attr: str):
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        state = app_state(ctx)
        if attr == "groups":
            from opencode_cloud.hosts import validation as v

            for group in value:
                try:
                    v.check_group(group)
                except ValueError as exc:
                    raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
            state.groups = (*state.groups, *value)
        elif value not in (None, False):
            setattr(state, attr, value)

    return callback


def fleet_options(func):
    """``--group G`` (repeatable), ``--all`` and ``--parallel N`` for a command."""
    options = [
        click.option("--group", "-g", "fleet_groups", multiple=True, metavar="GROUP",
                     expose_value=False, callback=_store("groups"),
                     shell_complete=complete_with("group_names"),
                     help="Act on every host of this group (repeatable: the union)."),
        click.option("--all", "fleet_all", is_flag=True, expose_value=False,
                     callback=_store("all_hosts"),
                     help="Act on every host in hosts.json (not this machine)."),
        click.option("--parallel", type=click.IntRange(1, 64), expose_value=False,
                     callback=_store("parallel"), metavar="N",
                     help=f"Hosts at once with --group/--all (1-64; default "
                     f"{DEFAULT_PARALLEL})."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def one_target_only(func):
    """Hidden ``--group``/``--all`` on commands that need one target: a clear refusal."""
    def refuse(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value:
            raise OccError(f"'{ctx.command_path}' works on one host at a time",
                           hint="Name the host with --host NAME.")

    for flags in (("--group", "-g"), ("--all",)):
        func = click.option(*flags, "_refused" + flags[0].strip("-"), hidden=True,
                            is_flag=flags == ("--all",), multiple=flags != ("--all",),
                            expose_value=False, callback=refuse)(func)
    return func


def fleet_hosts(ctx: click.Context | None = None) -> list | None:
    """The selected hosts, or None when the command acts on one target."""
    from opencode_cloud.hosts.store import select_hosts

    ctx = ctx or click.get_current_context()
    state = app_state(ctx)
    if not state.groups and not state.all_hosts:
        if state.parallel is not None:
            raise click.UsageError("--parallel goes with --group or --all")
        return None
    if state.host is not None or state.local:
        raise click.UsageError("--host/--local name one target; --group/--all many: "
                               "give one or the other")
    return select_hosts(state.groups, state.all_hosts)


def parallel(ctx: click.Context | None = None) -> int:
    return app_state(ctx).parallel or DEFAULT_PARALLEL


def make_fleet(hosts: list, *, stream: bool):
    """The runner, the per-host reporters and the view for ``hosts``."""
    from opencode_cloud.fleet.runner import Fleet
    from opencode_cloud.output.fleet import FleetView, HostReporter
    from opencode_cloud.ssh.connection import end_children

    state = app_state()
    live = not stream and not state.quiet and sys.stderr.isatty()
    reporters = {h.name: HostReporter(make_printer(h.name), stream=stream and not state.quiet,
                                      verbose=state.verbose) for h in hosts}
    view = FleetView(reporters, live=live, color=state.color)
    fleet = Fleet(parallel=parallel(), reporter_for=lambda host: reporters[host.name],
                  on_start=view.host_started, on_finish=view.host_finished,
                  cancel_children=end_children)
    return fleet, view


def service_work(op: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A fleet task around a service operation: the host's Engine over SSH, its settings,
    and Engine failures explained while the connection is still open."""
    from opencode_cloud.cli.service_target import engine_failure, host_config, ship_source
    from opencode_cloud.config.store import load_config
    from opencode_cloud.engine.remote import RemoteEngine
    from opencode_cloud.service.context import ServiceContext
    from opencode_cloud.service.names import ServiceNames

    config, names = load_config(), ServiceNames.from_environment()
    source = ship_source()
    source.hosts = len(fleet_hosts() or ())  # an image one host makes may go on to others

    def work(task) -> Any:
        endpoint = task.enter(RemoteEngine(task.host, task.reporter))
        service = ServiceContext(endpoint, host_config(config, task.host), names,
                                 task.reporter, ship=source)
        try:
            return op(service)
        except OccError:
            raise
        except Exception as exc:
            problem = engine_failure(endpoint, exc)
            if problem is None:
                raise
            raise problem from exc

    return work


def run_on_hosts(hosts: list, work: Callable[[Any], Any], *, as_json: bool = False,
                 to_json: Callable[[Any], dict[str, Any]] | None = None,
                 summary: Callable[[Any], str] | None = None, stream: bool = False,
                 rollout: dict[str, Any] | None = None, recap: bool = True,
                 ok_statuses: tuple[str, ...] = ("ok",), exit: bool = True) -> list:
    """Run ``work`` on every host and render the outcome; exits with the fleet's status
    (0 only when every host succeeded) unless ``exit`` is False.

    ``rollout`` (``{"batch": N, "canary": bool}``) runs a canary first, then batches, and
    halts on the first failure. ``stream`` prints every host's lines as they come.
    """
    from opencode_cloud.fleet.runner import rolling
    from opencode_cloud.output import fleet as render

    state = app_state()
    # Lines as they come: asked for, with -v, or without a terminal (but never into the
    # stdout of --json).
    stream = stream or state.verbose > 0 or (not as_json and not sys.stderr.isatty())
    fleet, view = make_fleet(hosts, stream=stream)
    with view:
        if rollout is not None:
            results = rolling(fleet, hosts, work, **rollout)
        else:
            results = fleet.run(hosts, work)
    for result in results:
        if result.unexpected is not None and state.verbose >= 2:
            import traceback

            traceback.print_exception(result.unexpected)
    out = make_printer()
    if as_json:
        out.json([render.result_json(r, to_json(r.value) if r.ok and to_json else None)
                  for r in results])
    elif recap and not state.quiet:
        summaries = {r.host: summary(r.value) for r in results if r.ok and summary}
        out.line()
        render.recap(out, results, summaries)
    if fleet.interrupted and "interrupted" not in ok_statuses:
        click.get_current_context().exit(130)
    if exit:
        ok = all(r.status in ok_statuses for r in results)
        click.get_current_context().exit(0 if ok else 1)
    return results


def rollout_options(func):
    """``--batch N`` and ``--no-canary`` for rolling commands (update, restart)."""
    func = click.option("--no-canary", is_flag=True,
                        help="With --group/--all: no lone first host; straight to batches.")(func)
    return click.option("--batch", type=click.IntRange(1, 64), metavar="N",
                        help="With --group/--all: hosts per batch after the canary "
                        "(default: --parallel).")(func)


def rollout(batch: int | None, no_canary: bool) -> dict[str, Any]:
    return {"batch": batch or parallel(), "canary": not no_canary}
