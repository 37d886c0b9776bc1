"""The published likelihood: derivatives, fits on Asimov data, asymptotic CLs formulae."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr, voigt_profile

from scanplan.analysis.likelihood import (
    CONSTRAINED,
    I_MU,
    Likelihood,
    resonance_energy_mev,
    scan_data,
    voigt_with_derivatives,
)
from scanplan.analysis.limits import cls_asymptotic, expected_band_mu, limits
from scanplan.analysis.params import load_likelihood_config
from scanplan.analysis.simulate import run3_like_points, simulate_scan
from scanplan.physics.params import load_physics


@pytest.fixture(scope="module")
def lik() -> Likelihood:
    e, parts = run3_like_points()
    scan = simulate_scan(e, parts, 7.6e9, np.random.default_rng(5))
    return Likelihood(scan_data(scan), load_likelihood_config(), load_physics())


def test_parameters_are_the_published_ones() -> None:
    # facts 5 / config_generic.txt and scanSens.pl
    c = load_likelihood_config()
    n = c.nuisances
    assert (n.pot_scale.sigma, n.yield_mev.value, n.yield_mev.sigma) == (0.01, 13.56, 0.18)
    assert (n.lorentz_width_mev.value, n.lorentz_width_mev.sigma) == (1.72, 0.039)
    assert (n.bes.value, n.bes.sigma) == (0.0025, 0.0005)
    assert (c.bias.p0, c.bias.p0_sigma, c.bias.p1_per_mev) == (1.01163, 0.0013, -0.0103)
    assert (c.bias.p1_sigma_per_mev, c.bias.correlation) == (0.004, -0.06)
    (l11, _), (l21, l22) = c.bias_cholesky()
    cov01 = l11 * l21
    assert cov01 == pytest.approx(-0.06 * 0.0013 * 0.004)
    assert l21**2 + l22**2 == pytest.approx(0.004**2)


def test_voigt_derivatives_match_finite_differences_of_scipy() -> None:
    x = np.linspace(-8.0, 8.0, 41)
    sigma, gamma = 0.7, 1.72
    v, dvs, dvg = voigt_with_derivatives(x, np.full_like(x, sigma), np.full_like(x, gamma))
    assert np.allclose(v, voigt_profile(x, sigma, gamma), rtol=1e-12, atol=0)
    h = 1e-6
    num_s = (voigt_profile(x, sigma + h, gamma) - voigt_profile(x, sigma - h, gamma)) / (2 * h)
    num_g = (voigt_profile(x, sigma, gamma + h) - voigt_profile(x, sigma, gamma - h)) / (2 * h)
    assert np.allclose(dvs, num_s, rtol=1e-6, atol=1e-10)
    assert np.allclose(dvg, num_g, rtol=1e-6, atol=1e-10)


def test_jacobian_matches_finite_differences(lik: Likelihood) -> None:
    rng = np.random.default_rng(2)
    th = rng.normal(0, 0.3, (1, lik.n_global))
    th[0, I_MU] = 2.0
    th[0, 7:] *= 0.01
    loc = rng.normal(0, 0.3, (1, lik.data.n_points, 2))
    e_res = resonance_energy_mev(np.array([16.9]))
    lam, jg, jl = lik.jacobians(th, loc, e_res)
    for i in range(lik.n_global):
        t2 = th.copy()
        t2[0, i] += 1e-6
        num = (lik.expected(t2, loc, e_res) - lam) / 1e-6
        assert np.allclose(num, jg[..., i], rtol=1e-4, atol=1e-6 * np.abs(jg[..., i]).max())
    for k in range(2):
        l2 = loc.copy()
        l2[0, :, k] += 1e-6
        num = (lik.expected(th, l2, e_res) - lam) / 1e-6
        assert np.allclose(num, jl[..., k], rtol=1e-4)


def test_fit_of_asimov_signal_returns_the_injected_parameters(lik: Likelihood) -> None:
    """Asimov data generated with (M, g) and nuisances at their centres: the free fit at M
    must give mu_hat = mu_true and every pull 0 (a property of the maximum likelihood)."""
    g_true, m_true = 4.0e-4, 16.90
    e_res = resonance_energy_mev(np.array([m_true]))
    th = np.zeros((1, lik.n_global))
    th[0, I_MU] = g_true**2 / lik.g2_unit
    th[0, 7] = 0.02  # background 2 % above MC in part 0
    n = lik.expected(th, np.zeros((1, lik.data.n_points, 2)), e_res)[0]
    fit = lik.fit(e_res, n)
    assert fit.converged.all()
    assert math.sqrt(fit.theta[0, I_MU] * lik.g2_unit) == pytest.approx(g_true, rel=1e-4)
    assert np.abs(fit.theta[0, list(CONSTRAINED)]).max() < 1e-3
    assert fit.theta[0, 7] == pytest.approx(0.02, abs=1e-5)
    masses = np.arange(16.70, 17.10001, 0.02)
    a = limits(lik.__class__(lik.data.with_counts(n), lik.config, load_physics()), masses, 0.9)
    assert masses[np.argmax(a.local_significance)] == pytest.approx(m_true, abs=1e-9)


def test_cls_formula_closed_forms() -> None:
    # on the Asimov data (q = qA) CLs = (1 - Phi(sqrt q)) / (1 - Phi(0)) = 2 Phi(-sqrt q)
    q = np.array([0.5, 2.0, 2.7055])
    assert np.allclose(cls_asymptotic(q, q), 2 * ndtr(-np.sqrt(q)))
    # q > qA branch (Cowan et al. eq. 65): a = (q + qA)/(2 sqrt qA), b = (q - qA)/(2 sqrt qA)
    qo, qa = np.array([9.0]), np.array([4.0])
    assert cls_asymptotic(qo, qa)[0] == pytest.approx(ndtr(-13 / 4) / ndtr(-5 / 4))
    # median expected limit at 90 % CL solves 2 Phi(-sqrt q) = 0.1: sqrt q = 1.6449
    band = expected_band_mu(np.array([1.0]), 0.9)
    assert band[0.0][0] == 1.0
    # N = +1: sigma (Phi^-1(1 - 0.1 Phi(1)) + 1) = sigma (Phi^-1(0.915865) + 1), tables
    assert band[1.0][0] == pytest.approx((1.0 / 1.644854) * (1.37775 + 1.0), rel=1e-3)
