"""``scanplan check``: check one plan point on the machine (or the simulator).

Exit codes: 0 verdict OK or WARN, 3 verdict FAIL, 2 bad input (one ``error:`` line).
Addresses default to the environment variables that ``scanplan sim`` prints
(``SCANPLAN_MEMCACHED``, ``SCANPLAN_KEY_PREFIX``, ``SCANPLAN_TIMEPIX``, ``SCANPLAN_STORE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import ScanplanError
from .common import (
    DEFAULT_MEMCACHED,
    DEFAULT_TIMEPIX_URL,
    MAX_HW_TIMEOUT_S,
    MAX_WAIT_S,
    JsonOpt,
    MemcachedOpt,
    PrefixOpt,
    TimepixUrlOpt,
    check_number,
    console,
    guarded,
    print_json,
)

if TYPE_CHECKING:
    from ..check.verdict import SettlePoll, Verdict

EXIT_FAIL = 3

PlanOpt = Annotated[Path, typer.Option("--plan", help="Plan file (JSON from scanplan plan).")]
StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar="SCANPLAN_STORE",
        help="Run-conditions store (SQLite; default scanplan_runs.sqlite).",
    ),
]
TolOpt = Annotated[
    Path | None,
    typer.Option("--tolerances", help="TOML file overriding lattices/checks/tolerances.toml."),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout-s", help="Per-call hardware timeout [s].")]


def tolerance_default(table: str, key: str, unit: str = "") -> str:
    """``"default 60 s from tolerances.toml settle.timeout_s"`` for a help text: the value
    is read from the data file, never repeated here. Read raw (tomllib), not through the
    validated model: importing pydantic would cost ``scanplan --help`` about 0.1 s; a broken
    file is reported by the validation when a command runs."""
    import tomllib

    from beamline.paths import data_file

    try:
        with open(data_file("checks", "tolerances.toml"), "rb") as fh:
            value = tomllib.load(fh)[table][key]
        float(value)
    except (OSError, ValueError, KeyError, TypeError, ScanplanError):
        value = None
    shown = f"{value:g}{(' ' + unit) if unit else ''} " if value is not None else ""
    return f"default {shown}from tolerances.toml {table}.{key}"


SETTLE_TIMEOUT_HELP = f"settle timeout [s] ({tolerance_default('settle', 'timeout_s', 's')})."

LEVEL_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red"}
#: units shortened in the table (the JSON keeps the verdict's unit)
UNIT_SHOWN = {"fraction": "frac"}


def verdict_table(verdict: Verdict) -> Table:
    """The comparisons table: the quantity column folds, numbers and the level never do
    (readable at 80 columns); values carry the digits their tolerance needs
    (:meth:`Comparison.shown`), so a FAIL never shows two equal numbers."""
    table = Table(
        title=f"Check of point {verdict.period} (plan {verdict.plan_sha256[:12]})",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("quantity", overflow="fold", ratio=1, min_width=12)
    for header in ("measured", "expected", "diff"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("warn/fail", no_wrap=True)
    table.add_column("level", no_wrap=True, min_width=5)
    for c in verdict.comparisons:
        tol = "/".join(c.shown(t) for t in (c.warn, c.fail) if t is not None)
        table.add_row(
            c.name,
            c.shown(c.measured),
            c.shown(c.expected),
            c.shown(c.difference),
            f"{tol} {UNIT_SHOWN.get(c.unit, c.unit)}".strip(),
            Text(c.level, style=LEVEL_STYLE.get(c.level, "")),
        )
    return table


def print_verdict(verdict: Verdict, out: Console | None = None) -> None:
    """Human output: the comparisons table, the verdict line with reasons, the plot path."""
    out = out or console
    out.print(verdict_table(verdict))
    style = LEVEL_STYLE.get(verdict.level, "")
    out.print(
        Text(verdict.level, style=style),
        f"point {verdict.period} in {verdict.elapsed_s:.2f} s",
        highlight=False,
    )
    for reason in verdict.reasons:
        out.print(f"  - {reason}", highlight=False)


def poll_text(poll: SettlePoll) -> str:
    """One line for the spinner while ``--watch`` waits for the readbacks to settle."""
    from ..check.verdict import ReadError

    parts = []
    for element, r in poll.readings.items():
        if isinstance(r, ReadError):
            parts.append(f"{element}: {r.error_type}")
        else:
            parts.append(
                f"{element} set {r.current_setting_a:.3f} A out {r.output_current_a:.3f} A"
            )
    return f"settling {poll.elapsed_s:.1f} s (stable {poll.stable}): " + ", ".join(parts)


@guarded
def check(
    plan: PlanOpt,
    point: Annotated[int, typer.Option("--point", help="Plan period to check.")],
    watch: Annotated[
        bool, typer.Option("--watch", help="Wait for the readbacks to settle first.")
    ] = False,
    settle_timeout_s: Annotated[
        float | None,
        typer.Option("--settle-timeout-s", help="With --watch: " + SETTLE_TIMEOUT_HELP),
    ] = None,
    memcached: MemcachedOpt = DEFAULT_MEMCACHED,
    key_prefix: PrefixOpt = "",
    timepix: TimepixUrlOpt = DEFAULT_TIMEPIX_URL,
    store: StoreOpt = None,
    tolerances: TolOpt = None,
    timeout_s: TimeoutOpt = 1.0,
    no_model: Annotated[
        bool, typer.Option("--no-model", help="Skip the model prediction of the spot.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write the measured vs predicted spot on the TimePix with the tolerance "
            "ellipses (PNG, PDF, SVG... by suffix).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a plan point: dipole and quadrupole set points, readbacks, status, energy and
    the TimePix spot vs the model; record readings and verdict. Exit 0 OK/WARN, 3 FAIL."""
    if plot is not None:
        from ..figures import check_figure_path

        check_figure_path(plot)
    check_number(settle_timeout_s, "--settle-timeout-s", low=0, high=MAX_WAIT_S, low_open=True)
    check_number(timeout_s, "--timeout-s", low=0, high=MAX_HW_TIMEOUT_S, low_open=True)
    status = None if json_out else console.status(f"checking point {point}...")

    def on_poll(poll: SettlePoll) -> None:
        if status is not None:
            status.update(poll_text(poll))

    if status is not None:
        status.start()
    from ..check.session import run_check

    try:
        verdict = run_check(
            plan,
            point,
            memcached=memcached,
            key_prefix=key_prefix,
            timepix=timepix,
            store_path=store,
            tolerances_path=tolerances,
            watch=watch,
            settle_timeout_s=settle_timeout_s,
            timeout_s=timeout_s,
            use_model=not no_model,
            on_poll=on_poll,
        )
    finally:
        if status is not None:
            status.stop()
    written = None
    if plot is not None:
        from ..plots.control import plot_check

        written = plot_check(verdict, plot)
    if json_out:
        doc = verdict.as_dict()
        if written is not None:
            doc["plot"] = str(written)
        print_json(doc)
    else:
        print_verdict(verdict)
        if written is not None:
            console.print(f"plot: {written}", highlight=False)
    if verdict.level == "FAIL":
        raise typer.Exit(EXIT_FAIL)
