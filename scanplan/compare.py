"""Two plans side by side: points, spacing, POT, time, sqrt(s) coverage and sensitivity."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .physics.params import load_scan_defaults
from .records import Plan
from .sensitivity import ExpectedLimits, coverage, default_masses_mev, expected_limits

if TYPE_CHECKING:
    from .planning import PlanRequest


def plan_summary(plan: Plan) -> dict[str, Any]:
    """Plan-level numbers: point counts, energy and sqrt(s) span [MeV], spacing [MeV],
    POT, beam and total hours, passes, control points, sqrt(s) coverage [MeV]."""
    on = sorted((p for p in plan.points if p.kind == "on_resonance"), key=lambda p: p.e_beam_mev)
    ctl = [p for p in plan.points if p.kind == "control"]
    gaps = [b.e_beam_mev - a.e_beam_mev for a, b in pairwise(on)]
    cov = coverage(plan)
    overhead = plan.inputs.overhead_hours_per_point
    beam_h = sum(p.hours for p in plan.points)
    return {
        "name": plan.name,
        "content_sha256": plan.content_sha256[:12],
        "points": len(plan.points),
        "on_resonance_points": len(on),
        "control_points": len(ctl),
        "passes": len({p.pass_index for p in on}),
        "e_beam_min_mev": on[0].e_beam_mev if on else math.nan,
        "e_beam_max_mev": on[-1].e_beam_mev if on else math.nan,
        "sqrt_s_min_mev": on[0].sqrt_s_mev if on else math.nan,
        "sqrt_s_max_mev": on[-1].sqrt_s_mev if on else math.nan,
        "mean_spacing_mev": float(np.mean(gaps)) if gaps else math.nan,
        "max_spacing_mev": float(np.max(gaps)) if gaps else math.nan,
        "control_e_beam_mev": ", ".join(f"{p.e_beam_mev:.1f}" for p in ctl),
        "total_pot": sum(p.target_pot for p in plan.points),
        "beam_hours": beam_h,
        "total_hours": beam_h + overhead * len(plan.points),
        "covered_sqrt_s_lo_mev": cov.covered_lo_mev,
        "covered_sqrt_s_hi_mev": cov.covered_hi_mev,
        "calibration": plan.points[0].calibration if plan.points else "",
        "physics": plan.inputs.physics.label,
        "bes": math.nan if plan.inputs.bes is None else plan.inputs.bes,
        "lorentz_width_mev": plan.inputs.physics.signal.lorentz_width_mev,
    }


@dataclass(frozen=True)
class Comparison:
    """``summaries`` (one dict per plan), the common ``masses_mev`` [MeV], the expected
    limits of each plan on it, and ``rows``: one per metric with the values of both plans."""

    summaries: tuple[dict[str, Any], dict[str, Any]]
    masses_mev: NDArray
    limits: tuple[ExpectedLimits, ExpectedLimits]
    rows: list[dict[str, Any]]


def compare_plans(a: Plan, b: Plan, *, n_masses: int | None = None) -> Comparison:
    """Compare two plans on the union of their sqrt(s) spans (``n_masses``, default
    ``[sensitivity] masses`` of ``lattices/physics/scan_defaults.toml``)."""
    if n_masses is None:
        n_masses = load_scan_defaults().sensitivity.masses
    ma, mb = default_masses_mev(a, 2), default_masses_mev(b, 2)
    lo, hi = min(ma[0], mb[0]), max(ma[-1], mb[-1])
    masses = np.linspace(lo, hi, n_masses) if hi > lo else np.array([lo])
    la, lb = expected_limits(a, masses), expected_limits(b, masses)
    sa, sb = plan_summary(a), plan_summary(b)
    rows = [{"metric": k, "a": sa[k], "b": sb[k]} for k in sa]
    for label, fn in (("mean", np.mean), ("best", np.min), ("worst", np.max)):
        rows.append(
            {
                "metric": f"{label}_expected_g_limit",
                "a": float(fn(la.g_median)),
                "b": float(fn(lb.g_median)),
            }
        )
    return Comparison((sa, sb), masses, (la, lb), rows)


# ---------------------------------------------------------------- option sweeps (Dask)


def _evaluate_option(
    item: tuple[int, dict[str, Any], tuple[float, float] | None],
) -> dict[str, Any]:
    """Plan one option and summarise it (module level: pickled to Dask workers)."""
    from beamline.errors import BeamlineInputError

    from .errors import ScanplanError
    from .planning import PlanRequest, plan_scan

    index, fields, window = item
    row: dict[str, Any] = {"option": index}
    try:
        plan = plan_scan(PlanRequest(**fields))
    except (ScanplanError, BeamlineInputError) as exc:
        row["error"] = str(exc)
        return row
    masses = np.linspace(window[0], window[1], 31) if window else default_masses_mev(plan, 61)
    lim = expected_limits(plan, masses)
    s = plan_summary(plan)
    row.update(
        points=s["points"],
        on_resonance_points=s["on_resonance_points"],
        mean_spacing_mev=s["mean_spacing_mev"],
        total_pot=s["total_pot"],
        total_hours=s["total_hours"],
        mean_expected_g_limit=float(np.mean(lim.g_median)),
        worst_expected_g_limit=float(np.max(lim.g_median)),
        error="",
    )
    return row


def sweep_options(
    base: PlanRequest,
    variations: Mapping[str, Sequence[Any]],
    *,
    window_mev: tuple[float, float] | None = None,
    scheduler: str | None = "local",
    n_workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Plan every combination of ``variations`` (PlanRequest field -> values) on top of the
    request ``base`` and summarise each (points, POT, hours, expected g limit averaged over
    ``window_mev`` [MeV] or the plan's span), one Dask task per option
    (:func:`beamline.parallel.map_ordered`; ``scheduler`` "local", "sync" or an address).
    An option the planner refuses gets its error message instead of numbers."""
    from beamline.parallel import map_ordered

    from .errors import ScanplanError

    fields = set(type(base).model_fields)
    unknown = sorted(set(variations) - fields)
    if unknown:
        raise ScanplanError(f"unknown plan option(s) {unknown}; known: {', '.join(sorted(fields))}")
    keys = list(variations)
    combos = list(itertools.product(*(variations[k] for k in keys)))
    if not combos or len(combos) > 10_000:
        raise ScanplanError(f"option sweep needs 1..10000 combinations, got {len(combos)}")
    items = [
        # the request is rebuilt from its given fields in the task, so defaults that depend
        # on a varied field are derived again and a refused option is a row, not a failure
        (i, {**base.given(), **dict(zip(keys, c, strict=True))}, window_mev)
        for i, c in enumerate(combos)
    ]
    rows = map_ordered(
        _evaluate_option, items, scheduler=scheduler, n_workers=n_workers, on_done=on_done
    )
    for row, c in zip(rows, combos, strict=True):
        row.update(dict(zip(keys, c, strict=True)))
    return rows
