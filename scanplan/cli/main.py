"""The ``scanplan`` command line. Each sub-command lives in its own module under
``scanplan.cli`` and imports heavy libraries (xtrack, pandas, ...) only when it runs, so
``scanplan --help`` stays fast and never imports xtrack."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from .lazy_group import APP_SETTINGS, LazyCommand, LazyGroup

#: Every sub-command in the order ``scanplan --help`` lists them: (module under
#: ``scanplan.cli``, command function or group app, first sentence of its help). Modules are
#: imported only when their command is resolved (:mod:`scanplan.cli.lazy_group`).
COMMANDS: dict[str, LazyCommand] = {
    # model and calibrations
    "optics": LazyCommand(
        "optics", "optics", "Optics table at SLTB2..TimePix for a settings entry and beam energy."
    ),
    "spread": LazyCommand(
        "spread",
        "spread",
        "Energy spread and transmission for every energy and slit setting; advisor for a "
        "target spread.",
    ),
    # planning and run conditions
    "plan": LazyCommand(
        "plan",
        "plan",
        "Plan a scan over a mass, sqrt(s) or beam-energy range and write the plan JSON.",
    ),
    "show": LazyCommand(
        "plan",
        "show",
        "Table of a plan's points (with calendar) and an optional plot over the line shapes; "
        "with --store the progress of the scan (POT recorded vs planned, suspensions).",
    ),
    "validate": LazyCommand(
        "plan",
        "validate",
        "Check hash, current limits, spacing, hysteresis monotonicity, duplicates (exit 2 if "
        "invalid).",
    ),
    "yield": LazyCommand(
        "plan",
        "yield_",
        "Signal yield per POT per g² and sqrt(s) at one (mass, beam energy).",
    ),
    "sensitivity": LazyCommand(
        "study",
        "sensitivity",
        "Expected CLs upper limit on g versus mass (Asimov; optional toy-MC grid on Dask).",
    ),
    "compare": LazyCommand(
        "study",
        "compare",
        "Two plans side by side: points, spacing, POT, time, coverage, expected limits.",
    ),
    "optimise": LazyCommand(
        "study",
        "optimise",
        "Redistribute the beam time over the points to maximise sensitivity in a mass window.",
    ),
    "sweep": LazyCommand(
        "study",
        "sweep",
        "Compare plans over many options (every combination of --vary), one Dask task each.",
    ),
    "analyse": LazyCommand(
        "analyse",
        "analyse",
        "Local significance, best fit and 90 % CL limits on g of an observed scan (PADME's "
        "published likelihood); with --toys the global significance.",
    ),
    "replan": LazyCommand(
        "analyse",
        "replan",
        "Re-allocate the remaining beam time after the points taken so far (expected "
        "discovery power over the masses still open); the new plan chains the old one's hash.",
    ),
    "export": LazyCommand(
        "export",
        "export",
        "Export a plan (hash verified) to one of PADME's bookkeeping formats.",
    ),
    "import-root": LazyCommand(
        "export",
        "import_root",
        "Read PADME's statistical-treatment graphs into the observed-scan table (CSV).",
    ),
    # control room
    "check": LazyCommand(
        "check",
        "check",
        "Check a plan point: dipole and quadrupole set points, readbacks, status, energy and "
        "the TimePix spot vs the model; record readings and verdict.",
    ),
    "run": LazyCommand(
        "run",
        "run",
        "Take the plan point by point: show/set currents, check, start the PADME run with the "
        "tag, record; resumable after a crash.",
    ),
    # command groups
    "calib": LazyCommand(
        "calib",
        "app",
        "Magnet calibrations: current <-> field <-> beam energy, with branch and sigma.",
    ),
    "store": LazyCommand(
        "store",
        "app",
        "Run-conditions store (append-only history) and PadmeDAQ run conditions.",
    ),
    "hw": LazyCommand(
        "hw", "app", "Read BTF power supplies, machine state and the TimePix beam spot."
    ),
    "sim": LazyCommand(
        "sim",
        "app",
        "Run the virtual BTF (PSU records in memcached, TimePix HTTP, RunControl TCP); "
        "inject/clear faults in a running one.",
    ),
}


class ScanplanGroup(LazyGroup):
    """The root group: :data:`COMMANDS`, imported on use."""

    lazy = COMMANDS


app = typer.Typer(
    name="scanplan",
    help="Plan and run resonant energy scans on the BTF -> PADME line.",
    no_args_is_help=True,
    cls=ScanplanGroup,
    **APP_SETTINGS,
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


def _skip_notebook_progress_bars() -> None:
    """xtrack imports ``tqdm.notebook`` at import time, which imports IPython (0.2-0.4 s).
    A console process never shows notebook widgets: mark the module absent so xtrack falls
    back to the console progress bar (its import is guarded by ``except``)."""
    if "ipykernel" not in sys.modules:
        sys.modules.setdefault("tqdm.notebook", None)  # type: ignore[arg-type]


#: Exit code of an unexpected exception (a bug; BSD's EX_SOFTWARE): one ``error:`` line
#: instead of a traceback; ``SCANPLAN_DEBUG=1`` re-raises it. Distinct from 2 (bad input)
#: and 3 (check FAIL / run stopped) so that tests catch such bugs.
EXIT_INTERNAL_ERROR = 70


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``) and return its exit code.

    Usage errors found while parsing (a bad option value such as a range, an unknown option or
    command, a missing argument) are one ``error:`` line on stderr and exit 2, like the input
    errors the commands raise themselves (:func:`scanplan.cli.common.guarded`); a group called
    without a command prints its help and exits 2. An interrupt is one line and
    130; an unexpected exception one line and :data:`EXIT_INTERNAL_ERROR`.
    """
    _skip_notebook_progress_bars()
    try:
        result = app(
            args=None if argv is None else list(argv), prog_name="scanplan", standalone_mode=False
        )
    except (Exception, KeyboardInterrupt) as exc:
        return _exit_code(exc)
    return result if isinstance(result, int) else 0


def _exit_code(exc: BaseException) -> int:
    """Print the one line for an exception that escaped the commands and return the exit code.

    The console helpers (rich) are imported only here and by the commands themselves, so
    ``scanplan --help`` never loads them.
    """
    from . import common

    if isinstance(exc, typer.Abort):
        common.err_console.print("aborted", highlight=False)
        return 1
    if isinstance(exc, typer.TyperException):  # typer's own click exceptions (usage errors)
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(ctx.get_help() if ctx is not None else exc.format_message())
            return common.EXIT_USER_ERROR
        message = " ".join(exc.format_message().split())
        if ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
        return common.fail(message).exit_code
    if isinstance(exc, common.USER_ERRORS):  # raised outside a guarded command (a callback)
        common.fail(str(exc))
        return common.EXIT_USER_ERROR
    if isinstance(exc, KeyboardInterrupt):
        common.fail("interrupted")
        return 130
    if os.environ.get("SCANPLAN_DEBUG"):
        raise exc
    common.fail(f"unexpected {type(exc).__name__}: {exc} (SCANPLAN_DEBUG=1 shows the traceback)")
    return EXIT_INTERNAL_ERROR


def main(argv: Sequence[str] | None = None) -> None:
    """The ``scanplan`` console entry point: :func:`run`, then exit with its code."""
    sys.exit(run(argv))


if __name__ == "__main__":  # pragma: no cover
    main()
