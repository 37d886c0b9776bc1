"""First-order optics of DHSTB01 + drifts against the closed-form hard-edge sector bend.

R11 = cos θ, R12 = ρ sin θ, R16 = ρ(1 − cos θ), R26 = sin θ for the bend; a drift L after it
adds L·R2j to R1j. Geometry from the facts file: ρ = 1.723 m, θ = 45°, slits at s = 2.735
(SLTB3) and 2.945 m (SLTB4) centres, 35 mm long; the map is taken to the slit entrance.
"""

from __future__ import annotations

import math

import pytest

from beamline import optics

RHO_M = 1.723
THETA = math.pi / 4
SLIT_LENGTH_M = 0.035


def closed_form(drift_m: float) -> dict[str, float]:
    r11, r12, r16 = math.cos(THETA), RHO_M * math.sin(THETA), RHO_M * (1 - math.cos(THETA))
    r21, r22, r26 = -math.sin(THETA) / RHO_M, math.cos(THETA), math.sin(THETA)
    return {
        "R11": r11 + drift_m * r21,
        "R12": r12 + drift_m * r22,
        "R16": r16 + drift_m * r26,
        "R26": r26,
    }


@pytest.mark.parametrize("slit, s_centre_m", [("sltb3", 2.735), ("sltb4", 2.945)])
def test_dhstb01_to_slit_matches_hard_edge_sector_bend(run3_line, slit, s_centre_m):
    drift = s_centre_m - SLIT_LENGTH_M / 2 - RHO_M * THETA
    expected = closed_form(drift)
    r = optics.r_matrix(run3_line, "dhstb01", slit)
    got = {
        "R11": r.loc["x", "x"],
        "R12": r.loc["x", "px"],
        "R16": r.loc["x", "pzeta"],
        "R26": r.loc["px", "pzeta"],
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-8, abs=1e-9), key


def test_sltb4_dispersion_is_what_selects_the_energy(run3_line):
    """Facts §2: R11 from SLTB2 to SLTB4 is small, R16 large."""
    r = optics.r_matrix(run3_line, "sltb2_exit", "sltb4")
    assert abs(r.loc["x", "x"]) < 0.1
    assert r.loc["x", "pzeta"] > 1.5
