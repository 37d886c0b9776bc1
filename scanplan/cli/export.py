"""``scanplan export``: a plan in PADME's bookkeeping formats (RunEnergy, run-level offline
table, MC macro blocks, CSV, start-of-run tags). Text goes to stdout, or atomically to
``-o FILE``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ScanplanError
from .common import console, guarded, print_json, rich_table


def _store_for(path: Path | None, *, required: bool) -> Any:
    """The SQLite store named (or the default one if it exists); None if none is usable."""
    from scanplan.store.sqlite import SQLiteStore, default_store_path

    target = path or default_store_path()
    if path is None and not target.exists():
        return None
    if not target.exists() and required:
        raise ScanplanError(f"store {target} does not exist")
    return SQLiteStore(target, read_only=True)


def measured_by_run(store: Any, plan_sha: str) -> dict[int, dict[str, Any]]:
    """run -> merged payloads of the plan's ``measured`` events (later events win)."""
    out: dict[int, dict[str, Any]] = {}
    for ev in store.history(plan_sha256=plan_sha, kinds=["measured"]):
        if ev.run_number is not None:
            out.setdefault(ev.run_number, {}).update(ev.payload)
    return out


def applied_energies_by_run(store: Any, plan_sha: str) -> dict[int, float]:
    """run -> ``e_beam_mev`` of the latest ``applied`` event of the plan carrying one."""
    out: dict[int, float] = {}
    for ev in store.history(plan_sha256=plan_sha, kinds=["applied"]):
        if ev.run_number is not None and "e_beam_mev" in ev.payload:
            out[ev.run_number] = float(ev.payload["e_beam_mev"])
    return out


@guarded
def export(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON written by 'scanplan plan'.")],
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="runenergy | offline-db | mc-macro | csv | sor-tag"),
    ],
    table_format: Annotated[
        str,
        typer.Option(
            help="Offline table format: 2022 or 2025 (columns: scanplan.exports.offline_db)."
        ),
    ] = "2022",
    runs: Annotated[
        Path | None,
        typer.Option(
            help="Run map file: lines '<period> <run> [<run>...]' or JSON {period: [runs]}."
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            help="Run-conditions store for run numbers and measured values "
            "(default: $SCANPLAN_STORE or ./scanplan_runs.sqlite if present)."
        ),
    ] = None,
    period: Annotated[
        list[int] | None, typer.Option(help="Export only this period (repeatable).")
    ] = None,
    energy: Annotated[
        str,
        typer.Option(
            help="runenergy/offline-db energy column: 'planned' (the plan) or 'applied' "
            "(e_beam_mev of the latest 'applied' store record of each run)."
        ),
    ] = "planned",
    header: Annotated[
        bool, typer.Option("--header", help="offline-db: add a '#' column-name line.")
    ] = False,
    field_convention: Annotated[
        str | None,
        typer.Option(
            help="mc-macro dipole fields: 'calibration' (B of the calibration; the default) "
            "or 'arc_equivalent' (p / (c rho_geom))."
        ),
    ] = None,
    quad_polarity: Annotated[
        str | None,
        typer.Option(
            help="mc-macro signs of Q1..Q4 gradients, e.g. +,-,+,- (default: the PADME "
            "simulation's, scanplan.exports.mc_macro)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE (atomically).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Export a plan (hash verified) to one of PADME's bookkeeping formats."""
    from scanplan.atomic import atomic_write_text
    from scanplan.exports import FORMATS, ExportOptions, export_text, read_runs_file
    from scanplan.exports.common import plan_sha256
    from scanplan.exports.mc_macro import McMacroOptions, parse_polarity
    from scanplan.records import load_plan

    if fmt not in FORMATS:
        raise ScanplanError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    plan = load_plan(plan_file)
    sha = plan_sha256(plan)
    run_map = None
    measured = None
    runs_source = "none"
    if runs is not None:
        run_map = read_runs_file(runs)
        runs_source = str(runs)
    st = _store_for(store, required=store is not None)
    if st is not None:
        if run_map is None:
            run_map = st.runs_by_period(sha) if st.has_plan(sha) else {}
            runs_source = f"store {st.path}"
        if st.has_plan(sha):
            measured = measured_by_run(st, sha)
    energies = None
    if energy not in ("planned", "applied"):
        raise ScanplanError(f"--energy must be 'planned' or 'applied', got {energy!r}")
    if energy == "applied":
        if st is None or not st.has_plan(sha):
            raise ScanplanError(
                "--energy applied needs a store with this plan's 'applied' records (--store FILE)"
            )
        energies = applied_energies_by_run(st, sha)
        missing = sorted(r for rs in (run_map or {}).values() for r in rs if r not in energies)
        if missing:
            raise ScanplanError(
                f"no applied e_beam_mev recorded for run(s) {', '.join(map(str, missing[:5]))}"
                f"{' ...' if len(missing) > 5 else ''}; use --energy planned or record them"
            )
    mc_choices: dict[str, Any] = {}
    if field_convention is not None:
        mc_choices["field_convention"] = field_convention
    if quad_polarity is not None:
        mc_choices["quad_polarity"] = parse_polarity(quad_polarity)
    mc = McMacroOptions(**mc_choices)
    options = ExportOptions(
        runs=run_map or None,
        table_format=table_format,
        periods=period or None,
        measured=measured,
        energies_mev=energies,
        mc=mc,
        header=header,
    )
    text = export_text(plan, fmt, options)
    n_lines = len(text.splitlines())
    summary = {
        "format": fmt,
        "plan_sha256": sha,
        "output": str(output) if output is not None else None,
        "lines": n_lines,
        "runs_source": runs_source,
        "table_format": table_format if fmt == "offline-db" else None,
    }
    if output is not None:
        atomic_write_text(output, text)
    if json_out:
        if output is None:
            summary["text"] = text
        print_json(summary)
        return
    if output is None:
        sys.stdout.write(text)
        return
    columns = [
        ("format", "format", ""),
        ("output", "file", ""),
        ("lines", "lines", "d"),
        ("runs_source", "runs from", ""),
        ("plan", "plan", ""),
    ]
    console.print(rich_table("scanplan export", [{**summary, "plan": sha[:12]}], columns))
