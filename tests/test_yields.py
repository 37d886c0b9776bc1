"""Signal yield, efficiency, background and kinematics against the facts-file formulas and
numbers (facts 5) and independent integrals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import wofz

from scanplan.errors import ScanplanError
from scanplan.physics.params import load_physics
from scanplan.physics.yields import (
    background_per_pot,
    narrow_width_integral_mev,
    resonance_energy_array_mev,
    selected_signal_per_pot_g2,
    signal_efficiency,
    signal_yield_per_pot_g2,
    sqrt_s_array_mev,
    yield_report,
)

M_E = 0.51099895  # MeV, CODATA 2018 (independent of beamline.constants)


def test_kinematics_reproduce_facts_numbers() -> None:
    # facts 5: M = 17.0 MeV -> E_res = 282.27 MeV; 1 MeV of E_beam ~ 30 keV of sqrt(s)
    assert float(resonance_energy_array_mev(17.0)) == pytest.approx(282.27, abs=0.01)
    assert float(resonance_energy_array_mev(17.0)) == pytest.approx(
        (17.0**2 - 2 * M_E**2) / (2 * M_E), rel=1e-7
    )
    d = float(sqrt_s_array_mev(283.0) - sqrt_s_array_mev(282.0))
    assert d == pytest.approx(0.030, abs=0.001)
    # facts 4: E_beam 262.2-300.1 MeV <-> sqrt(s) 16.39-17.53 MeV
    assert sqrt_s_array_mev([262.2, 300.1]) == pytest.approx([16.39, 17.53], abs=0.006)


def test_yield_integrates_to_y_and_peak_is_the_voigt_peak() -> None:
    model = load_physics()
    m = 17.0
    e_res = (m * m - 2 * M_E**2) / (2 * M_E)
    area, _ = quad(
        lambda e: float(signal_yield_per_pot_g2(m, e, 0.0025, model)),
        e_res - 400,
        e_res + 400,
        points=[e_res],
        limit=500,
    )
    # the Lorentz tails beyond +-400 MeV hold 2 gamma / (pi 400) of the area
    tail = 2 * 1.72 / (math.pi * 400)
    assert area == pytest.approx(13.56 * (1 - tail), rel=1e-4)
    # Voigt peak from the Faddeeva function: Re w(i gamma / (sigma sqrt 2)) / (sigma sqrt(2 pi))
    sigma = 0.0025 * e_res
    peak = wofz(1j * 1.72 / (sigma * math.sqrt(2))).real / (sigma * math.sqrt(2 * math.pi))
    assert float(signal_yield_per_pot_g2(m, e_res, 0.0025, model)) == pytest.approx(
        13.56 * peak, rel=1e-9
    )


def test_narrow_width_check_of_y() -> None:
    # facts 5: pi g^2 (hbar c)^2 / (2 m_e) x n_e L (100 um diamond) ~ 12.7 g^2 MeV, close to Y
    hbar_c_mev_fm = 197.3269804
    n_e_per_fm2 = 1.057e24 * 100e-4 / 1e26
    expect = math.pi * hbar_c_mev_fm**2 / (2 * M_E) * n_e_per_fm2
    assert narrow_width_integral_mev() == pytest.approx(expect, rel=1e-6)
    assert narrow_width_integral_mev() == pytest.approx(12.7, abs=0.1)
    assert abs(narrow_width_integral_mev() / load_physics().signal.yield_mev - 1) < 0.1


def test_efficiency_and_background_follow_facts_table() -> None:
    # facts 5 nodes
    assert float(background_per_pot(262.0)) == pytest.approx(3.35e-6)
    assert float(background_per_pot(300.0)) == pytest.approx(3.83e-6)
    assert float(signal_efficiency(262.0)) == pytest.approx(0.079)
    assert float(signal_efficiency(300.0)) == pytest.approx(0.100)
    # "about linearly" in between
    assert float(background_per_pot(281.0)) == pytest.approx(0.5 * (3.35e-6 + 3.83e-6))
    assert float(signal_efficiency(281.0)) == pytest.approx(0.5 * (0.079 + 0.100))
    # below resonance: 2.3-2.45e-6 and 0.041-0.045 at 206-213 MeV
    for e in (206.6, 209.0, 212.7):
        assert 2.3e-6 <= float(background_per_pot(e)) <= 2.45e-6
        assert 0.041 <= float(signal_efficiency(e)) <= 0.045
    # outside: linear continuation of the end segment
    slope = (3.83e-6 - 3.35e-6) / 38.0
    assert float(background_per_pot(308.0)) == pytest.approx(3.83e-6 + 8 * slope)


def test_selected_signal_and_report() -> None:
    r = yield_report(16.9, 279.0, 0.0025)
    assert r.sqrt_s_mev == pytest.approx(math.sqrt(2 * M_E**2 + 2 * M_E * 279.0), rel=1e-7)
    assert r.selected_signal_per_pot_g2 == pytest.approx(
        r.signal_efficiency * r.signal_yield_per_pot_g2
    )
    s = selected_signal_per_pot_g2(
        np.array([16.8, 16.9, 17.0])[:, None], np.array([275.0, 279.0]), 0.0025
    )
    assert s.shape == (3, 2)
    assert np.all(s > 0)


@pytest.mark.parametrize("kwargs", [dict(bes=-0.001), dict(bes=0.5), dict(mass_mev=float("nan"))])
def test_bad_yield_input(kwargs: dict) -> None:
    args = dict(mass_mev=17.0, e_beam_mev=282.0, bes=0.0025)
    args.update(kwargs)
    with pytest.raises((ScanplanError, ValueError)):
        yield_report(**args)
