"""``occ completion SHELL``: the shell's completion script."""

from __future__ import annotations

import click

from opencode_cloud.cli.completion import SHELLS
from opencode_cloud.cli.state import LocalOnlyCommand, global_options


@click.command("completion", cls=LocalOnlyCommand)
@click.argument("shell", type=click.Choice(SHELLS))
@global_options
def completion_command(shell: str) -> None:
    """Print the completion script for bash, zsh or fish.

    It completes commands and options, host names after --host and after occ host
    show/edit/test/remove/default, group names after --group, config keys after occ config
    get/set and the allowed values of enum keys. It reads only this machine's files.

    \b
    Install:
      bash:  occ completion bash > ~/.local/share/bash-completion/completions/occ
      zsh:   occ completion zsh > "${fpath[1]}/_occ"    (then: compinit)
      fish:  occ completion fish > ~/.config/fish/completions/occ.fish
    """
    from opencode_cloud.cli.completion import script
    from opencode_cloud.cli.main import cli

    click.echo(script(shell, cli))
