"""Plan comparisons over many options: every combination planned and summarised, refused
options reported, same rows on a local Dask cluster as in this process."""

from __future__ import annotations

import numpy as np
import pytest

from scanplan.compare import compare_plans, sweep_options
from scanplan.errors import ScanplanError
from scanplan.planning import PlanRequest, plan_scan

BASE = PlanRequest(mass_range_mev=(16.6, 17.2), budget_hours=400.0, control="none")


def test_sweep_rows_match_direct_planning() -> None:
    variations = {"passes": [1, 2], "step_mev": [1.0, 9.0]}
    rows = sweep_options(BASE, variations, window_mev=(16.8, 17.0), scheduler="sync")
    assert len(rows) == 4
    assert [(r["passes"], r["step_mev"]) for r in rows] == [(1, 1.0), (1, 9.0), (2, 1.0), (2, 9.0)]
    for r in rows:
        if r["step_mev"] == 9.0:  # larger than half the line FWHM: refused, not fatal
            assert "exceeds the spacing rule" in r["error"]
            continue
        plan = plan_scan(PlanRequest(**{**BASE.__dict__, "passes": r["passes"], "step_mev": 1.0}))
        assert r["points"] == len(plan.points)
        assert r["total_hours"] == pytest.approx(400.0)
        # span 16.6-17.2 MeV in sqrt(s) is 19.9 MeV of beam energy: 1 MeV steps -> 21 points
        assert r["on_resonance_points"] == 21
    with pytest.raises(ScanplanError, match="unknown plan option"):
        sweep_options(BASE, {"colour": [1]}, scheduler="sync")


def test_sweep_on_local_cluster_equals_sync_and_compare_is_symmetric() -> None:
    from distributed import LocalCluster

    variations = {"step_fraction": [0.3, 0.5]}
    sync = sweep_options(BASE, variations, scheduler="sync")
    # a small local cluster reached by address; HTTP server on a free port (8787 may be taken)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as cluster:
        local = sweep_options(BASE, variations, scheduler=cluster.scheduler_address)
    assert sync == local
    # the published half-width rule, where the step fraction decides the spacing
    kw = {"mass_range_mev": (16.6, 17.2), "control": "none", "spacing_rule": "published"}
    a = plan_scan(PlanRequest(**kw, step_fraction=0.3))
    b = plan_scan(PlanRequest(**kw))
    ab, ba = compare_plans(a, b), compare_plans(b, a)
    np.testing.assert_allclose(ab.limits[0].g_median, ba.limits[1].g_median)
    rows = {r["metric"]: r for r in ab.rows}
    assert rows["on_resonance_points"]["a"] > rows["on_resonance_points"]["b"]
    # more points of equal POT: better (lower) expected limit
    assert rows["mean_expected_g_limit"]["a"] < rows["mean_expected_g_limit"]["b"]
