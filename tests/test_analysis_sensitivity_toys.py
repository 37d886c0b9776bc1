"""``scanplan sensitivity --toys`` with the published likelihood: toy-MC CLs of the same model
as the Asimov limits agree with the asymptotic formulae (Cowan et al. 2011) within the toy
error, are identical for a fixed seed whatever the Dask scheduler, and the work is bounded."""

from __future__ import annotations

import numpy as np
import pytest

from scanplan.analysis.plan_toys import MAX_TOYS, published_toy_grid
from scanplan.planning import PlanRequest, plan_scan
from scanplan.sensitivity import expected_limits
from tests.cli_helpers import assert_user_error, run_cli, run_cli_json


@pytest.fixture(scope="module")
def plan():
    # part of the 2022 range (facts 4), one pass, no control points
    return plan_scan(PlanRequest(energy_range_mev=(275.0, 290.0), control="none"))


def test_toy_limits_agree_with_asymptotic_within_toy_error(plan) -> None:
    masses = [16.9, 17.05]
    asym = expected_limits(plan, masses, likelihood="published").g_median
    gs = list(float(asym.mean()) * np.array([0.8, 0.9, 1.0, 1.1, 1.25]))
    grid = published_toy_grid(plan, masses, gs, n_toys=150, seed=5, scheduler="sync")
    # the grid's asymptotic column is the Asimov limit of `sensitivity` (one model)
    np.testing.assert_allclose(grid.g_limit_asimov, asym, rtol=1e-9)
    assert grid.g_limit_err is not None and grid.cls_err is not None
    for toy, err, a in zip(grid.g_limit, grid.g_limit_err, asym, strict=True):
        assert np.isfinite(toy) and 0 < err < 0.2 * a, (toy, err, a)
        assert abs(toy - a) <= 3.0 * err, (toy, err, a)
    # CLs falls with the coupling, within the toy errors
    assert np.all(np.diff(grid.cls, axis=1) <= 2.0 * grid.cls_err[:, 1:] + 1e-12)
    assert 0 <= grid.n_clipped <= grid.cls.size


def test_toy_grid_identical_on_a_local_cluster() -> None:
    p = plan_scan(PlanRequest(energy_range_mev=(278.0, 288.0), control="none"))
    args = (p, [17.0], [3e-4, 5e-4])
    sync = published_toy_grid(*args, n_toys=20, seed=3, scheduler="sync")
    local = published_toy_grid(*args, n_toys=20, seed=3, scheduler="local", n_workers=2)
    np.testing.assert_array_equal(sync.cls, local.cls)
    np.testing.assert_array_equal(sync.cls_err, local.cls_err)
    other = published_toy_grid(*args, n_toys=20, seed=4, scheduler="sync")
    assert not np.array_equal(sync.cls_err, other.cls_err)


def test_sensitivity_toys_json_and_bounds(tmp_path) -> None:
    plan = tmp_path / "p.json"
    run_cli("plan", "--energy-mev", "278:288", "--control", "none", "-o", str(plan), check=True)
    common = ("sensitivity", str(plan), "--masses-mev", "16.9,17.0", "--scheduler", "sync")
    toy = ("--toys", "20", "--toy-masses", "2", "--couplings", "3e-4,6e-4")
    out = run_cli_json(*common, *toy)
    t = out["toys"]
    assert t["likelihood"] == out["likelihood"] == "published"
    for key in ("g_limit_toys", "g_limit_toys_err", "g_limit_asimov", "masses_mev"):
        assert len(t[key]) == 2, key
    assert np.array(t["cls"]).shape == (2, 2) and isinstance(t["n_clipped"], int)
    simple = run_cli_json(*common, *toy, "--likelihood", "simple")
    assert simple["toys"]["likelihood"] == "simple"
    assert_user_error(run_cli(*common, "--toys", str(MAX_TOYS + 1)), "--toys")
    # 30 masses x 8 couplings x 1000 toys = 240000 toys: above the bound, refused at once
    assert_user_error(run_cli(*common, "--toys", "1000", "--toy-masses", "30"), "toys")
