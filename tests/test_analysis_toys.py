"""Toys with the published likelihood: coverage of the local p-values and of the CLs limits
on pseudo-data generated from the model, toy CLs against the asymptotic formulae, and the
look-elsewhere toys identical whatever the Dask scheduler."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from scanplan.analysis.likelihood import I_MU, Likelihood, resonance_energy_mev, scan_data
from scanplan.analysis.limits import (
    background_fit,
    cls_at,
    generate_toys,
    global_significance,
    limits,
    toy_cls,
)
from scanplan.analysis.params import load_likelihood_config
from scanplan.analysis.simulate import run3_like_points, simulate_scan
from scanplan.physics.params import load_physics

MASS = 16.90
N_TOYS = 400


@pytest.fixture(scope="module")
def lik() -> Likelihood:
    e, parts = run3_like_points()
    scan = simulate_scan(e, parts, 7.6e9, np.random.default_rng(21))
    return Likelihood(scan_data(scan), load_likelihood_config(), load_physics())


def _binomial_ok(k: int, n: int, p: float, nsig: float = 3.0) -> bool:
    return abs(k / n - p) <= nsig * np.sqrt(p * (1 - p) / n)


@pytest.mark.slow
def test_local_p_values_cover_on_background_only_toys(lik: Likelihood) -> None:
    bkg = background_fit(lik, lik.data.n_obs)
    n, ag, al = generate_toys(lik, bkg.theta, bkg.local, N_TOYS, np.random.default_rng(3))
    er = np.repeat(resonance_energy_mev(np.array([MASS])), N_TOYS)
    zero = lik.fit(er, n, mu_fixed=np.zeros(N_TOYS), aux_g=ag, aux_l=al)
    free = lik.fit(er, n, aux_g=ag, aux_l=al, start=(zero.theta, zero.local))
    q0 = np.where(free.theta[:, I_MU] > 0, 2 * (zero.nll - free.nll), 0.0)
    z = np.sqrt(np.maximum(q0, 0))
    # asymptotically q0 ~ 1/2 delta(0) + 1/2 chi2(1): P(Z > z) = 1 - Phi(z)
    for zc in (0.0, 1.0, 1.6449):
        k = int(np.sum(z > zc + 1e-9))
        assert _binomial_ok(k, N_TOYS, float(ndtr(-zc))), (zc, k / N_TOYS)


@pytest.mark.slow
def test_cls_limits_cover_and_bands_contain_the_toys(lik: Likelihood) -> None:
    g2_unit = lik.g2_unit
    expected = limits(lik, np.array([MASS]), 0.9, observed=False)
    bkg = background_fit(lik, lik.data.n_obs)
    rng = np.random.default_rng(4)
    n, ag, al = generate_toys(lik, bkg.theta, bkg.local, N_TOYS, rng)
    # a background-only toy's limit is below the +1 sigma band edge iff CLs(mu_+1) < 0.1
    below = {}
    for band in (-1.0, 1.0):
        cls = cls_at(lik, MASS, float(expected.band_mu[band][0]), n, ag, al)
        below[band] = int(np.sum(cls < 0.1))
    assert _binomial_ok(below[-1.0], N_TOYS, float(ndtr(-1.0)), 4.0), below
    assert _binomial_ok(below[1.0], N_TOYS, float(ndtr(1.0)), 4.0), below
    # coverage with a true signal at the median expected limit: CLs excludes the true g in
    # at most 10 % of the pseudo-experiments (CLs is conservative)
    mu_true = float(expected.expected_limit_mu[0])
    th = bkg.theta.copy()
    th[0, I_MU] = mu_true
    lam = lik.expected(th, bkg.local, resonance_energy_mev(np.array([MASS])))[0]
    n_sb = rng.poisson(lam, (N_TOYS, lam.size)).astype(float)
    cls_sb = cls_at(lik, MASS, mu_true, n_sb, ag, al)
    excluded = int(np.sum(cls_sb < 0.1))
    assert excluded / N_TOYS <= 0.10 + 3 * np.sqrt(0.09 / N_TOYS), excluded
    assert np.sqrt(mu_true * g2_unit) > 1e-4  # in the published coupling grid (facts 5)


@pytest.mark.slow
def test_toy_cls_agrees_with_asymptotic(lik: Likelihood) -> None:
    expected = limits(lik, np.array([MASS]), 0.9, observed=False)
    mu = float(expected.expected_limit_mu[0])
    toy, asym = toy_cls(lik, MASS, mu, 300, seed=5)
    assert abs(toy - asym) < 0.04, (toy, asym)


def test_global_significance_same_for_any_scheduler(lik: Likelihood) -> None:
    masses = np.linspace(16.5, 17.3, 9)
    bkg = background_fit(lik, lik.data.n_obs)
    kw = {"n_toys": 6, "seed": 9, "batch_size": 2}
    a = global_significance(lik, masses, 1.5, bkg, scheduler="sync", **kw)
    b = global_significance(lik, masses, 1.5, bkg, scheduler="local", n_workers=2, **kw)
    assert np.array_equal(a.toy_max, b.toy_max) and a.toy_max.size == 6
    assert a.significance == b.significance
    assert 0 < a.p_value <= 1
