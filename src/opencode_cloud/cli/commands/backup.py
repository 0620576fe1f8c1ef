"""``occ backup``: the service's volumes and login, copied into one archive here."""

from __future__ import annotations

from pathlib import Path

import click

from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import app_state, global_options


def default_output(host: str | None) -> Path:
    import time

    return Path(f"occ-backup-{host or 'local'}-{time.strftime('%Y%m%d-%H%M%S')}.tar.zst")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@click.command("backup", cls=ServiceCommand)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Archive to write (default: occ-backup-HOST-DATE.tar.zst here).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@global_options
def backup_command(output: Path | None, force: bool, as_json: bool) -> None:
    """Back up the service: workspace, opencode's sessions, settings and the login.

    opencode is paused (not stopped) while its volumes are copied, and resumed right
    after; the archive (zstd-compressed tar, 0600) lists every file's SHA-256.

    \b
    Examples:
      occ backup -o work.tar.zst
      occ backup --host old -o move.tar.zst && occ restore move.tar.zst --host new
    """
    from opencode_cloud.engine.target import resolve_host
    from opencode_cloud.service.backup import backup
    from opencode_cloud.storage.backup_file import check_output, output_file

    state = app_state()
    if as_json:  # stdout is for the JSON document alone (progress lines would break it)
        state.quiet = True
    target = resolve_host(state.host, state.local)  # hosts.json only: no connection yet
    path = output or default_output(target.name if target is not None else None)
    check_output(path, force)  # before any connection: a bad path costs nothing
    service = open_service()
    source = state.target_host or "this machine"
    with output_file(path, force) as sink:
        outcome = backup(service, sink, source)
    out = printer_of(service)
    size = path.stat().st_size
    if as_json:
        out.json({"file": str(path), "bytes": outcome.total_bytes, "archive_bytes": size,
                  "files": outcome.file_count, "paused_seconds": outcome.paused_seconds,
                  "copy_seconds": outcome.copy_seconds,
                  "opencode_version": outcome.manifest.get("opencode_version"),
                  "volumes": outcome.manifest["volumes"], "skipped": outcome.skipped})
        return
    for name in outcome.skipped:
        out.warn(f"not backed up (a device node or an unknown entry): {name}")
    rate = outcome.total_bytes / outcome.copy_seconds / 1e6 if outcome.copy_seconds else 0
    out.success(f"Backed up {outcome.file_count} files ({megabytes(outcome.total_bytes)}) "
                f"to {path} ({megabytes(size)} compressed, {rate:.0f} MB/s).")
    if outcome.paused_seconds is not None:
        out.line(f"opencode was paused for {outcome.paused_seconds:.1f} s and runs again.")
    else:
        out.line("opencode was not running, so nothing was paused.")
    out.detail("The archive holds the login and opencode's provider keys: keep it private.")
