"""Generate docs/cli.md, the command reference, from the typer app (``scanplan.cli.main``).

    python scripts/gen_cli_docs.py            # write docs/cli.md
    python scripts/gen_cli_docs.py --check    # exit 1 if docs/cli.md is out of date

Walks every command and sub-command through the click layer of typer (``get_command``,
``list_commands``, ``collect_usage_pieces``, ``get_help_record``), so the text is the same
as ``--help`` without terminal-width or colour effects. ``tests/test_cli_docs.py`` fails when
docs/cli.md differs from what this script produces: re-run it after changing a command.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "cli.md"
PROG = "scanplan"

HEADER = f"""\
# `{PROG}` command reference

Generated from the typer app (`scanplan.cli.main`) by `python scripts/gen_cli_docs.py`.
Do not edit by hand: `tests/test_cli_docs.py` fails when this file is out of date, so a
changed command means re-running the script. Every command also answers `--help`.

Conventions (docs/CONTRIBUTING.md): human tables by default, `--json` for machine rows, bad
input gives one `error: ...` line on stderr and exit code 2. `scanplan check` exits 3 on a
FAIL verdict. Addresses of the machine (or of `scanplan sim`) can come from the environment
variables `SCANPLAN_MEMCACHED`, `SCANPLAN_KEY_PREFIX`, `SCANPLAN_TIMEPIX`,
`SCANPLAN_RUNCONTROL`, `SCANPLAN_STORE` where an option says so.
"""


@contextmanager
def _clean_environment() -> Iterator[None]:
    """Hide SCANPLAN_* variables so the output never depends on the caller's shell."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("SCANPLAN_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def _root_command() -> Any:
    import typer

    from scanplan.cli.main import app

    return typer.main.get_command(app)


def _context(cmd: Any, name: str, parent: Any | None) -> Any:
    return cmd.context_class(cmd, info_name=name, parent=parent)


def _walk(cmd: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    yield cmd, ctx
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            yield from _walk(sub, _context(sub, name, ctx))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _help_text(cmd: Any) -> str:
    text = inspect.cleandoc(cmd.help or "")
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def _param_rows(cmd: Any, ctx: Any) -> list[tuple[str, str]]:
    rows = []
    for param in cmd.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:  # click arguments have no help record
            name = param.human_readable_name
            extra = "required" if param.required else "optional"
            record = (name, f"argument ({extra})")
        rows.append((record[0], record[1] or ""))
    return rows


def render() -> str:
    """The whole reference as Markdown text."""
    with _clean_environment():
        root = _root_command()
        ctx = _context(root, PROG, None)
        sections = []
        contents = []
        for cmd, cctx in _walk(root, ctx):
            path = cctx.command_path
            level = "#" * min(2 + path.count(" "), 4)
            anchor = path.replace(" ", "-")
            short = _cell(cmd.get_short_help_str(limit=90)) if cctx.parent is not None else ""
            indent = "  " * max(path.count(" ") - 1, 0)
            if cctx.parent is not None:
                contents.append(f"{indent}- [`{path}`](#{anchor}){' — ' + short if short else ''}")
            usage = " ".join([path, *cmd.collect_usage_pieces(cctx)])
            parts = [f"{level} `{path}`", "", "```text", f"Usage: {usage}", "```", ""]
            help_text = _help_text(cmd)
            if help_text:
                parts += [help_text, ""]
            rows = _param_rows(cmd, cctx)
            if rows:
                parts += ["| option | description |", "|---|---|"]
                parts += [f"| `{_cell(opt)}` | {_cell(desc)} |" for opt, desc in rows]
                parts.append("")
            if hasattr(cmd, "list_commands"):
                subs = [
                    n
                    for n in cmd.list_commands(cctx)
                    if not getattr(cmd.get_command(cctx, n), "hidden", False)
                ]
                if subs:
                    parts += ["Commands: " + ", ".join(f"`{path} {n}`" for n in subs), ""]
            sections.append("\n".join(parts))
    body = [HEADER, "## Contents", "", *contents, "", *sections]
    return "\n".join(body).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is stale")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python scripts/gen_cli_docs.py")
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
