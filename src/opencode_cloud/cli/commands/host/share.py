"""``occ host export`` and ``occ host import``: one host registry for a whole team.

What an export leaves out and how an import merges is decided in :mod:`hosts.share`;
here the files are read and written, and the outcome is told.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from opencode_cloud.cli.commands.host import fields
from opencode_cloud.cli.state import LocalOnlyCommand, global_options, make_printer
from opencode_cloud.errors import ConfigError, OccError
from opencode_cloud.hosts import share, store
from opencode_cloud.hosts.model import Host, HostsFile

STDIO = "-"


@click.command("export", cls=LocalOnlyCommand)
@click.option("-g", "--group", "groups", multiple=True, metavar="GROUP",
              help="Only the hosts of this group (repeatable: the union). Default: all.")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (0600) instead of stdout.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--with-identity-files", is_flag=True,
              help="Keep this machine's paths: identity files and extra_ca_certs settings.")
@global_options
def export(groups: tuple[str, ...], output: str | None, force: bool,
           with_identity_files: bool) -> None:
    """Write hosts as a hosts.json-format file to share (occ host import reads it).

    Left out: this machine's private paths, identity_file and the extra_ca_certs setting
    (unless --with-identity-files), and 'docker_missing' (what this machine's last check
    found). Other per-host settings are kept. The default host is written only if it is
    among the exported hosts.

    \b
    Examples:
      occ host export -o team-hosts.json
      occ host export -g prod > prod-hosts.json
    """
    hosts = store.load_hosts()
    selected = [h.name for h in store.select_hosts(groups, not groups, hosts)]
    result = share.export_hosts(hosts, selected, with_local_paths=with_identity_files)
    out = make_printer()
    if output is None or output == STDIO:
        click.echo(result.text(), nl=False)
    else:
        write_new_file(Path(output), result.text(), force=force)
        count = len(selected)
        out.success(f"Exported {count} host{'s' if count != 1 else ''} to {output}.")
    # Remarks go to stderr: stdout may be the document itself.
    if "identity_file" in result.left_out:
        out.notice("identity files left out: set them with occ host edit NAME -i KEY")
        out.notice(f"  (hosts: {', '.join(result.left_out['identity_file'])}; "
                   "--with-identity-files keeps them)")
    for key in share.LOCAL_PATH_SETTINGS:
        if key in result.left_out:
            out.notice(f"{key} settings left out (paths on this machine): set them with "
                       f"occ host edit NAME --set {key}=PATH")
            out.notice(f"  (hosts: {', '.join(result.left_out[key])}; "
                       "--with-identity-files keeps them)")
    for key, names in result.secrets.items():
        out.warn(f"the {key} settings of {', '.join(names)} are in the export and may hold "
                 "secrets (API keys): check the file before you share it")


def write_new_file(path: Path, text: str, *, force: bool) -> None:
    """Write ``path`` atomically, 0600 (never half a file, never readable by others), and
    never over an existing file unless ``force``: the new file is hard-linked into place,
    which fails if the name exists, so not even a file made meanwhile is overwritten. The
    folder's own mode is left alone (it is the user's folder, not occ's)."""
    import tempfile

    exists = ConfigError(f"{path} already exists",
                         hint="Choose another name, or replace it with --force.")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder", hint="Give a file name, such as "
                          f"{path / 'hosts-team.json'}.")
    if not force and (path.exists() or path.is_symlink()):
        raise exists
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}",
                          hint=f"Check that the folder {folder} exists and is yours.") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise exists from None
            except OSError:  # a file system without hard links
                if path.exists():
                    raise exists from None
                os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):  # make the new name durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_file(name: str) -> tuple[str, Path]:
    """The text of FILE (``-``: stdin), and the name to show in errors."""
    source = Path("<stdin>") if name == STDIO else Path(name)
    limit = share.MAX_IMPORT_BYTES
    try:
        if name == STDIO:
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(name, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}",
                          hint="Nothing was imported; hosts.json is unchanged.") from None
    if len(data) > limit:
        raise ConfigError(f"{source} is larger than {limit // (1024 * 1024)} MiB: not a "
                          "host registry", hint="Nothing was imported; hosts.json is unchanged.")
    try:
        return data.decode("utf-8"), source
    except UnicodeDecodeError:
        raise ConfigError(f"{source} is not UTF-8 text (not JSON)",
                          hint="Nothing was imported; hosts.json is unchanged.") from None


class _NothingToWrite(Exception):
    """Raised inside the locked change when the import changes nothing: no rewrite."""


@click.command("import", cls=LocalOnlyCommand)
@click.argument("file", metavar="FILE")
@click.option("--replace", is_flag=True,
              help="A host that exists takes the file's values (your identity files and "
              "extra_ca_certs stay when the file has none).")
@click.option("--skip-existing", is_flag=True, help="A host that exists keeps your values.")
@click.option("--verify/--no-verify", default=False,
              help="--verify: first check every host to add or replace over SSH, in "
              "parallel, and import nothing if one fails. --no-verify (the default): "
              "never connect.")
