"""The checker's first-order spot model against the full model (beamline.spot.predict_spot)
over the ``[linear_model]`` ranges, and its disk cache: a second process-like predictor
answers near the plan currents without building the xtrack line."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.plans import make_plan

from scanplan.check import CheckTolerances, SpotPredictor
from scanplan.check.dipoles import plan_currents_a
from scanplan.check.session import predictor_for

#: the bounds stated in lattices/checks/tolerances.toml [linear_model]
POSITION_MM = 0.02
SIZE_REL = 0.02
POSITIONS = ("x_target_mm", "y_target_mm", "x_timepix_mm", "y_timepix_mm")
SIZES = ("sigma_x_target_mm", "sigma_y_target_mm", "sigma_x_timepix_mm", "sigma_y_timepix_mm")


@pytest.fixture(scope="module")
def plan():
    return make_plan(3)


def _point_currents(plan, period=1):
    """(DHSTB01, DHSTB02, {Q1..Q4}) of a plan point [A]."""
    from beamline.names import supply_element

    by_supply = plan_currents_a(plan.point(period))
    quads = {q: by_supply[supply_element(q)] for q in ("Q1", "Q2", "Q3", "Q4")}
    return by_supply["DHSTB001"], by_supply["DHSTB002"], quads


def test_linear_model_matches_the_full_model_over_its_range(plan, monkeypatch):
    monkeypatch.setenv("SCANPLAN_CACHE_DIR", "off")
    tol = CheckTolerances.load()
    lin = tol.linear_model
    linear = predictor_for(plan, tol)
    full = SpotPredictor(
        plan.provenance.settings or None,
        beamline=linear.beamline,  # one line, re-set before every prediction
        rel_spread=plan.inputs.bes,
        resolution_a=tol.simulator.cache_resolution_a,
    )
    i1, i2, quads = _point_currents(plan)
    anchor = linear.predict(i1, i2, quads, anchor=True)
    assert anchor == full.predict(i1, i2, quads)  # the anchor itself is the full model
    rng = np.random.default_rng(7)
    ranges = np.array([lin.dipole_range_a] * 2 + [lin.quadrupole_range_a] * 4)
    corners = [ranges, -ranges, ranges * np.array([1, -1, 1, -1, 1, -1])]
    worst_pos, worst_size = 0.0, 0.0
    for delta in [*corners, *(rng.uniform(-1, 1, 6) * ranges for _ in range(12))]:
        q = {name: quads[name] + d for name, d in zip(quads, delta[2:], strict=True)}
        before = linear.linear_hits
        got = linear.predict(i1 + delta[0], i2 + delta[1], q)
        assert linear.linear_hits == before + 1  # evaluated from the linear model
        want = full.predict(i1 + delta[0], i2 + delta[1], q)
        assert got.dhstb01_current_a == pytest.approx(want.dhstb01_current_a)
        assert got.dhstb02_current_a == pytest.approx(want.dhstb02_current_a)
        for f in POSITIONS:
            worst_pos = max(worst_pos, abs(getattr(got, f) - getattr(want, f)))
        for f in SIZES:
            worst_size = max(worst_size, abs(getattr(got, f) / getattr(want, f) - 1))
        assert got.beam_energy_mev == pytest.approx(want.beam_energy_mev, abs=1e-3)
        assert got.dx_dcurrent_dhstb02_mm_per_a == pytest.approx(
            want.dx_dcurrent_dhstb02_mm_per_a, rel=0.01
        )
    assert worst_pos < POSITION_MM
    assert worst_size < SIZE_REL
    # the spot moves: a linearisation that ignored the currents would fail the bounds above
    moved = linear.predict(i1, i2 + lin.dipole_range_a, quads)
    assert abs(moved.x_timepix_mm - anchor.x_timepix_mm) > 5.0


def test_outside_the_range_the_full_model_answers(plan, monkeypatch):
    monkeypatch.setenv("SCANPLAN_CACHE_DIR", "off")
    tol = CheckTolerances.load()
    linear = predictor_for(plan, tol)
    i1, i2, quads = _point_currents(plan)
    linear.predict(i1, i2, quads, anchor=True)
    far = i2 + 2 * tol.linear_model.dipole_range_a
    before = linear.linear_hits
    got = linear.predict(i1, far, quads)
    assert linear.linear_hits == before
    full = SpotPredictor(
        plan.provenance.settings or None,
        beamline=linear.beamline,
        rel_spread=plan.inputs.bes,
        resolution_a=tol.simulator.cache_resolution_a,
    )
    assert got == full.predict(i1, far, quads)


def test_a_cached_anchor_needs_no_line(plan, tmp_path, monkeypatch):
    monkeypatch.setenv("SCANPLAN_CACHE_DIR", str(tmp_path))
    tol = CheckTolerances.load()
    i1, i2, quads = _point_currents(plan)
    first = predictor_for(plan, tol)
    a = first.predict(i1, i2, quads, anchor=True)
    assert list(tmp_path.glob("spot-linear-*.json"))
    again = predictor_for(plan, tol)  # a new process would start like this
    again.check_settings()
    b = again.predict(i1, i2, quads, anchor=True)
    near = again.predict(i1 + 0.01, i2 - 0.02, quads)
    assert again._bl is None  # no xtrack line was built
    assert b == a
    assert near == first.predict(i1 + 0.01, i2 - 0.02, quads)
