"""Predicted beam spot vs closed-form first-order optics of DHSTB02 + drift."""

from __future__ import annotations

import math

import pytest

from beamline import calibration
from beamline.spot import predict_spot, selected_energy_mev

RHO_M, THETA = 1.723, math.pi / 4
DHSTB02_EXIT_M, TARGET_M, TIMEPIX_M = 11.925 + RHO_M * THETA, 13.885, 17.89
FACTS_BES = 0.0025  # facts 2: relative beam-energy spread 0.25 %


def r16_after_dhstb02(s_m: float) -> float:
    return RHO_M * (1 - math.cos(THETA)) + (s_m - DHSTB02_EXIT_M) * math.sin(THETA)


@pytest.fixture()
def line():
    from beamline.model import BeamLine

    return BeamLine("run3_2022", 282.5, match_dipoles=True)


def test_matched_currents_put_the_beam_on_axis(line):
    i1, i2 = line.current_a("DHSTB01"), line.current_a("DHSTB02")
    spot = predict_spot(line, i1, i2, rel_spread=FACTS_BES)
    assert spot.beam_energy_mev == pytest.approx(282.5, rel=1e-12)
    for value in (spot.x_target_mm, spot.x_timepix_mm, spot.y_target_mm, spot.y_timepix_mm):
        assert abs(value) < 1e-6
    assert spot.r16_dhstb02_timepix_m == pytest.approx(r16_after_dhstb02(TIMEPIX_M), rel=1e-8)


@pytest.mark.parametrize("delta_i_a", [-0.3, 0.1, 0.4])
def test_dhstb02_mismatch_moves_spot_by_r16_eps(line, delta_i_a):
    i1 = line.current_a("DHSTB01")
    i2 = i1 + delta_i_a
    spot = predict_spot(line, i1, i2, rel_spread=FACTS_BES)
    cal = calibration.dipole_calibration("DHSTB02")
    eps = cal.slope * delta_i_a / (cal.offset + cal.slope * i1)
    assert spot.x_target_mm == pytest.approx(-1e3 * r16_after_dhstb02(TARGET_M) * eps, rel=5e-3)
    assert spot.x_timepix_mm == pytest.approx(-1e3 * r16_after_dhstb02(TIMEPIX_M) * eps, rel=5e-3)
    # with k0 != h the bend's dispersion changes at second order
    assert spot.r16_dhstb02_timepix_m == pytest.approx(r16_after_dhstb02(TIMEPIX_M), rel=3e-3)


def test_facts_file_order_of_magnitude(line):
    """Facts §3: ≈3.8 mm at the TimePix per 0.1 % DHSTB02/beam mismatch."""
    assert r16_after_dhstb02(TIMEPIX_M) * 1e-3 * 1e3 == pytest.approx(3.8, abs=0.1)
    i1 = line.current_a("DHSTB01")
    spot = predict_spot(line, i1, i1, rel_spread=FACTS_BES)
    di_per_permille = 1e-3 * (calibration.dipole_calibration("DHSTB02").offset / 28.446 + i1)
    assert abs(spot.dx_dcurrent_dhstb02_mm_per_a * di_per_permille) == pytest.approx(3.77, abs=0.05)


def test_selected_energy_follows_dhstb01(line):
    e = selected_energy_mev(line, 170.0)
    p = 0.0551318 * (27.16 + 28.446 * 170.0)
    assert e == pytest.approx(math.hypot(p, 0.51099895069), rel=1e-12)
