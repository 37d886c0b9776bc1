"""Error model of the source fit (:mod:`beamline.source_fit`): the covariance of the measured
spot moments and of the tracked model's Monte Carlo noise.

Why a full covariance: a target spot and a TimePix spot taken at one setting (same energy and
dipole currents) see the *same* particles, so their centroids and widths fluctuate together.
Counting them as independent measurements halves nothing but still over-counts the
information in the centroids (the energy offset) and the widths (size and spread). For a
Gaussian beam of ``N`` particles and correlation ``rho`` between the two points' coordinates
(from the linear model, :func:`coordinate_correlation`), the sample moments obey
``cov(mean_a, mean_b) = rho s_a s_b / N`` and ``cov(sd_a, sd_b) = rho^2 s_a s_b / (2 N)``
(sample variances: ``cov = 2 C^2 / N``, then the delta method); centroid and width are
uncorrelated. Spots at one setting are paired only when each point occurs once there
(repeated spots of one point are separate bunches, independent).

The tracked model draws the same random deviates for every parameter set and every point
(common random numbers, :func:`beamline.source_fit.tracked_prediction`): its noise is one
realisation shared by all observations, not independent per point. Its effect on the
parameters is measured by re-evaluating the model at the fitted parameters with other seeds
and mapping each change through the linearised fit (:func:`model_noise_parameter_cov`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def coordinate_correlation(
    a: Any, b: Any, params: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Correlation of x and of y between two points' particle coordinates for the linear
    model (``a``/``b`` the points' :class:`beamline.source_fit._Optics`, ``params`` in
    :data:`beamline.source_fit.PARAMETERS` order); layers common to both points count."""
    s0, d0, sd, _ = (float(v) for v in params)

    def plane(i: int, va: float, vb: float, kick: str) -> float:
        ra, rb = a.r, b.r
        c = ra[i, i] * rb[i, i] * s0**2 + ra[i, i + 1] * rb[i, i + 1] * d0**2
        if i == 0:
            c += 1e6 * ra[0, 5] * rb[0, 5] * sd**2
        ka, kb = getattr(a, kick), getattr(b, kick)
        c += sum(ka[name] * kb[name] for name in set(ka) & set(kb))
        return c / math.sqrt(va * vb) if va > 0 and vb > 0 else 0.0

    def var(o: Any, i: int, kick: str) -> float:
        v = (o.r[i, i] * s0) ** 2 + (o.r[i, i + 1] * d0) ** 2
        if i == 0:
            v += (1e3 * o.r[0, 5] * sd) ** 2
        return v + sum(k**2 for k in getattr(o, kick).values())

    rx = plane(0, var(a, 0, "kicks_x"), var(b, 0, "kicks_x"), "kicks_x")
    ry = plane(2, var(a, 2, "kicks_y"), var(b, 2, "kicks_y"), "kicks_y")
    return float(np.clip(rx, -1, 1)), float(np.clip(ry, -1, 1))


def measurement_covariance(
    observations: Sequence[Any],
    optics: Sequence[Any],
    params: Sequence[float] | np.ndarray,
    floor_mm: float,
) -> np.ndarray:
    """Covariance [mm^2] of the data vector (x, sigma_x, sigma_y per observation, the order
    of :func:`beamline.source_fit.predict`): statistical terms (module doc), the pairs at
    one setting correlated, plus ``floor_mm`` in quadrature (independent)."""
    n = len(observations)
    cov = np.zeros((3 * n, 3 * n))
    for i, o in enumerate(observations):
        h = max(int(o.hits), 1)
        cov[3 * i, 3 * i] = o.sigma_x_mm**2 / h + floor_mm**2
        cov[3 * i + 1, 3 * i + 1] = o.sigma_x_mm**2 / (2 * h) + floor_mm**2
        cov[3 * i + 2, 3 * i + 2] = o.sigma_y_mm**2 / (2 * h) + floor_mm**2
    groups: dict[tuple[float, float, float], list[int]] = {}
    for i, o in enumerate(observations):
        key = (o.energy_mev, o.dhstb01_current_a, o.dhstb02_current_a)
        groups.setdefault(key, []).append(i)
    for idx in groups.values():
        points = [observations[i].point for i in idx]
        if len(idx) != 2 or len(set(points)) != 2:
            continue  # only one target + one TimePix spot are the same particles
        i, j = idx
        a, b = observations[i], observations[j]
        rx, ry = coordinate_correlation(optics[i], optics[j], params)
        hab = math.sqrt(max(int(a.hits), 1) * max(int(b.hits), 1))
        c = [
            rx * a.sigma_x_mm * b.sigma_x_mm / hab,
            rx**2 * a.sigma_x_mm * b.sigma_x_mm / (2 * hab),
            ry**2 * a.sigma_y_mm * b.sigma_y_mm / (2 * hab),
        ]
        for k in range(3):
            cov[3 * i + k, 3 * j + k] = cov[3 * j + k, 3 * i + k] = c[k]
    return cov


def whitener(cov: np.ndarray) -> np.ndarray:
    """``W`` with ``W cov W^T = 1`` (inverse Cholesky factor): residuals ``W (model - data)``
    are independent unit normals under the error model."""
    return np.linalg.inv(np.linalg.cholesky(cov))


def model_noise_parameter_cov(
    jac_white: np.ndarray, white: np.ndarray, model_samples: np.ndarray
) -> np.ndarray:
    """Parameter covariance from the model's Monte Carlo noise: ``model_samples`` (one row
    per seed, the model vector at the fitted parameters) mapped through the linearised fit
    ``dp = -(J^T J)^-1 J^T W dm`` (``J`` the whitened Jacobian); the sample covariance of
    ``dp`` over the seeds (unbiased, ``ddof=1``)."""
    gain = np.linalg.pinv(jac_white.T @ jac_white) @ jac_white.T @ white
    dm = model_samples - model_samples.mean(axis=0)
    dp = dm @ gain.T
    return np.atleast_2d(np.cov(dp, rowvar=False, ddof=1))
