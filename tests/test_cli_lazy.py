"""The root command lists its sub-commands without importing them (issue 15, start-up):
each listed summary is its command's own first sentence, each entry resolves to a command,
and ``scanplan --help`` loads no command module, pydantic or rich."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer._click.utils import make_default_short_help

from scanplan.cli.lazy_group import load_command
from scanplan.cli.main import COMMANDS, app

#: far longer than any first sentence: the whole sentence, untruncated
_NO_LIMIT = 10_000


def test_each_summary_is_the_first_sentence_of_its_command_help():
    for name, entry in COMMANDS.items():
        command = load_command(name, entry)
        assert command.name == name
        assert command.short_help is None, name  # the listing shortens the help itself
        first_sentence = make_default_short_help(command.help or "", _NO_LIMIT)
        assert make_default_short_help(entry.summary, _NO_LIMIT) == first_sentence, name


def test_the_root_group_resolves_every_listed_command():
    root = typer.main.get_command(app)
    ctx = root.make_context("scanplan", ["--version"], resilient_parsing=True)
    assert root.list_commands(ctx) == list(COMMANDS)  # type: ignore[attr-defined]
    groups = {name for name, e in COMMANDS.items() if e.attr == "app"}
    for name in COMMANDS:
        command = root.get_command(ctx, name)  # type: ignore[attr-defined]
        assert command is not None and command.name == name
        assert hasattr(command, "commands") == (name in groups), name
    assert root.get_command(ctx, "no-such-command") is None  # type: ignore[attr-defined]


_PROBE = """
import contextlib, io, sys
from scanplan.cli.main import run
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = run(sys.argv[1:])
print(code)
print(out.getvalue())
print(" ".join(sorted(sys.modules)))
"""


def _modules_after(*args: str) -> tuple[int, str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    code, *help_lines, modules = done.stdout.rstrip("\n").split("\n")
    return int(code), "\n".join(help_lines), set(modules.split())


def test_root_help_imports_no_command_module():
    code, text, modules = _modules_after("--help")
    assert code == 0
    for name in COMMANDS:
        assert f"\n  {name} " in text, name
    loaded = {m for m in modules if m.startswith("scanplan.")}
    assert loaded == {"scanplan.cli", "scanplan.cli.main", "scanplan.cli.lazy_group"}
    heavy = {m.split(".")[0] for m in modules} & {"pydantic", "rich", "beamline", "numpy"}
    assert not heavy


def test_a_command_imports_only_its_own_module():
    code, text, modules = _modules_after("validate", "--help")
    assert code == 0 and "Usage: scanplan validate" in text
    commands = {m for m in modules if m.startswith("scanplan.cli.")}
    assert "scanplan.cli.plan" in commands
    assert not commands & {f"scanplan.cli.{m}" for m in ("study", "run", "sim", "analyse")}


def test_a_mistyped_command_is_one_error_line_with_suggestions(capsys):
    from scanplan.cli.main import run

    assert run(["optcs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: No such command 'optcs'.")
    assert "'optics'" in err[0] and "'optimise'" in err[0]
