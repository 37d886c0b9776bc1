"""``scanplan export``: a plan in PADME's bookkeeping formats (RunEnergy, run-level offline
table, MC macro blocks, CSV, start-of-run tags). Text goes to stdout, or atomically to
``-o FILE``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ScanplanError
from ..store.location import DEFAULT_STORE_FILE
from .common import check_output_path, console, err_console, guarded, print_json, rich_table


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


def run_times_by_run(store: Any, plan_sha: str) -> dict[int, tuple[int | None, int | None]]:
    """run -> (start, stop) integer UTC seconds from the plan's run_started / run_stopped
    events (the start payload's ``start_time_utc`` if given, else the event time)."""
    from hw_interfaces.clock import parse_utc
    from scanplan.store.base import KIND_RUN_STARTED, KIND_RUN_STOPPED

    starts: dict[int, int] = {}
    stops: dict[int, int] = {}
    for ev in store.history(plan_sha256=plan_sha, kinds=[KIND_RUN_STARTED, KIND_RUN_STOPPED]):
        if ev.run_number is None:
            continue
        if ev.kind == KIND_RUN_STARTED:
            when = ev.payload.get("start_time_utc") or ev.time_utc
            starts.setdefault(ev.run_number, int(parse_utc(when).timestamp()))
        else:
            stops[ev.run_number] = int(parse_utc(ev.time_utc).timestamp())
    return {r: (starts.get(r), stops.get(r)) for r in sorted(set(starts) | set(stops))}


def recorded_by_period(store: Any, plan_sha: str) -> dict[int, dict[str, float]]:
    """period -> {"pot", "n_obs"}: sums over the period's runs of the latest recorded
    ``measured`` values (``runPOT``/``pot``, ``n_obs``/``n2cl``) where any run has one."""
    out: dict[int, dict[str, float]] = {}
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    for ev in store.history(plan_sha256=plan_sha, kinds=["measured"]):
        if ev.run_number is not None and ev.period is not None:
            latest.setdefault((ev.period, ev.run_number), {}).update(ev.payload)
    for (period, _run), payload in sorted(latest.items()):
        for key, names in (("pot", ("runPOT", "pot")), ("n_obs", ("n_obs", "n2cl"))):
            value = next((payload[n] for n in names if n in payload), None)
            if value is not None:
                out.setdefault(period, {}).setdefault(key, 0.0)
                out[period][key] += float(value)
    return out


@guarded
def import_root(
    root_file: Annotated[Path, typer.Argument(help="ROOT file of PADME's graphs.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Observed-scan table (CSV) to write.")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Read PADME's statistical-treatment graphs into the observed-scan table (CSV)."""
    check_output_path(output, "--output")
    from scanplan.atomic import atomic_write_text
    from scanplan.exports.root_graphs import read_observed_scan

    df = read_observed_scan(root_file)
    atomic_write_text(output, df.to_csv(index=False, float_format="%.17g"))
    rows = df.to_dict(orient="records")
    if json_out:
        print_json({"output": str(output), "rows": rows})
        return
    cols = [
        ("period", "period", "d"),
        ("scan_part", "part", "d"),
        ("sqrt_s_mev", "√s [MeV]", ".4f"),
        ("pot", "POT", ".3e"),
        ("n_obs", "N obs", ".1f"),
        ("sig_eff", "ε", ".4f"),
        ("bkg_per_pot", "B/POT", ".3e"),
    ]
    console.print(rich_table(f"observed scan from {root_file} -> {output}", rows, cols))


@guarded
def export(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON written by 'scanplan plan'.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="runenergy | offline-db | mc-macro | csv | sor-tag | root (PADME's "
            "statistical-treatment graphs; needs -o)",
        ),
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
            f"(default: $SCANPLAN_STORE or ./{DEFAULT_STORE_FILE} if present)."
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
        bool,
        typer.Option(
            "--comment-header",
            help="offline-db: add a '#' column-name line for people. PADME's OfflineServer "
            "does NOT accept it (its reader stops advancing and never ends): never give such "
            "a file to PADME's analysis.",
        ),
    ] = False,
    pot: Annotated[
        str,
        typer.Option(
            help="offline-db runPOT: 'store' (the store's recorded POT, 0.0 if none) or "
            "'planned' (target_pot shared over the point's runs where none is recorded; "
            "those runs are listed on stderr and in --json)."
        ),
    ] = "store",
    dhstb02_label: Annotated[
        str | None,
        typer.Option(
            help="offline-db DHSTB02Energy label convention (run3_2022, run4_2025; default: "
            "the table format's)."
        ),
    ] = None,
    quad_polarity: Annotated[
        str | None,
        typer.Option(
            help="mc-macro polarity of Q1..Q4, e.g. +,-,+,- (+1 = what PadmeMC does with a "
            "positive Q1 gradient; PadmeMC negates Q2 and Q4 itself, so the default +,-,+,- "
            "of scanplan.exports.mc_macro writes all positive)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE (atomically).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Export a plan (hash verified) to one of PADME's bookkeeping formats."""
    check_output_path(output, "--output")
    from scanplan.atomic import atomic_write_text
    from scanplan.exports import FORMATS, ExportOptions, export_text, read_runs_file
    from scanplan.exports.common import plan_sha256
    from scanplan.exports.mc_macro import McMacroOptions, parse_polarity
    from scanplan.records import load_plan

    if fmt not in FORMATS and fmt != "root":
        raise ScanplanError(
            f"unknown export format {fmt!r}; known: {', '.join([*FORMATS, 'root'])}"
        )
    if fmt == "root" and output is None:
        raise ScanplanError("-f root writes a binary ROOT file: give -o FILE.root")
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
    run_times = run_times_by_run(st, sha) if st is not None and st.has_plan(sha) else None
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
    mc = (
        McMacroOptions(quad_polarity=parse_polarity(quad_polarity))
        if quad_polarity is not None
        else McMacroOptions()
    )
    options = ExportOptions(
        runs=run_map or None,
        table_format=table_format,
        periods=period or None,
        measured=measured,
        energies_mev=energies,
        mc=mc,
        header=header,
        run_times_s=run_times,
        pot=pot,
        dhstb02_label=dhstb02_label,
    )
    notes: dict[str, Any] = {}
    if fmt == "root":
        from scanplan.exports.root_graphs import write_root_graphs

        recorded = recorded_by_period(st, sha) if st is not None and st.has_plan(sha) else {}
        assert output is not None
        write_root_graphs(plan, output, periods=period or None, recorded=recorded)
        root_summary: dict[str, Any] = {
            "format": fmt,
            "plan_sha256": sha,
            "output": str(output),
            "recorded_periods": sorted(recorded),
        }
        if json_out:
            print_json(root_summary)
        else:
            console.print(f"ROOT graphs of plan {sha[:12]} written to {output}")
        return
    if fmt == "offline-db":
        from scanplan.exports import offline_table_of

        table = offline_table_of(plan, options)
        text = table.text
        notes = {
            "dhstb02_label": table.label_convention,
            "planned_pot_runs": list(table.planned_pot_runs),
            "missing_pot_runs": list(table.missing_pot_runs),
            "missing_time_runs": list(table.missing_time_runs),
        }
        if table.planned_pot_runs:
            err_console.print(
                f"note: runPOT of run(s) {', '.join(map(str, table.planned_pot_runs))} is the "
                "PLANNED POT (target_pot / runs of the point), not a recorded one"
            )
    else:
        text = export_text(plan, fmt, options)
    n_lines = len(text.splitlines())
    summary = {
        "format": fmt,
        "plan_sha256": sha,
        "output": str(output) if output is not None else None,
        "lines": n_lines,
        "runs_source": runs_source,
        "table_format": table_format if fmt == "offline-db" else None,
        **notes,
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
