"""Planning speed: the Asimov sensitivity curve of a plan (vectorised) and the toy-MC CLs
grid on a local Dask cluster against the same grid run in this process."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Result, best_of


def run(quick: bool = False) -> list[Result]:
    from beamline.parallel import default_workers
    from scanplan.planning import PlanRequest, plan_scan
    from scanplan.sensitivity import expected_limits, toy_cls_grid

    plan = plan_scan(PlanRequest(energy_range_mev=(262.2, 299.0), lorentz_width_mev=0.0))
    masses = np.linspace(16.3, 17.5, 241)
    t_curve = best_of(lambda: expected_limits(plan, masses), 3)
    n_m, n_g, n_toys = (3, 3, 100) if quick else (6, 6, 400)
    grid_m = list(np.linspace(16.5, 17.3, n_m))
    grid_g = list(np.geomspace(1e-4, 8e-4, n_g))
    t0 = time.perf_counter()
    sync = toy_cls_grid(plan, grid_m, grid_g, n_toys=n_toys, seed=1, scheduler="sync")
    t_sync = time.perf_counter() - t0
    t0 = time.perf_counter()
    local = toy_cls_grid(plan, grid_m, grid_g, n_toys=n_toys, seed=1, scheduler="local")
    t_local = time.perf_counter() - t0
    return [
        Result(
            "Asimov sensitivity curve (241 masses)",
            t_curve,
            "s",
            notes={"points": len(plan.points)},
        ),
        Result(
            f"toy CLs grid {n_m}x{n_g}x{n_toys} toys, local Dask cluster",
            t_local,
            "s",
            baseline_name="same grid in this process",
            baseline=t_sync,
            notes={
                "workers": default_workers(),
                "identical": bool(np.array_equal(sync.cls, local.cls)),
                "includes_cluster_start": True,
            },
        ),
    ]
