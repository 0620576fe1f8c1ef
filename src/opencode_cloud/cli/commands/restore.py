"""``occ restore``: check a backup whole, then put it on a target and start the service."""

from __future__ import annotations

from pathlib import Path

import click

from opencode_cloud.cli.service_target import (
    ServiceCommand,
    confirm_or_fail,
    open_service,
    printer_of,
    readiness_timeout_option,
)
from opencode_cloud.cli.state import app_state, global_options, make_reporter


@click.command("restore", cls=ServiceCommand)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", "-y", is_flag=True, help="Do not ask before replacing the service.")
@click.option("--force", is_flag=True,
              help="Replace volumes that hold data (they are deleted).")
@readiness_timeout_option()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@global_options
def restore_command(file: Path, yes: bool, force: bool, timeout: float,
                    as_json: bool) -> None:
    """Restore a backup made by 'occ backup' and start the service with it.

    The whole archive is checked first (its manifest and every file's SHA-256); a damaged,
    cut or foreign file changes nothing. A target whose volumes hold data is refused
    unless --force. Restoring on another host is how you move:

    \b
    Examples:
      occ restore work.tar.zst
      occ backup --host old -o move.tar.zst && occ restore move.tar.zst --host new
    """
    from opencode_cloud.image.build import OPENCODE_VERSION_LABEL
    from opencode_cloud.service.restore import prepare, restore
    from opencode_cloud.storage.backup_archive import verify

    if as_json:  # stdout is for the JSON document alone (progress lines would break it)
        app_state().quiet = True
    size = file.stat().st_size if file.is_file() else None
    checker = make_reporter()
    checker.step(f"Checking {file}")
    done = 0

    def count(n: int) -> None:
        nonlocal done
        done += n
        checker.progress(f"Checking {file.name}", done, size)

    try:
        checked = verify(str(file), count)  # nothing is connected or touched before this
    finally:
        checker.stop_live()
    manifest = checked.manifest
    service = open_service()
    out = printer_of(service)
    if not as_json:
        out.line(f"{file}: {checked.file_count} files ({checked.total_bytes / 1e6:.1f} MB) "
                 f"from {manifest.get('source')}, {manifest.get('created')}, opencode "
                 f"{manifest.get('opencode_version') or 'unknown'}; every checksum matches.")
    plan = prepare(service, force)
    running = (plan.image.labels or {}).get(OPENCODE_VERSION_LABEL)
    made_with = manifest.get("opencode_version")
    if made_with and running and made_with != running:
        out.warn(f"the backup's data comes from opencode {made_with}; the service "
                 f"{service.endpoint.where} will run opencode {running} "
                 "(set opencode_version to match, if you need the same)")
    if not yes:
        replaced = "replace its volumes" if plan.occupied else "restore into it"
        confirm_or_fail(f"Stop the service {service.endpoint.where}, {replaced} and start "
                        "it again?", "--yes")
    outcome = restore(service, plan, str(file), checked, timeout)
    health = outcome.start.health
    if as_json:
        out.json({"file": str(file), "files": checked.file_count,
                  "bytes": checked.total_bytes, "copy_seconds": outcome.copy_seconds,
                  "unavailable_seconds": outcome.unavailable_seconds,
                  "healthy": health.healthy, "opencode_version": health.version})
        return
    out.success(f"Restored {checked.file_count} files; opencode {health.version or ''} is "
                f"healthy (unavailable for {outcome.unavailable_seconds:.1f} s).")
    out.line("The login is the backup's: 'occ credentials' shows it.")
