"""docs/cli.md is the command reference generated from the typer app: it must be up to date.

After adding or changing a command, run ``python scripts/gen_cli_docs.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date() -> None:
    expected = _generator().render()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == expected, (
        "docs/cli.md is out of date with the typer app: run python scripts/gen_cli_docs.py"
    )


def test_cli_reference_covers_every_command() -> None:
    gen = _generator()
    text = gen.render()
    root = gen._root_command()
    ctx = gen._context(root, gen.PROG, None)
    for _, cctx in gen._walk(root, ctx):
        assert f"`{cctx.command_path}`" in text, cctx.command_path
    for command in ("scanplan check", "scanplan run", "scanplan plan", "scanplan sim"):
        assert f"## `{command}`" in text, command
