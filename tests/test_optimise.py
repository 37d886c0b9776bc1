"""Beam-time optimiser: beats the uniform allocation, keeps the budget, concentrates near the
window, respects the per-point floor; the optimum is checked by random feasible
perturbations (none does better)."""

from __future__ import annotations

import numpy as np
import pytest

from scanplan.errors import ScanplanError
from scanplan.optimise import optimise_plan
from scanplan.planning import PlanRequest, plan_scan, validate_plan
from scanplan.sensitivity import expected_limits_from_arrays, plan_arrays

WINDOW = (16.73, 17.03)  # facts 5: 16.88 +- 0.15 MeV


@pytest.fixture(scope="module")
def base():
    return plan_scan(PlanRequest(mass_range_mev=(16.4, 17.5)))


@pytest.fixture(scope="module")
def result(base):
    return optimise_plan(base, WINDOW)


def test_beats_uniform_and_keeps_the_budget(base, result) -> None:
    on0 = [p for p in base.points if p.kind == "on_resonance"]
    on1 = [p for p in result.plan.points if p.kind == "on_resonance"]
    assert sum(p.hours for p in on1) == pytest.approx(sum(p.hours for p in on0), rel=1e-9)
    # control points untouched
    assert [p.hours for p in result.plan.points if p.kind == "control"] == [
        p.hours for p in base.points if p.kind == "control"
    ]
    assert result.after_mean_g < 0.95 * result.uniform_mean_g
    assert result.converged
    assert min(p.hours for p in on1) >= 1.0 - 1e-9
    # POT follow the rate of the plan
    for a, b in zip(on0, on1, strict=True):
        assert b.target_pot / b.hours == pytest.approx(a.target_pot / a.hours)
    assert not [x for x in validate_plan(result.plan) if x.level == "error"]


def test_time_concentrates_near_the_window(base, result) -> None:
    on = [p for p in result.plan.points if p.kind == "on_resonance"]
    near = [p for p in on if WINDOW[0] - 0.1 <= p.sqrt_s_mev <= WINDOW[1] + 0.1]
    share = sum(p.hours for p in near) / sum(p.hours for p in on)
    assert share > 2 * len(near) / len(on)


def test_no_random_feasible_allocation_does_better(base, result) -> None:
    arr = plan_arrays(base)
    model = base.inputs.physics
    masses = np.linspace(*WINDOW, 31)
    free = ~arr.is_control
    rate = arr.pot / np.array([p.hours for p in sorted(base.points, key=lambda q: q.period)])
    h_opt = result.hours

    def mean_limit(h: np.ndarray) -> float:
        return float(
            np.mean(expected_limits_from_arrays(masses, arr.with_pot(rate * h), model).g_median)
        )

    best = mean_limit(h_opt)
    rng = np.random.default_rng(1)
    for _ in range(20):
        h = h_opt.copy()
        d = rng.normal(0, 0.05, free.sum()) * h[free]
        d -= d.mean()
        h[free] = np.maximum(h[free] + d, 1.0)
        h[free] *= h_opt[free].sum() / h[free].sum()
        assert mean_limit(h) >= best * (1 - 2e-3)


def test_max_objective_and_bad_input(base) -> None:
    res = optimise_plan(base, WINDOW, objective="max")
    assert res.after_max_g < res.uniform_max_g
    with pytest.raises(ScanplanError, match="too small"):
        optimise_plan(base, WINDOW, total_hours=5.0)
    with pytest.raises(ScanplanError, match="objective"):
        optimise_plan(base, WINDOW, objective="median")
