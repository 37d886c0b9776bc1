"""One likelihood for planning and analysis: a plan's expected limits (published likelihood)
are the expected limits ``analyse`` finds on the plan's own Asimov table."""

from __future__ import annotations

import numpy as np
import pytest

from scanplan.analysis.analyse import analyse_scan
from scanplan.analysis.observed import ObservedRow, ObservedScan
from scanplan.analysis.params import load_likelihood_config
from scanplan.planning import PlanRequest, plan_scan
from scanplan.sensitivity import expected_limits


@pytest.fixture(scope="module")
def plan():
    # 2022-like range (facts 4: 262.2-300.1 MeV on resonance, control points below)
    return plan_scan(PlanRequest(energy_range_mev=(262.2, 299.0)))


def test_plan_limits_equal_analysis_expected_limits_on_its_asimov_table(plan) -> None:
    masses = np.array([16.6, 16.9, 17.2])
    lim = expected_limits(plan, masses, likelihood="published")
    assert lim.likelihood == "published"
    cfg = load_likelihood_config()
    b = cfg.bias
    rows = []
    for p in plan.points:
        part = -1 if p.kind == "control" else p.pass_index
        bkg = p.target_pot * p.background_per_pot
        bias = b.p0 + b.p1_per_mev * (p.sqrt_s_mev - b.pivot_sqrt_s_mev)
        rows.append(
            ObservedRow(
                period=p.period,
                scan_part=part,
                sqrt_s_mev=p.sqrt_s_mev,
                pot=p.target_pot,
                pot_err=0.003 * p.target_pot,
                n_obs=bkg * bias,
                n_obs_err=np.sqrt(bkg),
                sig_eff=p.signal_efficiency,
                sig_eff_err=0.0,
                bkg_per_pot=p.background_per_pot,
                bkg_per_pot_err=0.003 * p.background_per_pot,
                energy_mev=p.e_beam_mev,
            )
        )
    a = analyse_scan(ObservedScan(tuple(rows), "asimov"), masses)
    exp_g = np.sqrt(a.scan.expected_limit_mu * a.g2_unit)
    # same likelihood, same data: identical up to the plan's BES centre (its mean BES)
    assert np.allclose(lim.g_median, exp_g, rtol=2e-3)
    # the observed limit on these data is near the median expected one, not equal: the MC
    # background is linear in E, i.e. slightly curved in sqrt(s), and the table carries no
    # auxiliary data, so the per-point nuisances of the fit absorb small coherent residuals
    obs_g = np.sqrt(a.scan.observed_limit_mu * a.g2_unit)
    assert np.allclose(obs_g, exp_g, rtol=0.05)
    assert np.all(lim.g_minus2 < lim.g_minus1) and np.all(lim.g_plus1 < lim.g_plus2)


def test_published_likelihood_is_less_optimistic_than_the_simple_one(plan) -> None:
    masses = np.linspace(16.5, 17.3, 9)
    pub = expected_limits(plan, masses, likelihood="published").g_median
    simple = expected_limits(plan, masses).g_median
    # the free per-pass background lines and global nuisances can only cost sensitivity
    assert np.all(pub > simple)
    assert plan.inputs.physics.systematics.pot_rel == 0.003  # facts 5
