"""Coverage of the source fit's uncertainties: an ensemble of fits to independent simulated
data sets must give pulls ``(fitted - truth) / sigma`` of standard deviation 1.

The data come from a particle Monte Carlo written here (Gaussian particles at the injection
point with the hidden size, divergence, spread and energy offset, carried to the target and
the TimePix by the line's transfer matrices, the optics already checked against MAD-X in
test_optics): the target and TimePix spots of one setting are the *same* particles, as on
the machine, and every setting is an independent bunch. The spot moments are sample means and
rms of those particles; the measurement floor is drawn as Gaussian noise of its stated size.
The fit is the linear (Gaussian-optics) model, the one this Monte Carlo obeys exactly, so
the pull width tests the error model alone.

Tolerance from the ensemble size: the sample standard deviation of K unit normals has a
standard error 1/sqrt(2 (K - 1)); the pull widths must lie within 3 of those of 1 and the
pull means within 3/sqrt(K) of 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline import source_fit as sf
from beamline.source_fit_errors import measurement_covariance
from beamline.spread import line_for

TRUTH = np.array([1.2, 0.8, 0.0030, 0.9])  # mm, mrad, relative, MeV (sf.PARAMETERS order)
ENERGIES_MEV = (265.0, 298.0)
DHSTB02_OFFSETS = (-0.004, 0.0, 0.004)
N_FITS = 60
N_PARTICLES = 2000
FLOOR_MM = sf.DEFAULT_SIGMA_FLOOR_MM


@pytest.fixture(scope="module")
def setup():
    bl = line_for(None)
    settings = []
    for e in ENERGIES_MEV:
        i1 = bl.matched_dipole_current_a("DHSTB01", e)
        i2 = bl.matched_dipole_current_a("DHSTB02", e)
        settings.extend((e, i1, i2 * (1 + eps)) for eps in DHSTB02_OFFSETS)
    optics = {
        (s, p): sf.observation_optics(
            bl, sf.SpotObservation(p, *s, 0.0, 0.0, 1.0, 1.0, 1), "mylar_window", None
        )
        for s in settings
        for p in ("target", "timepix")
    }
    return bl, settings, optics


def _spots(rng, setting, optics, n):
    """Sample moments of one bunch of ``n`` particles at the target and the TimePix."""
    s0, d0, sd, de = TRUTH
    x, xp, y, yp = (rng.standard_normal(n) * v for v in (s0, d0, s0, d0))
    delta = de / setting[0] + sd * rng.standard_normal(n)
    out = []
    for p in ("target", "timepix"):
        o = optics[(setting, p)]
        r = o.r
        xs = o.x_orbit_mm + r[0, 0] * x + r[0, 1] * xp + 1e3 * r[0, 5] * delta
        ys = r[2, 2] * y + r[2, 3] * yp
        out.append((p, xs.mean(), ys.mean(), xs.std(), ys.std()))
    return out


def simulate(rng, settings, optics, n=N_PARTICLES, floor_mm=FLOOR_MM):
    obs = []
    for s in settings:
        for p, x, y, sx, sy in _spots(rng, s, optics, n):
            fx, fsx, fsy = floor_mm * rng.standard_normal(3)
            obs.append(sf.SpotObservation(p, *s, x + fx, y, sx + fsx, sy + fsy, n))
    return obs


def test_pull_widths_are_one(setup) -> None:
    bl, settings, optics = setup
    rng = np.random.default_rng(20261202)
    pulls = []
    for _ in range(N_FITS):
        fit = sf.fit_source(simulate(rng, settings, optics), bl)
        pulls.append(
            [(fit.values[k] - t) / fit.sigmas[k] for k, t in zip(sf.PARAMETERS, TRUTH, strict=True)]
        )
    pulls_arr = np.array(pulls)
    width_tol = 3.0 / math.sqrt(2 * (N_FITS - 1))
    widths = pulls_arr.std(axis=0, ddof=1)
    means = pulls_arr.mean(axis=0)
    for k, name in enumerate(sf.PARAMETERS):
        assert widths[k] == pytest.approx(1.0, abs=width_tol), (name, widths)
        assert abs(means[k]) < 3.0 / math.sqrt(N_FITS), (name, means)
    # the correlation matrix is reported and is one
    assert fit.correlation.shape == (4, 4)
    assert np.allclose(np.diag(fit.correlation), 1.0)
    assert np.allclose(fit.correlation, fit.correlation.T)


def test_moment_covariance_of_shared_particles(setup) -> None:
    """The covariance of a setting's target and TimePix moments (the same particles)
    against the empirical covariance over many bunches."""
    _, settings, optics = setup
    s = settings[0]
    rng = np.random.default_rng(7)
    n, reps = 500, 4000
    samples = np.array(
        [[v for spot in _spots(rng, s, optics, n) for v in spot[1:]] for _ in range(reps)]
    )  # per rep: target (x, y, sx, sy), timepix (x, y, sx, sy)
    mean = samples.mean(axis=0)
    obs = [
        sf.SpotObservation("target", *s, mean[0], mean[1], mean[2], mean[3], n),
        sf.SpotObservation("timepix", *s, mean[4], mean[5], mean[6], mean[7], n),
    ]
    o = [optics[(s, "target")], optics[(s, "timepix")]]
    cov = measurement_covariance(obs, o, TRUTH, floor_mm=0.0)
    emp = np.cov(samples, rowvar=False)
    # data vector order: x, sigma_x, sigma_y per observation; samples: x, y, sx, sy
    pick = {0: 0, 1: 2, 2: 3}
    for a in range(6):
        for b in range(6):
            ia, ib = 4 * (a // 3) + pick[a % 3], 4 * (b // 3) + pick[b % 3]
            se = math.sqrt((emp[ia, ia] * emp[ib, ib] + emp[ia, ib] ** 2) / reps)
            assert cov[a, b] == pytest.approx(emp[ia, ib], abs=4 * se + 1e-12), (a, b)
    # the pair is strongly correlated in x: ignoring it over-counts the centroids
    rho = cov[0, 3] / math.sqrt(cov[0, 0] * cov[3, 3])
    assert rho > 0.5
