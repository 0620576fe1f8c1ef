"""A Click group that imports a subcommand's module only when that subcommand runs.

This keeps ``occ --help`` fast: the Docker SDK and Rich load only where they are used.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    def __init__(self, *args, lazy_commands: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # name -> ("module.path:attribute", one-line help shown in the command list)
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy_commands:
            target, _ = self.lazy_commands[name]
            module_name, attr = target.split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)

    def shell_complete(self, ctx: click.Context, incomplete: str):
        """Subcommand names with their recorded help, without importing their modules (the
        shell waits for this after every TAB); options as Click completes them."""
        from click.shell_completion import CompletionItem

        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)
        return [CompletionItem(name, help=self.lazy_commands[name][1])
                for name in sorted(self.lazy_commands) if name.startswith(incomplete)]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Use the short help recorded here so that listing commands imports nothing.
        rows = [(name, self.lazy_commands[name][1]) for name in sorted(self.lazy_commands)]
        rows += [
            (name, cmd.get_short_help_str())
            for name, cmd in sorted(self.commands.items())
            if not cmd.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))
