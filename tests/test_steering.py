"""beamline.steering: DHSTB02 current for the PADME axis, against closed-form hard-edge optics.

The reference is built from the facts-file geometry (section 1) and the facts-file
excitation curves (section 3) with textbook first-order matrices, not from the model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline.errors import BeamlineInputError
from beamline.steering import dhstb02_current_for_axis, dhstb02_setting_for_energy

RHO_M = 1.723
THETA = math.pi / 4
L_QUAD_M = 0.263
S_B1_EXIT_M = RHO_M * THETA
S_QUAD_CENTRES_M = {"Q1": 3.859, "Q2": 4.959, "Q3": 10.294, "Q4": 11.194}
S_B2_ENTRY_M = 11.925
S_TARGET_M = 13.885
C_MEV_PER_TM = 299.792458


def b_nominal_g(current_a: float) -> float:
    return 27.16 + 28.446 * current_a  # facts 3


def g_quad_tpm(current_a: float) -> float:
    return 0.08372 * current_a + 0.023767  # facts 3


def drift(length_m: float) -> np.ndarray:
    return np.array([[1.0, length_m], [0.0, 1.0]])


def quad(k1_per_m2: float, length_m: float) -> np.ndarray:
    if k1_per_m2 > 0:
        w = math.sqrt(k1_per_m2)
        return np.array(
            [
                [math.cos(w * length_m), math.sin(w * length_m) / w],
                [-w * math.sin(w * length_m), math.cos(w * length_m)],
            ]
        )
    w = math.sqrt(-k1_per_m2)
    return np.array(
        [
            [math.cosh(w * length_m), math.sinh(w * length_m) / w],
            [w * math.sinh(w * length_m), math.cosh(w * length_m)],
        ]
    )


BEND = np.array(
    [[math.cos(THETA), RHO_M * math.sin(THETA)], [-math.sin(THETA) / RHO_M, math.cos(THETA)]]
)
BEND_D = np.array([RHO_M * (1 - math.cos(THETA)), math.sin(THETA)])  # R16, R26


def predicted_dhstb02_shift_a(bl, delta_i1_a: float) -> float:
    """First-order DHSTB02 current change [A] that restores x = 0 at the target after
    DHSTB01 is moved by ``delta_i1_a`` from its matched current (hard edge, drifts + quads)."""
    i1 = bl.matched_dipole_current_a("DHSTB01")
    i2 = bl.matched_dipole_current_a("DHSTB02")
    brho_tm = bl.momentum_mev / C_MEV_PER_TM
    eta1 = 28.446 * delta_i1_a / b_nominal_g(i1)  # relative field error = -delta equivalent
    v = -eta1 * BEND_D  # (x, px) at the DHSTB01 exit
    s = S_B1_EXIT_M
    for q, centre in S_QUAD_CENTRES_M.items():
        k1 = bl.polarity(q) * g_quad_tpm(bl.current_a(q)) / brho_tm
        v = drift(centre - L_QUAD_M / 2 - s) @ v
        v = quad(k1, L_QUAD_M) @ v
        s = centre + L_QUAD_M / 2
    v = drift(S_B2_ENTRY_M - s) @ v
    to_target = drift(S_TARGET_M - (S_B2_ENTRY_M + RHO_M * THETA))
    x_free = (to_target @ BEND @ v)[0]
    dx_deta2 = -(to_target @ BEND_D)[0]
    eta2 = -x_free / dx_deta2
    return eta2 * b_nominal_g(i2) / 28.446


@pytest.fixture(scope="module")
def line():
    from beamline.model import BeamLine

    return BeamLine("run3_2022", match_dipoles=True)


def test_matched_line_needs_the_nominal_current(line) -> None:
    line.set_energy(282.5, match_dipoles=True)
    sol = dhstb02_current_for_axis(line, beam="reference", tolerance_m=1e-13)
    assert sol.current_a == pytest.approx(line.matched_dipole_current_a("DHSTB02"), abs=1e-9)
    assert sol.relative_offset == pytest.approx(0.0, abs=1e-12)
    assert abs(sol.x_target_m) < 1e-12 and abs(sol.px_target) < 1e-12


def test_setting_for_another_energy_is_nominal(line) -> None:
    sol = dhstb02_setting_for_energy(line, 265.0, beam="reference")
    assert sol.current_a == pytest.approx(line.matched_dipole_current_a("DHSTB02", 265.0), abs=1e-9)
    assert sol.energy_mev == 265.0
    assert sol.calibration.startswith(line.settings.dipole_calibration + "@")


@pytest.mark.parametrize("delta_i1_a", [-0.2, 0.2])
def test_mis_set_dhstb01_against_first_order_prediction(line, delta_i1_a: float) -> None:
    line.set_energy(282.5, match_dipoles=True)
    i1 = line.current_a("DHSTB01")
    nominal = line.current_a("DHSTB02")
    line.set_current("DHSTB01", i1 + delta_i1_a)
    try:
        gap = line.gap_mm("SLTB4")
        sol = dhstb02_current_for_axis(line, beam="reference", tolerance_m=1e-13)
        assert line.gap_mm("SLTB4") == gap  # slits restored
        assert line.current_a("DHSTB02") == nominal  # not applied
    finally:
        line.set_current("DHSTB01", i1)
    predicted = predicted_dhstb02_shift_a(line, delta_i1_a)
    assert abs(predicted) > 0.05  # the check is not trivially satisfied
    # second-order terms are ~eta^2 ~ 1e-6 relative: 1 % of the shift is generous
    assert sol.current_a - nominal == pytest.approx(predicted, rel=0.01)
    assert abs(sol.x_target_m) < 1e-12
    assert sol.relative_offset == pytest.approx(
        28.446 * (sol.current_a - nominal) / b_nominal_g(nominal), rel=1e-9
    )


def test_selection_outside_the_beam_is_a_clear_error(line) -> None:
    line.set_energy(282.5, match_dipoles=True)
    i1 = line.current_a("DHSTB01")
    line.set_current("DHSTB01", i1 + 15.0)  # ~8 % above the beam: 8 sigma of the LINAC spread
    try:
        with pytest.raises(BeamlineInputError, match="no particle"):
            dhstb02_current_for_axis(line, n_particles=20_000)
    finally:
        line.set_current("DHSTB01", i1)


def test_dhstb02_mismatch_moves_spot_by_r16(line) -> None:
    """facts 3 [D]: R16 * eps downstream of DHSTB02; closed form R16 = rho(1-cos) + L sin."""
    from beamline.steering import reference_orbit_at

    line.set_energy(282.5, match_dipoles=True)
    i2 = line.current_a("DHSTB02")
    eps = 1e-3
    line.set_current("DHSTB02", i2 + eps * b_nominal_g(i2) / 28.446)
    try:
        x_target = reference_orbit_at(line, "padme_target")[0]
        x_timepix = reference_orbit_at(line, "timepix")[0]
    finally:
        line.set_current("DHSTB02", i2)
    for x, s in ((x_target, S_TARGET_M), (x_timepix, 17.89)):
        r16 = RHO_M * (1 - math.cos(THETA)) + (s - S_B2_ENTRY_M - RHO_M * THETA) * math.sin(THETA)
        assert -x == pytest.approx(r16 * eps, rel=2e-3)
    assert abs(x_timepix) == pytest.approx(3.8e-3, abs=0.05e-3)  # facts: ~3.8 mm per 0.1 %


def test_first_order_part_is_exact(line) -> None:
    """The odd part in delta_i1 of the solved shift equals the first-order prediction
    (second-order terms cancel): a much tighter check than the single-sided one."""
    line.set_energy(282.5, match_dipoles=True)
    i1 = line.current_a("DHSTB01")
    nominal = line.current_a("DHSTB02")
    shifts = []
    try:
        for d in (0.1, -0.1):
            line.set_current("DHSTB01", i1 + d)
            shifts.append(
                dhstb02_current_for_axis(line, beam="reference", tolerance_m=1e-13).current_a
                - nominal
            )
    finally:
        line.set_current("DHSTB01", i1)
    odd = 0.5 * (shifts[0] - shifts[1])
    assert odd == pytest.approx(predicted_dhstb02_shift_a(line, 0.1), rel=1e-4)


# ---- the transmitted beam (issue 14) ------------------------------------------------------
def _track_to_target(line, dhstb02_a: float, n: int, seed: int) -> tuple[float, float, int]:
    """Independent check: a fresh sample of the LINAC beam tracked from the line start to the
    target with every slit as set; mean x [m], mean delta, survivors."""
    from beamline.source import draw_deviates, initial_coordinates, load_source

    beam = load_source(settings="run3_2022").beam
    coords = initial_coordinates(beam, draw_deviates(seed, 0, n, 0))
    saved = line.current_a("DHSTB02")
    line.set_current("DHSTB02", dhstb02_a)
    try:
        p = line.build_particles(**coords, zeta=0.0)
        line.line.track(p, ele_stop="padme_target")
    finally:
        line.set_current("DHSTB02", saved)
    ok = p.state > 0
    return float(np.mean(p.x[ok])), float(np.mean(p.delta[ok])), int(ok.sum())


def test_issue_example_steers_the_beam_the_slits_transmit(line) -> None:
    """Issue 14: 282.5 MeV LINAC beam, DHSTB01 at 180.0 A. The slits pass the momentum that
    DHSTB01 bends onto the arc (closed form: p = 0.0551318 B(180 A)); DHSTB02 must be set
    for that momentum, i.e. ~180.0 A, not the 178.42 A of the stopped reference particle."""
    sol = dhstb02_setting_for_energy(line, 282.5, dhstb01_current_a=180.0)
    p_selected = 0.0551318 * b_nominal_g(180.0)  # facts 3: MeV/c bent onto the design arc
    e_selected = math.hypot(p_selected, 0.51099895)
    # the slit window (~0.1 % wide) sits 0.45 % above the 1 % LINAC centre: its mean is
    # pulled toward the centre by ~w^2/(12 sigma^2) * 0.45 % ~ 5e-5 at most
    assert sol.beam_energy_mev == pytest.approx(e_selected, rel=1e-4)
    assert sol.current_a == pytest.approx(180.0, abs=0.03)  # same calibration for both dipoles
    old = dhstb02_setting_for_energy(line, 282.5, dhstb01_current_a=180.0, beam="reference")
    assert old.current_a < 178.5  # the defect: steering the particle that the slits stop
    # independent sample, tracked from the line start with the advised current
    x_mean, _, n = _track_to_target(line, sol.current_a, 200_000, seed=7)
    assert n > 500
    assert abs(x_mean) < 1e-4  # < 0.1 mm
    # the old advice puts the transmitted beam ~8 mm off axis (issue 14)
    x_old, _, _ = _track_to_target(line, old.current_a, 200_000, seed=7)
    assert x_old == pytest.approx(8e-3, abs=1e-3)


@pytest.mark.parametrize("delta_i1_a", [-0.6, 0.6])
def test_transmitted_centroid_against_closed_form_dispersion(line, delta_i1_a: float) -> None:
    """DHSTB01 mis-set by dI scales its field by 1 + eta, eta = slope dI / B. A particle with
    delta = eta follows the design orbit exactly (x = R16 (delta - eta) = 0 at SLTB4, on axis
    through the quads), so the slits pass delta ~ eta and DHSTB02 needs the field for that
    momentum: dI2 = eta B2 / slope (linear excitation, facts 3)."""
    line.set_energy(282.5, match_dipoles=True)
    i1 = line.current_a("DHSTB01")
    nominal = line.current_a("DHSTB02")
    line.set_current("DHSTB01", i1 + delta_i1_a)
    try:
        sol = dhstb02_current_for_axis(line)
    finally:
        line.set_current("DHSTB01", i1)
    eta = 28.446 * delta_i1_a / b_nominal_g(i1)
    assert abs(eta) > 1e-3  # a real mis-setting, ~5 slit widths in delta
    assert sol.beam_energy_mev / 282.5 - 1 == pytest.approx(eta, abs=5e-5)
    # 0.02 A on DHSTB02 moves the target spot by ~0.1 mm (R16 ~ 0.93 m per 0.1 %)
    assert sol.current_a - nominal == pytest.approx(eta * b_nominal_g(nominal) / 28.446, abs=0.02)
    assert sol.centroid_sigma_m < 1e-4


def test_spot_prediction_agrees_with_the_tracked_transmitted_beam(line) -> None:
    """The checker/simulator prediction (beamline.spot) puts the selected momentum's orbit
    where tracking the transmitted beam puts its centroid (< 0.1 mm at the target)."""
    from beamline.spot import predict_spot

    for i1, i2 in ((180.0, 179.2), (178.5, 179.0)):
        line.set_energy(282.5)
        line.set_current("DHSTB01", i1)
        x_mean, _, _ = _track_to_target(line, i2, 200_000, seed=3)
        pred = predict_spot(line, i1, i2, rel_spread=0.0025)
        assert pred.x_target_mm == pytest.approx(1e3 * x_mean, abs=0.1)
