"""Currents are the knobs: the dipoles follow the current, not the geometry.

A reference-energy particle with DHSTB01 changed by ΔI sees a rigidity mismatch
ε = Δ(Bρ)_D/(Bρ)_D (calibration p = κ(a + bI), so ε = bΔI/(a + bI)) and arrives at
SLTB4 displaced by −R16·ε to first order, R16 from the closed-form hard-edge bend.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline import calibration
from beamline.model import BeamLine

RHO_M, THETA, SLIT_LENGTH_M = 1.723, math.pi / 4, 0.035
# facts-file geometry: SLTB4 centre 2.945 m, entrance and exit of its 35 mm jaws
R16_SLTB4_ENTRY = RHO_M * (1 - math.cos(THETA)) + (2.945 - SLIT_LENGTH_M / 2 - RHO_M * THETA) * math.sin(THETA)
R16_SLTB4_EXIT = R16_SLTB4_ENTRY + SLIT_LENGTH_M * math.sin(THETA)


@pytest.fixture()
def line():
    return BeamLine("run3_2022", 282.5, match_dipoles=True)


def _track_reference(bl: BeamLine):
    p = bl.build_particles(x=[0.0], px=[0.0], delta=[0.0])
    tw = bl.line.twiss(
        method="4d", start=bl.line.element_names[0], end="_end_point", betx=1, bety=1
    )  # orbit of the reference particle from x = px = 0
    bl.track(p)
    return p, tw


def _epsilon(bl: BeamLine, delta_i: float) -> float:
    cal = calibration.dipole_calibration("DHSTB01", bl.settings.dipole_calibration)
    i0 = bl.current_a("DHSTB01") - delta_i
    return cal.slope * delta_i / (cal.offset + cal.slope * i0)


@pytest.mark.parametrize("delta_i_a", [-0.05, 0.02, 0.05])
def test_current_change_moves_reference_particle_by_r16(line, delta_i_a):
    for slit in ("SLTB2", "SLTB3", "SLTB4", "SLTB5"):
        line.set_gap(slit, 53.0 if slit != "SLTB3" else 32.0)
    line.set_current("DHSTB01", line.current_a("DHSTB01") + delta_i_a)
    _, tw = _track_reference(line)
    eps = _epsilon(line, delta_i_a)
    x_entry = float(tw.rows["sltb4"].x[0])
    assert x_entry == pytest.approx(-R16_SLTB4_ENTRY * eps, rel=2e-3)
    assert abs(x_entry) > 1e-5  # the line did not silently follow the geometry


def test_matched_current_keeps_reference_on_axis(line):
    p, tw = _track_reference(line)
    assert p.state[0] == 1
    assert abs(float(tw.rows["padme_target"].x[0])) < 1e-9
    assert abs(float(tw.rows["timepix"].x[0])) < 1e-9


def test_reference_particle_lost_on_sltb4_when_it_should(line):
    """Half gap 0.95 mm: the particle passes just inside and is lost just outside."""
    half_gap_m = 0.5 * line.gap_mm("SLTB4") * 1e-3
    cal = calibration.dipole_calibration("DHSTB01", line.settings.dipole_calibration)
    i0 = line.current_a("DHSTB01")
    # ε at which |x| reaches the half gap at the slit exit (the larger displacement)
    eps_edge = half_gap_m / R16_SLTB4_EXIT
    delta_i_edge = eps_edge * (cal.offset + cal.slope * i0) / cal.slope
    sltb4 = line.line.element_names.index("sltb4_aper")
    for factor, survives in ((0.98, True), (1.02, False)):
        line.set_current("DHSTB01", i0 + factor * delta_i_edge)
        p = line.build_particles(x=[0.0], px=[0.0], delta=[0.0])
        line.track(p)
        assert bool(p.state[0] == 1) is survives, factor
        if not survives:
            assert p.at_element[0] in (sltb4, line.line.element_names.index("sltb4_exit_aper"))
    line.set_current("DHSTB01", i0)


def test_dipole_strength_follows_current_expression(line):
    k0_before = line.line["dhstb01"].k0
    line.set_current("DHSTB01", line.current_a("DHSTB01") * 1.01)
    assert line.line["dhstb01"].k0 != pytest.approx(k0_before, rel=1e-4)
    h = line.line["dhstb01"].h
    assert k0_before == pytest.approx(h, rel=1e-12)


def test_quadrupole_strength_follows_calibration(line):
    line.set_current("Q1", 30.0)
    brho = line.line.particle_ref.rigidity0[0]
    gradient = calibration.quad_gradient_tpm("Q1", 30.0)
    assert line.line["q1"].k1 == pytest.approx(line.polarity("Q1") * gradient / brho, rel=1e-12)
    np.testing.assert_allclose(gradient, 0.023767 + 0.08372 * 30.0, rtol=1e-15)
