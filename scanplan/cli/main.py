"""The ``scanplan`` command line. Each sub-command lives in its own module under
``scanplan.cli`` and imports heavy libraries (xtrack, pandas, ...) only when it runs, so
``scanplan --help`` stays fast and never imports xtrack."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from . import analyse as _analyse
from . import calib as _calib
from . import check as _check
from . import common
from . import export as _export
from . import hw as _hw
from . import optics as _optics
from . import plan as _plan
from . import run as _run
from . import sim as _sim
from . import spread as _spread
from . import store as _store
from . import study as _study

app = typer.Typer(
    name="scanplan",
    help="Plan and run resonant energy scans on the BTF -> PADME line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: no rich markup (it would turn "a:b:step" into an emoji and "[MeV]"
    # into a style tag) and boolean flags shown as flags, not "<bool>"
    rich_markup_mode=None,
)


def tool_version() -> str:
    """The installed version of btf-scanplan (``0+unknown`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("btf-scanplan")
    except PackageNotFoundError:
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"scanplan {tool_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Plan and run resonant energy scans on the BTF -> PADME line."""


# model and calibrations
app.command("optics")(_optics.optics)
app.add_typer(_calib.app, name="calib")
app.command("spread")(_spread.spread)
# planning and run conditions
app.command("plan")(_plan.plan)
app.command("show")(_plan.show)
app.command("validate")(_plan.validate)
app.command("yield")(_plan.yield_)
app.command("sensitivity")(_study.sensitivity)
app.command("compare")(_study.compare)
app.command("optimise")(_study.optimise)
app.command("sweep")(_study.sweep)
app.command("analyse")(_analyse.analyse)
app.command("replan")(_analyse.replan)
app.command("export")(_export.export)
app.command("import-root")(_export.import_root)
app.add_typer(_store.app, name="store")
# control room
app.add_typer(_hw.app, name="hw")
app.add_typer(_sim.app, name="sim")
app.command("check")(_check.check)
app.command("run")(_run.run)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``) and exit with its code.

    Usage errors found while parsing (a bad option value such as a range, an unknown option or
    command, a missing argument) are one ``error:`` line on stderr and exit 2, like the input
    errors the commands raise themselves (:func:`scanplan.cli.common.guarded`); a group called
    without a command prints its help and exits 2.
    """
    try:
        result = app(args=None if argv is None else list(argv), standalone_mode=False)
    except typer.Abort:
        common.err_console.print("aborted", highlight=False)
        sys.exit(1)
    except typer.TyperException as exc:  # typer's own click exceptions (usage errors)
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(ctx.get_help() if ctx is not None else exc.format_message())
            sys.exit(common.EXIT_USER_ERROR)
        message = " ".join(exc.format_message().split())
        if ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
        raise SystemExit(common.fail(message).exit_code) from None
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
