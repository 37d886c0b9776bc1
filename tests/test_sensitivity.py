"""Expected sensitivity against independent calculations: exact Poisson CLs for one point,
a toy Monte Carlo of the full model (Poisson counts + auxiliary nuisance measurements) for a
few points, scaling laws, and the toy-CLs grid on a local Dask cluster (worker-count
independent)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import voigt_profile
from scipy.stats import poisson

from scanplan.planning import PlanRequest, plan_scan
from scanplan.sensitivity import (
    coverage,
    expected_limits,
    expected_limits_from_arrays,
    plan_arrays,
    toy_cls_grid,
)

M_E = 0.51099895


@pytest.fixture(scope="module")
def one_point():
    return plan_scan(PlanRequest(energy_range_mev=(282.27, 282.27), control="none"))


@pytest.fixture(scope="module")
def few_points():
    p = plan_scan(
        PlanRequest(energy_range_mev=(278.0, 284.0), control="none", spacing_rule="published")
    )
    assert 3 <= len(p.points) <= 5
    return p


def _independent_s_b(plan, mass_mev: float) -> tuple[np.ndarray, np.ndarray]:
    """Signal per g^2 and background per point from the facts formula, written out here."""
    e_res = (mass_mev**2 - 2 * M_E**2) / (2 * M_E)
    s, b = [], []
    for p in sorted(plan.points, key=lambda q: q.period):
        v = voigt_profile(p.e_beam_mev - e_res, p.rel_spread * e_res, 1.72)
        s.append(p.target_pot * p.signal_efficiency * 13.56 * v)
        b.append(p.target_pot * p.background_per_pot)
    return np.array(s), np.array(b)


def test_single_point_matches_exact_poisson_cls(one_point) -> None:
    arr = plan_arrays(one_point)
    mass = one_point.points[0].sqrt_s_mev
    lim = expected_limits_from_arrays([mass], arr, one_point.inputs.physics, systematics=False)
    s, b = _independent_s_b(one_point, mass)
    assert s[0] == pytest.approx(one_point.points[0].expected_signal_ref / 5e-4**2, rel=1e-9)
    n_obs = poisson.median(b[0])  # median expected observation under background only

    def cls(mu: float) -> float:
        return poisson.cdf(n_obs, mu * s[0] + b[0]) / poisson.cdf(n_obs, b[0]) - 0.10

    mu_exact = brentq(cls, 1e-12, 1e-5, xtol=1e-16)
    assert lim.g2_median[0] == pytest.approx(mu_exact, rel=0.02)
    assert lim.g_median[0] == pytest.approx(math.sqrt(mu_exact), rel=0.01)
    assert lim.g_minus1[0] < lim.g_median[0] < lim.g_plus1[0]


def test_few_points_with_systematics_match_a_toy_monte_carlo(few_points) -> None:
    mass = 16.95
    lim = expected_limits(few_points, [mass])
    s, b = _independent_s_b(few_points, mass)
    sig = math.hypot(0.003, 0.003)  # facts 5: 0.3 % POT and 0.3 % background per point
    rng = np.random.default_rng(12345)
    n_toys = 6000
    n = rng.poisson(b, (n_toys, b.size))
    theta0 = rng.normal(0.0, sig, (n_toys, b.size))
    w = 1.0 / (b + (sig * b) ** 2)
    mu_hat = ((n - b * (1 + theta0)) * w * s).sum(axis=1) / (w * s * s).sum()
    # median expected CLs limit = Phi^-1(1 - alpha/2) x sigma(mu_hat) in the Gaussian regime
    toy_limit = 1.6449 * mu_hat.std()
    assert lim.g2_median[0] == pytest.approx(toy_limit, rel=0.04)
    # the systematics matter at this POT: without them the limit is clearly lower
    stat_only = expected_limits_from_arrays(
        [mass], plan_arrays(few_points), _model(few_points), systematics=False
    )
    assert stat_only.g2_median[0] < 0.9 * lim.g2_median[0]


def _model(plan):
    return plan.inputs.physics


def test_statistical_limit_scales_as_one_over_sqrt_pot(few_points) -> None:
    arr = plan_arrays(few_points)
    model = _model(few_points)
    a = expected_limits_from_arrays([16.9, 17.0], arr, model, systematics=False)
    b = expected_limits_from_arrays(
        [16.9, 17.0], arr.with_pot(arr.pot * 4), model, systematics=False
    )
    assert b.g2_median == pytest.approx(a.g2_median / 2, rel=0.01)


def test_toy_cls_agrees_with_asimov(few_points) -> None:
    mass = 16.95
    asimov = float(expected_limits(few_points, [mass]).g_median[0])
    gs = list(asimov * np.array([0.7, 0.85, 1.0, 1.15, 1.3]))
    grid = toy_cls_grid(few_points, [mass], gs, n_toys=600, seed=7, scheduler="sync")
    assert np.all(np.diff(grid.cls[0]) <= 0.05)  # CLs falls with the coupling
    assert grid.g_limit[0] == pytest.approx(asimov, rel=0.08)


@pytest.fixture(scope="module")
def dask_address():
    """A small local Dask cluster (2 processes), reached through its scheduler address (the
    --scheduler ADDRESS path). Its HTTP server on a free port: 8787 may be taken."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )
    yield cluster.scheduler_address
    cluster.close()


def test_toy_grid_identical_on_a_local_dask_cluster(few_points, dask_address) -> None:
    masses, gs = [16.9, 17.0], [2e-4, 4e-4, 6e-4]
    sync = toy_cls_grid(few_points, masses, gs, n_toys=60, seed=3, scheduler="sync")
    local = toy_cls_grid(few_points, masses, gs, n_toys=60, seed=3, scheduler=dask_address)
    np.testing.assert_array_equal(sync.cls, local.cls)
    other = toy_cls_grid(few_points, masses, gs, n_toys=60, seed=4, scheduler="sync")
    assert not np.array_equal(sync.cls, other.cls)


def test_coverage_spans_the_scanned_sqrt_s() -> None:
    p = plan_scan(PlanRequest(mass_range_mev=(16.6, 17.2)))
    cov = coverage(p)
    assert cov.covered_lo_mev == pytest.approx(16.6, abs=0.06)
    assert cov.covered_hi_mev == pytest.approx(17.2, abs=0.06)
    # inside the span the exposure is flat to within the efficiency slope and ripple
    assert cov.min_over_span > 0.5 * cov.max_over_span
