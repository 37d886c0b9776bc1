"""Quadrupoles Q1..Q4 (supplies QUATB001..QUATB004) in the step checker and the simulator.

The checker logic runs on the in-memory fake BTF (``tests/fixtures/fake_btf.py``); the
simulator publishes the quads over a real memcached; the effect of a quad current on the
predicted spot is checked against a closed-form thick-quadrupole matrix (gradient from the
facts-file calibration G = 0.023767 + 0.08372 I T/m) applied to the model's Twiss upstream and
its nominal map downstream of the magnet, not against the predictor itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from fixtures import facility as fx
from fixtures import fake_btf as fb
from fixtures.fake_btf import currents_of

from beamline.constants import rigidity_tm_from_momentum
from beamline.model import BeamLine
from beamline.optics import r_between, twiss_table
from beamline.spot import selected_energy_mev
from hw_interfaces.btf_controls import BtfControls
from hw_interfaces.polling import wait_until
from scanplan.check import FAIL, OK, WARN, Checker
from scanplan.check.dipoles import quadrupoles

facility = fx.facility  # fixture
fake_btf = fb.fake_btf  # fixture
plan = fx.plan  # fixture
predictor = fx.predictor  # fixture
tolerances = fx.tolerances  # fixture

# facts 3 [C]: DAFNE transfer-line type A quadrupoles, G [T/m] = 0.023767 + 0.08372 I [A];
# magnetic length 0.263 m (lattices/btf_padme/btf_padme.seq, facts 1).
G0_TPM, DG_DI_TPM_PER_A, L_QUAD_M = 0.023767, 0.08372, 0.263
# lattices/btf_padme/settings/run3_2022.str i_q3_a = 22.1839, on the predictor's 1 mA grid
QUATB003_A = 22.184


def test_every_quad_is_compared_with_the_plan(fake_btf, plan):
    v = fake_btf.checker().check(plan, 0)
    assert v.level == OK, v.reasons
    p = plan.point(0)
    for q in quadrupoles():
        c = v.comparison(f"{q.element} set point vs plan")
        assert c.expected == pytest.approx(getattr(p, f"{q.magnet.lower()}_current_a"))
        assert c.level == OK
        assert v.comparison(f"{q.element} readback vs set point").level == OK
        assert v.comparison(f"{q.element} status").level == OK
        assert v.readings[q.element].output_current_a == pytest.approx(c.expected)


@pytest.mark.parametrize(("delta_a", "level"), [(0.2, WARN), (0.9, FAIL)])
def test_a_quad_off_the_plan_warns_or_fails_with_the_numbers(
    fake_btf, plan, tolerances, delta_a, level
):
    q = tolerances.quadrupoles
    assert q.setpoint_warn_a < delta_a
    assert (delta_a > q.setpoint_fail_a) == (level == FAIL)
    want = plan.point(0).q3_current_a
    fake_btf.psu.set_currents({"QUATB003": want + delta_a})
    fake_btf.clock.advance(1.0)  # ramped
    v = fake_btf.checker().check(plan, 0)
    c = v.comparison("QUATB003 set point vs plan")
    assert c.level == level
    assert v.level == level
    assert c.difference == pytest.approx(delta_a)
    # the reason carries both numbers, with enough digits to tell them apart
    assert f"{want + delta_a:.3f} A vs {want:.3f} A" in c.reason, c.reason
    assert c.reason in v.reasons


def test_a_tripped_quad_fails_and_its_unreadable_record_too(fake_btf, plan):
    fake_btf.psu.inject("trip", "QUATB002")
    fake_btf.psu.inject("missing", "QUATB004")
    v = fake_btf.checker().check(plan, 0)
    assert v.level == FAIL
    assert v.comparison("QUATB002 status").level == FAIL
    assert "QUATB002" in v.comparison("QUATB002 status").reason
    assert v.comparison("QUATB004 read").level == FAIL
    # the dipoles are fine and still judged
    assert v.comparison("DHSTB001 set point vs plan").level == OK


def reference_line(i1: float, i2: float, resolution_a: float) -> BeamLine:
    """A fresh model in the predictor's state for dipole currents ``i1``/``i2``: currents
    rounded to its cache resolution, energy selected by DHSTB01 (beamline.spot)."""
    bl = BeamLine("run3_2022")
    rounded = {m: round(i / resolution_a) * resolution_a for m, i in bl.currents_a().items()}
    i1, i2 = (round(i / resolution_a) * resolution_a for i in (i1, i2))
    bl.set_energy(selected_energy_mev(bl, i1))
    bl.set_currents({**rounded, "DHSTB01": i1, "DHSTB02": i2})
    return bl


def closed_form_sigma_mm(bl: BeamLine, quad: str, current_a: float, rel_spread: float):
    """rms sizes (x, y) at the TimePix [mm] with ``quad`` at ``current_a``: the model's Twiss
    at the quad entrance and its map from the quad exit (both independent of that quad),
    and a closed-form thick quadrupole in between."""
    tw = twiss_table(bl)
    name = quad.lower()
    row = tw.rows[name]
    brho = rigidity_tm_from_momentum(bl.momentum_mev)
    k1 = bl.polarity(quad) * (G0_TPM + DG_DI_TPM_PER_A * current_a) / brho
    down = r_between(tw, f"{name}_exit", "timepix")
    out = []
    for plane, k, (i, j) in (("x", k1, (0, 1)), ("y", -k1, (2, 3))):
        r = math.sqrt(abs(k))
        phi = r * L_QUAD_M
        if k > 0:
            m = np.array([[math.cos(phi), math.sin(phi) / r], [-r * math.sin(phi), math.cos(phi)]])
        else:
            m = np.array(
                [[math.cosh(phi), math.sinh(phi) / r], [r * math.sinh(phi), math.cosh(phi)]]
            )
        beta = float(getattr(row, f"bet{plane}")[0])
        alpha = float(getattr(row, f"alf{plane}")[0])
        gamma = (1 + alpha**2) / beta
        emit = getattr(bl.beam, f"emit_{plane}_m")
        sigma = emit * np.array([[beta, -alpha], [-alpha, gamma]])
        d = np.array([float(getattr(row, f"d{plane}")[0]), float(getattr(row, f"dp{plane}")[0])])
        total = down[np.ix_([i, j], [i, j])] @ m
        s_tp = total @ sigma @ total.T
        d_tp = total @ d + down[[i, j], 5]
        out.append(1e3 * math.sqrt(s_tp[0, 0] + (d_tp[0] * rel_spread) ** 2))
    return tuple(out)


def test_a_quad_current_changes_the_predicted_spot_as_the_closed_form_says(plan, predictor):
    p = plan.point(0)
    i1, i2 = p.dhstb01_current_a, p.dhstb02_current_a
    bl = reference_line(i1, i2, predictor.resolution_a)
    spread = predictor.rel_spread
    nominal = predictor.predict(i1, i2, {"Q3": QUATB003_A})
    assert (nominal.sigma_x_timepix_mm, nominal.sigma_y_timepix_mm) == pytest.approx(
        closed_form_sigma_mm(bl, "Q3", QUATB003_A, spread), rel=1e-6
    )
    off = predictor.predict(i1, i2, {"Q3": QUATB003_A + 3.0})
    sx, sy = closed_form_sigma_mm(bl, "Q3", QUATB003_A + 3.0, spread)
    assert (off.sigma_x_timepix_mm, off.sigma_y_timepix_mm) == pytest.approx((sx, sy), rel=1e-6)
    # the change is real (not within the comparison's precision) ...
    assert abs(off.sigma_y_timepix_mm / nominal.sigma_y_timepix_mm - 1) > 0.01
    # ... and the centroid stays: the selected beam crosses the quads on axis
    assert off.x_timepix_mm == pytest.approx(nominal.x_timepix_mm, abs=1e-9)
    # no quads given: the settings' currents
    assert predictor.predict(i1, i2).sigma_y_timepix_mm == pytest.approx(
        nominal.sigma_y_timepix_mm, rel=1e-9
    )


def test_simulator_publishes_the_quads_and_feeds_them_to_its_model(facility, plan, tolerances):
    addr = facility.addresses()
    host, port = addr.memcached.rsplit(":", 1)
    psu = BtfControls(host, int(port), key_prefix=addr.key_prefix, max_age_s=2.0)
    try:
        # over the real memcached: the plan's quad currents the facility was started with
        for q in quadrupoles():
            r = psu.read_power_supply(q.element)
            assert r.ok
            assert r.current_setting_a == pytest.approx(q.planned_current_a(plan.point(0)))
        checker = Checker(psu=psu, predictor=facility.predictor, tolerances=tolerances)
        v = checker.check(plan, 0)
        assert all(
            v.comparison(f"{q.element} set point vs plan").level == OK for q in quadrupoles()
        )
    finally:
        psu.close()
    # the simulated TimePix spot follows the model with the quads' output currents
    states = facility.facility.psu_states()
    i1 = facility.beam.effective_current_a(states["DHSTB001"])
    i2 = facility.beam.effective_current_a(states["DHSTB002"])
    bl = reference_line(i1, i2, facility.predictor.resolution_a)
    spread = facility.predictor.rel_spread
    q3 = facility.beam.effective_current_a(states["QUATB003"])
    facility.inject("offset:QUATB003=3")
    _, _, sx, sy = facility.beam(facility.facility.psu_states())
    # Q3 exact, the other magnets rounded like the simulator's cache (cache_resolution_a)
    assert (sx, sy) == pytest.approx(closed_form_sigma_mm(bl, "Q3", q3 + 3.0, spread), rel=1e-4)
    facility.clear()
    facility.set_currents({"QUATB003": q3 - 3.0})
    assert wait_until(
        lambda: (
            abs(facility.facility.psu_states()["QUATB003"].output_current_a - (q3 - 3.0)) < 1e-6
        ),
        timeout_s=5.0,
    )
    _, _, sx, sy = facility.beam(facility.facility.psu_states())
    assert (sx, sy) == pytest.approx(closed_form_sigma_mm(bl, "Q3", q3 - 3.0, spread), rel=1e-4)


def test_fixture_sets_every_supply(plan):
    # the fake and the simulator start with the dipoles and the quads of the point
    assert set(currents_of(plan, 0)) == {
        "DHSTB001",
        "DHSTB002",
        "QUATB001",
        "QUATB002",
        "QUATB003",
        "QUATB004",
    }
