"""``occ host``: the registry of remote hosts (hosts.json) and their SSH connections.

One module per concern: ``add`` and ``edit`` change entries (``fields`` turns their
options into one validated entry), ``listing`` shows them, ``check`` tests a host and
installs Docker there, ``manage`` removes, picks the default and disconnects.
"""

from __future__ import annotations

import click

from opencode_cloud.cli.state import LocalOnlyGroup, global_options


@click.group("host", cls=LocalOnlyGroup)
@global_options
def host_group() -> None:
    """Manage remote hosts (hosts.json) and their SSH connections.

    \b
    Examples:
      occ host add web1 203.0.113.10 -u deploy -i ~/.ssh/id_ed25519
      occ host add inner 10.0.0.5 -J deploy@bastion.example.com
      occ host test web1
      occ host install-docker web1   (asks first; --yes for scripts)
      occ host default web1      (commands then act on web1; 'local' undoes it)
    """


from opencode_cloud.cli.commands.host import add, check, edit, listing, manage, share  # noqa: E402

for _module in (add, manage, listing, edit, check, share):
    for _command in _module.COMMANDS:
        host_group.add_command(_command)
