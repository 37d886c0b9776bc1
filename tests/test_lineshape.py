"""Line shape: area-normalised Voigt checked against independent numerical integration,
closed-form widths and the Olivero-Longbothum FWHM approximation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from scanplan.errors import ScanplanError
from scanplan.physics.lineshape import line_fwhm_mev, voigt_fwhm_mev, voigt_per_mev
from scanplan.physics.params import load_physics

GAUSS_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548


def _convolution(x: float, sigma: float, gamma: float) -> float:
    """Gaussian (sigma) * Lorentzian (HWHM gamma) at x by direct numerical convolution."""

    def integrand(t: float) -> float:
        g = math.exp(-0.5 * (t / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))
        lor = gamma / math.pi / ((x - t) ** 2 + gamma**2)
        return g * lor

    val, _ = quad(
        integrand, -12 * sigma, 12 * sigma, points=[x] if abs(x) < 12 * sigma else None, limit=400
    )
    return val


@pytest.mark.parametrize("sigma,gamma", [(0.7, 1.72), (0.3, 0.5), (1.5, 0.2)])
def test_voigt_is_the_convolution_and_has_unit_area(sigma: float, gamma: float) -> None:
    for x in (0.0, 0.8, 2.5, -4.0):
        assert float(voigt_per_mev(x, sigma, gamma)) == pytest.approx(
            _convolution(x, sigma, gamma), rel=1e-6
        )
    area, _ = quad(lambda x: float(voigt_per_mev(x, sigma, gamma)), -np.inf, np.inf, limit=400)
    assert area == pytest.approx(1.0, rel=1e-6)


def test_fwhm_limits_and_olivero_approximation() -> None:
    # pure Gaussian and pure Lorentzian: closed forms
    assert voigt_fwhm_mev(0.7, 0.0) == pytest.approx(GAUSS_FWHM_PER_SIGMA * 0.7, rel=1e-9)
    assert voigt_fwhm_mev(0.0, 1.72) == pytest.approx(2 * 1.72, rel=1e-9)
    # mixed: Olivero & Longbothum (1977), accurate to ~0.02 %
    for sigma, gamma in ((0.7, 1.72), (1.0, 0.3), (0.2, 2.0)):
        fg, fl = GAUSS_FWHM_PER_SIGMA * sigma, 2 * gamma
        approx = 0.5346 * fl + math.sqrt(0.2166 * fl * fl + fg * fg)
        assert voigt_fwhm_mev(sigma, gamma) == pytest.approx(approx, rel=5e-4)


def test_line_width_uses_bes_times_resonance_energy() -> None:
    gauss_only = load_physics().with_overrides(lorentz_width_mev=0.0)
    # facts 4/5: BES 0.25 % at 282 MeV -> sigma 0.705 MeV, FWHM 1.66 MeV
    assert line_fwhm_mev(282.27, 0.0025, gauss_only) == pytest.approx(
        GAUSS_FWHM_PER_SIGMA * 0.0025 * 282.27, rel=1e-9
    )
    full = load_physics()
    assert full.lorentz_gamma_mev == 1.72  # w_L read as HWHM (named convention)
    fwhm_conv = load_physics().with_overrides(lorentz_width_convention="fwhm")
    assert fwhm_conv.lorentz_gamma_mev == pytest.approx(0.86)
    assert line_fwhm_mev(282.27, 0.0025, full) > line_fwhm_mev(282.27, 0.0025, fwhm_conv)


def test_bad_widths_are_refused() -> None:
    with pytest.raises(ScanplanError):
        voigt_per_mev(0.0, 0.0, 0.0)
    with pytest.raises(ScanplanError):
        voigt_per_mev(0.0, -1.0, 1.0)
    with pytest.raises(ScanplanError):
        load_physics().with_overrides(lorentz_width_convention="hwfm")
