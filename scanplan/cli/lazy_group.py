"""Sub-commands of ``scanplan`` that are imported only when they run.

``scanplan --help`` lists every command with the first sentence of its help. Importing the
command modules to get that sentence costs 0.2-0.3 s (pydantic and the data-file models read
for the option defaults, rich, ...), which is more than the start-up budget of 5x a bare
``python -c pass`` (issue 15). :class:`LazyGroup` therefore lists the commands from a table of
(module, attribute, summary) and imports a command's module only when click resolves that
command: to run it, to print its own ``--help``, or for ``scripts/gen_cli_docs.py``.

Each summary repeats the first sentence of its command's help; ``tests/test_cli_lazy.py``
fails when the two differ, so the listing cannot drift from the commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, ClassVar

import typer
from typer._click.exceptions import UsageError
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup

#: Settings every ``scanplan`` command is built with (the root app and each lazy holder),
#: so a command resolved lazily gets the same help formatting as one registered up front.
APP_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    # plain click help: no rich markup (it would turn "a:b:step" into an emoji and "[MeV]"
    # into a style tag) and boolean flags shown as flags, not "<bool>"
    "rich_markup_mode": None,
}


@dataclass(frozen=True)
class LazyCommand:
    """Where a sub-command lives and what ``scanplan --help`` says of it."""

    #: module under ``scanplan.cli`` that defines the command
    module: str
    #: the command function, or the ``typer.Typer`` of a command group, in that module
    attr: str
    #: the first sentence of the command's help (checked against it by the tests)
    summary: str


def load_command(name: str, entry: LazyCommand) -> Any:
    """Import ``entry`` and build its click command exactly as ``app.command(name)`` or
    ``app.add_typer(sub, name=name)`` on the root app would."""
    target = getattr(importlib.import_module(f"scanplan.cli.{entry.module}"), entry.attr)
    holder = typer.Typer(**APP_SETTINGS)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    # a callback makes the holder a group, so the command is built as a sub-command
    holder.callback()(lambda: None)
    return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]


class LazyGroup(TyperGroup):
    """A typer group whose sub-commands (:attr:`lazy`, in listing order) are imported on use."""

    lazy: ClassVar[Mapping[str, LazyCommand]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.commands[cmd_name] = load_command(cmd_name, self.lazy[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            # typer suggests close names among the commands built so far; suggest among all
            if args and not args[0].startswith("-"):
                base = exc.message.split(". Did you mean")[0].rstrip(".")
                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    suggestions = ", ".join(f"{match!r}" for match in matches)
                    exc.message = f"{base}. Did you mean {suggestions}?"
            raise

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The ``Commands:`` section from the summaries, importing no command module."""
        names = self.list_commands(ctx)
        if not names:
            return
        # the same width rule as typer's own listing: three times click's default spacing
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                if loaded.hidden:
                    continue
                rows.append((name, loaded.get_short_help_str(limit)))
            else:
                # shortened as click shortens a command's own help for a listing
                rows.append((name, make_default_short_help(self.lazy[name].summary, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

