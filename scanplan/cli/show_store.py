"""``scanplan show --store``: the progress of a plan in the run-conditions store (POT
recorded vs planned, points done, suspensions and beam-off time per point)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import ScanplanError
from .common import console, print_json
from .tables import compact_table


def show_progress(
    p: Any,
    store: Path,
    plot: Path | None,
    json_out: bool,
    point_rows: list[dict[str, Any]],
    print_plan: Callable[[], None],
) -> None:
    """``show --store``: the plan's rows with the store's progress (JSON, or the plan table
    then the progress table) and, with ``plot``, the progress figure."""
    progress = store_progress_of(p, store)
    if plot is not None:
        from ..plots.control import plot_progress

        written = plot_progress(p, progress, plot)
        if not json_out:
            console.print(f"plot written to {written}", highlight=False)
    if json_out:
        print_json(
            {
                "name": p.name,
                "content_sha256": p.content_sha256,
                "points": point_rows,
                "progress": [asdict(r) for r in progress],
            }
        )
        return
    print_plan()
    print_progress(progress)


def store_progress_of(p: Any, path: Path) -> Any:
    """Per-point progress of plan ``p`` in the store at ``path`` (which must exist and hold
    the plan)."""
    from scanplan.plots.control import store_progress
    from scanplan.run.events import point_states

    from .export import _store_for, recorded_by_period

    st = _store_for(path, required=True)
    sha = p.content_sha256
    if not st.has_plan(sha):
        raise ScanplanError(f"store {path} holds no record of plan {sha[:12]}")
    done = {k for k, v in point_states(st, sha).items() if v.done}
    suspensions: dict[int, tuple[int, float | None]] = {}
    for ev in st.history(plan_sha256=sha):
        # the dwell watch's suspension events (any kind naming a suspension)
        if "suspend" not in ev.kind or ev.period is None:
            continue
        n, off = suspensions.get(ev.period, (0, None))
        secs = ev.payload.get("beam_off_s", ev.payload.get("duration_s"))
        if isinstance(secs, (int, float)) and math.isfinite(secs):
            off = (off or 0.0) + float(secs)
        suspensions[ev.period] = (n + 1, off)
    return store_progress(p, recorded_by_period(st, sha), done, suspensions)


def print_progress(progress: Any) -> None:
    rows = [
        {
            "period": r.period,
            "planned": r.planned_pot,
            "recorded": "not recorded" if r.recorded_pot is None else f"{r.recorded_pot:.3g}",
            "fraction": ""
            if r.recorded_pot is None
            else f"{r.recorded_pot / r.planned_pot:.0%}"
            if r.planned_pot
            else "",
            "done": "done" if r.done else "open",
            "suspensions": r.suspensions,
            "beam_off": "" if r.beam_off_s is None else f"{r.beam_off_s / 60:.1f}",
        }
        for r in progress
    ]
    cols = [
        ("period", "period", ""),
        ("planned", "POT planned", ".3g"),
        ("recorded", "POT recorded", ""),
        ("fraction", "taken", ""),
        ("done", "point", ""),
        ("suspensions", "suspensions", ""),
        ("beam_off", "beam off [min]", ""),
    ]
    console.print(compact_table("Progress in the store", rows, cols))