@global_options
def import_(file: str, replace: bool, skip_existing: bool, verify: bool) -> None:
    """Add the hosts of FILE (written by occ host export, or a hosts.json; '-' = stdin).

    Every value is checked exactly like a hand edit of hosts.json or 'occ host add'. A
    broken or hostile file (not JSON, unknown fields, bad values, a name given twice) is
    refused whole, naming the entry and the field, and hosts.json stays as it was; so is
    a file with a host that exists here, unless --replace or --skip-existing says what to
    do with it. Your default host never changes.

    By default import does not connect anywhere (exported files lack identity files, so
    set those first). --verify checks the hosts as 'occ host add' does, up to 10 at once.

    \b
    Examples:
      occ host import team-hosts.json
      occ host import team-hosts.json --replace --verify
    """
    if replace and skip_existing:
        raise click.UsageError("give --replace or --skip-existing, not both")
    on_conflict = share.REPLACE if replace else share.SKIP if skip_existing else share.REFUSE
    text, source = read_file(file)
    incoming = share.read_import(text, source)
    before = store.load_hosts()
    plan = share.plan_import(before, incoming, on_conflict=on_conflict, source=source)
    found: dict[str, bool] = {}
    if verify and plan.changes:
        found = verify_hosts([Host(n, plan.hosts.hosts[n]) for n in plan.added + plan.replaced],
                             source)
    result: list[share.ImportPlan] = []

    def change(hosts: HostsFile) -> HostsFile:
        result.append(share.plan_import(hosts, incoming, on_conflict=on_conflict,
                                        source=source, docker_missing=found))
        if not result[-1].changes:
            raise _NothingToWrite
        return result[-1].hosts

    with contextlib.suppress(_NothingToWrite):
        store.change_hosts(change)
    tell(result[-1], before, incoming, source)


def verify_hosts(hosts: list[Host], source: Path) -> dict[str, bool]:
    """Check ``hosts`` over SSH in parallel, as ``host add`` does; raise if SSH fails on any
    (nothing is imported). Returns, by name, whether Docker is missing there."""
    from opencode_cloud.cli.commands.host.check import print_report
    from opencode_cloud.cli.fleet import run_on_hosts

    def work(task):
        from opencode_cloud.engine.probe import probe_host
        from opencode_cloud.ssh.connection import HostConnection

        conn = task.enter(HostConnection(task.host, task.reporter))
        report = probe_host(conn)
        print_report(task.reporter, conn, report)
        return report

    def summary(report) -> str:
        if report.problem is None:
            return f"Docker {report.docker.version}" if report.docker else "ok"
        return f"imported anyway: {report.problem.message}"

    results = run_on_hosts(hosts, work, summary=summary, exit=False)
    failed = [r.host for r in results if not r.ok]
    if failed:
        raise OccError(
            f"SSH failed on {len(failed)} of {len(results)} hosts ({', '.join(failed)}): "
            "nothing was imported",
            hint=f"Fix them in {source}, or import with --no-verify, then set identity files "
            "with occ host edit NAME -i KEY and check with occ host test NAME.",
        )
    from opencode_cloud.engine.probe import DockerState

    return {r.host: r.value.problem is not None
            and r.value.problem.state is DockerState.MISSING for r in results}


def tell(plan: share.ImportPlan, before: HostsFile, incoming: HostsFile,
         source: Path) -> None:
    """What the import did, host by host, then the counts."""
    from opencode_cloud.cli.commands.host.manage import quiet_disconnect

    out = make_printer()
    names = {"identity_file": "identity file",
             **{key: f"{key} setting" for key in share.LOCAL_PATH_SETTINGS}}
    for name in plan.added:
        out.success(f"Added host '{name}' ({fields.describe(plan.hosts.hosts[name])}).")
    for name in plan.replaced:
        kept = plan.kept_local.get(name)
        also = f"; kept this machine's {' and '.join(names[k] for k in kept)}" if kept else ""
        out.success(f"Replaced host '{name}' ({fields.describe(plan.hosts.hosts[name])}){also}.")
        old = before.hosts.get(name)
        if old is not None and old.key_material() != plan.hosts.hosts[name].key_material():
            quiet_disconnect(Host(name, old))  # its socket is named after the old settings
    for name in plan.skipped:
        out.line(f"Skipped host '{name}': it exists here with other values (kept yours; "
                 "--replace takes the file's).")
    for name in plan.unchanged:
        out.line(f"Host '{name}' is already here with the same values.")
    counts = [f"{len(getattr(plan, k))} {k}" for k in ("added", "replaced", "skipped",
                                                       "unchanged") if getattr(plan, k)]
    out.line(f"Imported from {source}: {', '.join(counts)}."
             + ("" if plan.changes else " hosts.json is unchanged."))
    for name in plan.added + plan.replaced:
        key = plan.hosts.hosts[name].identity_file
        if key and not os.path.isfile(os.path.expanduser(key)):
            out.warn(f"host '{name}': the identity file {key} does not exist here")
    keyless = [n for n in plan.added if plan.hosts.hosts[n].identity_file is None]
    if keyless:
        out.detail(f"No identity file for {', '.join(keyless)}: ssh uses your agent and "
                   "~/.ssh/config; set one with occ host edit NAME -i KEY.")
    if plan.changes:
        out.detail("Check them with: occ host test NAME (or --group G, --all).")
    default = incoming.default_host
    if default and default != plan.hosts.default_host and default in plan.hosts.hosts:
        out.detail(f"{source} names '{default}' as its default host; yours is unchanged "
                   f"(make it yours with: occ host default {default}).")


COMMANDS = [export, import_]
