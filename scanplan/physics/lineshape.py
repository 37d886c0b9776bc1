"""The expected line shape of a resonance in beam energy: an area-normalised Voigt profile.

The Gaussian part is the beam-energy spread, ``sigma = BES * E_res`` [MeV]; the Lorentzian
part is the electron-motion broadening of half width at half maximum ``gamma`` [MeV]
(facts 5: w_L = 1.72 MeV, see :class:`scanplan.physics.params.PhysicsModel`). All widths
and energies are beam energies [MeV]; the profile is in [1/MeV].
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ScanplanError
from .params import PhysicsModel


def voigt_per_mev(delta_e_mev: ArrayLike, sigma_mev: ArrayLike, gamma_mev: ArrayLike) -> NDArray:
    """Area-normalised Voigt profile [1/MeV] at ``delta_e_mev`` = E_beam - E_res [MeV].

    ``sigma_mev`` Gaussian rms [MeV], ``gamma_mev`` Lorentzian HWHM [MeV]; one of them may be
    zero (pure Lorentzian / Gaussian), not both.
    """
    s = np.asarray(sigma_mev, dtype=float)
    g = np.asarray(gamma_mev, dtype=float)
    if np.any(s < 0) or np.any(g < 0) or np.any((s == 0) & (g == 0)):
        raise ScanplanError("line shape needs sigma >= 0, gamma >= 0 and not both zero")
    from scipy.special import voigt_profile  # 0.2 s: not at import

    return voigt_profile(np.asarray(delta_e_mev, dtype=float), s, g)


def voigt_fwhm_mev(sigma_mev: float, gamma_mev: float) -> float:
    """Full width at half maximum [MeV] of the Voigt profile (solved numerically)."""
    from scipy.optimize import brentq  # 0.4 s: not at import (plan records import this)

    peak = float(voigt_per_mev(0.0, sigma_mev, gamma_mev))
    scale = 2.0 * sigma_mev * math.sqrt(2.0 * math.log(2.0)) + 2.0 * gamma_mev

    def f(x: float) -> float:
        return float(voigt_per_mev(x, sigma_mev, gamma_mev)) - 0.5 * peak

    return 2.0 * brentq(f, 0.0, scale, xtol=1e-12, rtol=1e-12)


def line_sigma_mev(e_res_mev: ArrayLike, bes: float) -> NDArray:
    """Gaussian rms [MeV] of the line at resonance energy ``e_res_mev``: ``BES * E_res``."""
    return float(bes) * np.asarray(e_res_mev, dtype=float)


def line_shape_per_mev(
    e_beam_mev: ArrayLike, e_res_mev: ArrayLike, bes: float, model: PhysicsModel
) -> NDArray:
    """Line shape V(E_beam - E_res) [1/MeV] with sigma = BES * E_res and the model's w_L."""
    e_res = np.asarray(e_res_mev, dtype=float)
    return voigt_per_mev(
        np.asarray(e_beam_mev, dtype=float) - e_res,
        line_sigma_mev(e_res, bes),
        model.lorentz_gamma_mev,
    )


def line_fwhm_mev(e_res_mev: float, bes: float, model: PhysicsModel) -> float:
    """FWHM [MeV of beam energy] of the expected line at resonance energy ``e_res_mev``."""
    return voigt_fwhm_mev(float(line_sigma_mev(e_res_mev, bes)), model.lorentz_gamma_mev)
