"""Planner: 2022 reproduction, passes and hysteresis branches, controls, currents against the
facts-file calibrations, beam time and calendar, validation of broken plans."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanplan.errors import ScanplanError
from scanplan.planning import PlanRequest, plan_calendar, plan_scan, validate_plan
from scanplan.records import load_plan, save_plan

M_E = 0.51099895
#: facts 4: the 2022 scan
RANGE_2022 = (262.2, 300.1)
CONTROL_2022 = (206.6, 208.1, 209.6, 211.2, 212.7)


def _on(plan):
    return [p for p in plan.points if p.kind == "on_resonance"]


@pytest.fixture(scope="module")
def plan_2022():
    """2022 conditions: BES 0.25 %, the line shape the 2022 spacing rule referred to (beam
    spread only, w_L = 0), half-width spacing, two descending passes, controls below."""
    req = PlanRequest(
        energy_range_mev=RANGE_2022,
        lorentz_width_mev=0.0,
        spacing_rule="published",  # the 2022 half-width rule (issue 13 default is robust)
        bes=0.0025,
        extrapolate=True,  # 300.1 MeV is just past the trusted range of the mean calibration
        control_energies_mev=CONTROL_2022,
    )
    return plan_scan(req)


def test_2022_range_gives_about_the_2022_points_and_spacing(plan_2022) -> None:
    on = sorted(_on(plan_2022), key=lambda p: p.e_beam_mev)
    # facts 4: 47 on-resonance points, ~0.75 MeV combined, ~1.5 MeV per pass, 5 controls
    assert 45 <= len(on) <= 53
    gaps = [b.e_beam_mev - a.e_beam_mev for a, b in pairwise(on)]
    assert 0.70 <= min(gaps) and max(gaps) <= 0.85
    assert on[0].e_beam_mev == pytest.approx(262.2) and on[-1].e_beam_mev == pytest.approx(300.1)
    coarse = sorted(p.e_beam_mev for p in on if p.pass_index == 0)
    assert all(1.4 <= b - a <= 1.7 for a, b in pairwise(coarse))
    ctl = [p for p in plan_2022.points if p.kind == "control"]
    assert sorted(p.e_beam_mev for p in ctl) == pytest.approx(sorted(CONTROL_2022))
    # the spacing rule: below half the FWHM (2.3548 sigma) of the Gaussian line everywhere
    for a, b in pairwise(on):
        assert b.e_beam_mev - a.e_beam_mev <= 0.5 * 2.3548 * 0.0025 * a.e_beam_mev
    assert [p.period for p in plan_2022.points] == list(range(len(plan_2022.points)))
    # sqrt(s) of every point from the facts formula
    for p in plan_2022.points:
        assert p.sqrt_s_mev == pytest.approx(
            math.sqrt(2 * M_E**2 + 2 * M_E * p.e_beam_mev), rel=1e-7
        )


def test_passes_are_monotone_descending_and_interleaved_half_way(plan_2022) -> None:
    by_pass: dict[int, list] = {}
    for p in sorted(plan_2022.points, key=lambda q: q.period):
        by_pass.setdefault(p.pass_index, []).append(p)
    for members in by_pass.values():
        currents = [p.dhstb01_current_a for p in members]
        assert all(b < a for a, b in pairwise(currents))
        assert {p.branch for p in members} == {"descending"}
    coarse = sorted(p.e_beam_mev for p in by_pass[0])
    fine = sorted(p.e_beam_mev for p in by_pass[1])
    for e in fine:
        lower = max(c for c in coarse if c < e)
        upper = min(c for c in coarse if c > e)
        assert e == pytest.approx(0.5 * (lower + upper), abs=1e-9)
    # 2022 order: pass 0, the off-resonance block, pass 1
    kinds = [p.kind for p in sorted(plan_2022.points, key=lambda q: q.period)]
    n0 = len(by_pass[0])
    assert kinds[n0 : n0 + 5] == ["control"] * 5
    assert not validate_plan(plan_2022) or all(
        x.level == "warning" for x in validate_plan(plan_2022)
    )


def test_currents_follow_the_facts_calibration(plan_2022) -> None:
    # facts 3: descending Hall-probe branch (the pass fits re-done with branch and drift
    # terms, tested in test_hysteresis: nominal slope 28.446 G/A); E = 0.0551318 B - 2.00 MeV
    from beamline import calibration as cal

    desc = cal.branch_calibration("DHSTB01", "descending")
    offset, slope = desc.offset, desc.slope
    assert slope == 28.446
    for p in plan_2022.points:
        b_g = offset + slope * p.dhstb01_current_a
        p_mev = 0.0551318 * b_g
        e = math.sqrt(p_mev**2 + M_E**2) - 2.00
        assert e == pytest.approx(p.e_beam_mev, abs=1e-6)
        assert p.calibration.startswith("run3_desc_v2@")
        # DHSTB02: BTF nominal excitation E = 1.56827918 I + 1.49737969 (facts 3, E ~ p here)
        assert 1.56827918 * p.dhstb02_current_a + 1.49737969 == pytest.approx(
            p.e_beam_mev, abs=0.01
        )
        # slits of Run III (facts 1)
        assert (p.sltb2_mm, p.sltb3_mm, p.sltb4_mm, p.sltb5_mm) == (1.74, 4.2, 1.9, 5.0)
        # quads: gradient scaled with momentum from the Run III gradients at 282.5 MeV
        ratio = math.sqrt(p.e_beam_mev**2 - M_E**2) / math.sqrt(282.5**2 - M_E**2)
        for current, g_ref in ((p.q1_current_a, 1.771), (p.q4_current_a, 2.112)):
            assert 0.08372 * current + 0.023767 == pytest.approx(g_ref * ratio, rel=1e-4)


def test_beam_time_from_intensity_and_budget() -> None:
    # facts 1/4: 2.5e3 e+/bunch, 49 Hz; 2022 mean 7.6e9 POT per point in 20-25 h
    p = plan_scan(PlanRequest(mass_range_mev=(16.8, 17.0), control="none"))
    assert 20 <= p.points[0].hours <= 25
    assert p.points[0].target_pot == pytest.approx(7.6e9)
    req = PlanRequest(
        mass_range_mev=(16.8, 17.0),
        control="none",
        budget_hours=300.0,
        positrons_per_bunch=3e3,
        repetition_rate_hz=50.0,
        uptime_fraction=0.9,
        overhead_hours_per_point=1.0,
        start_utc="2026-03-01T08:00:00Z",
    )
    b = plan_scan(req)
    n = len(b.points)
    beam_h = 300.0 / n - 1.0
    for pt in b.points:
        assert pt.hours == pytest.approx(beam_h)
        assert pt.target_pot == pytest.approx(beam_h * 3e3 * 50.0 * 0.9 * 3600)
    cal = plan_calendar(b)
    assert cal[-1].beam_end_h == pytest.approx(300.0)
    assert cal[0].start_utc == "2026-03-01T09:00:00Z"  # after the 1 h changeover
    with pytest.raises(ScanplanError, match="too small"):
        plan_scan(PlanRequest(mass_range_mev=(16.8, 17.0), control="none", budget_hours=2.0))
    with pytest.raises(ScanplanError, match="not both"):
        plan_scan(PlanRequest(mass_range_mev=(16.8, 17.0), budget_hours=100.0, pot_per_point=1e9))


def test_default_plan_uses_the_voigt_width_and_ascending_option() -> None:
    # the published half-width rule (the default is the robust rule of issue 13)
    p = plan_scan(PlanRequest(mass_range_mev=(16.4, 17.5), spacing_rule="published"))
    on = sorted(_on(p), key=lambda q: q.e_beam_mev)
    # Voigt FWHM at the low end (Olivero): sigma = 0.0025 x 262.66, gamma 1.72
    fg, fl = 2.3548 * 0.0025 * on[0].e_beam_mev, 3.44
    fwhm = 0.5346 * fl + math.sqrt(0.2166 * fl * fl + fg * fg)
    gaps = [b.e_beam_mev - a.e_beam_mev for a, b in pairwise(on)]
    assert max(gaps) <= 0.5 * fwhm * 1.001
    assert max(gaps) > 0.45 * fwhm
    assert on[0].sqrt_s_mev == pytest.approx(16.4) and on[-1].sqrt_s_mev == pytest.approx(17.5)
    ctl = [q for q in p.points if q.kind == "control"]
    assert len(ctl) == 5 and all(q.e_beam_mev < on[0].e_beam_mev - 20 for q in ctl)
    up = plan_scan(
        PlanRequest(sqrt_s_range_mev=(16.8, 17.0), direction="ascending", control="none", passes=3)
    )
    for k in range(3):
        cur = [
            q.dhstb01_current_a
            for q in sorted(up.points, key=lambda q: q.period)
            if q.pass_index == k
        ]
        assert all(b > a for a, b in pairwise(cur))
    assert {q.branch for q in up.points} == {"ascending"}
    assert not [x for x in validate_plan(up) if x.level == "error"]


def test_control_points_above_need_a_deliverable_energy() -> None:
    req = PlanRequest(energy_range_mev=(264.0, 290.0), control="above")
    with pytest.raises(Exception, match="extrapolat"):
        plan_scan(req)  # 300+ MeV lies outside the 2022 calibrations
    p = plan_scan(PlanRequest(energy_range_mev=(264.0, 290.0), control="above", extrapolate=True))
    ctl = [q for q in p.points if q.kind == "control"]
    assert [round(q.e_beam_mev, 6) for q in ctl] == [325.0, 300.0]  # 2025-like: +10 and +35 MeV
    with pytest.raises(ScanplanError, match="line FWHM"):
        plan_scan(PlanRequest(energy_range_mev=(264.0, 290.0), control_energies_mev=(262.0,)))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(energy_range_mev=(10.0, 20.0)), "outside what the line delivers"),
        (dict(mass_range_mev=(17.5, 16.4)), "high end below"),
        (dict(mass_range_mev=(16.4, 17.5), energy_range_mev=(270.0, 280.0)), "exactly one"),
        (dict(mass_range_mev=(16.4, 17.5), step_mev=5.0), "exceeds the spacing rule"),
        (dict(mass_range_mev=(16.4, 17.5), passes=0), "passes"),
        (dict(mass_range_mev=(16.4, 17.5), control="left"), "control"),
        (dict(mass_range_mev=(16.4, 17.5), start_utc="yesterday"), "ISO"),
    ],
)
def test_bad_requests_give_clear_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ScanplanError, match=fragment):
        plan_scan(PlanRequest(**kwargs))


def test_calibration_range_is_enforced_without_extrapolate() -> None:
    # issue 14: the 2022 range lies inside the data the calibration was fitted on ...
    assert plan_scan(PlanRequest(energy_range_mev=RANGE_2022, control="none")).points
    # ... 310 MeV does not
    with pytest.raises(Exception, match="extrapolat"):
        plan_scan(PlanRequest(energy_range_mev=(262.2, 310.0), control="none"))


def test_validation_finds_broken_plans(plan_2022, tmp_path) -> None:
    pts = sorted(plan_2022.points, key=lambda p: p.period)
    # swap two currents inside pass 0: hysteresis
    a, b = pts[3], pts[4]
    swapped = [*pts[:3], a.model_copy(update={"dhstb01_current_a": b.dhstb01_current_a}),
               b.model_copy(update={"dhstb01_current_a": a.dhstb01_current_a}), *pts[5:]]  # fmt: skip
    checks = {
        x.check
        for x in validate_plan(plan_2022.model_copy(update={"points": swapped}))
        if x.level == "error"
    }
    assert "hysteresis" in checks
    # duplicate energy
    dup = [*pts, pts[10].model_copy(update={"period": len(pts), "pass_index": 9})]
    checks = {
        x.check
        for x in validate_plan(plan_2022.model_copy(update={"points": dup}))
        if x.level == "error"
    }
    assert "duplicates" in checks
    # a missing point breaks the spacing rule and the period numbering
    gap = [p for p in pts if p.period != 40]
    checks = {
        x.check
        for x in validate_plan(plan_2022.model_copy(update={"points": gap}))
        if x.level == "error"
    }
    assert {"spacing", "periods"} <= checks
    # supply limit
    hot = [pts[0].model_copy(update={"q1_current_a": 500.0}), *pts[1:]]
    checks = {
        x.check
        for x in validate_plan(plan_2022.model_copy(update={"points": hot}))
        if x.level == "error"
    }
    assert "currents" in checks
    # round trip through the file keeps it valid; editing breaks the hash
    path = save_plan(plan_2022, tmp_path / "p.json")
    again = load_plan(path)
    assert again.points == plan_2022.points
    path.write_text(
        path.read_text().replace('"target_pot": 7600000000.0', '"target_pot": 7700000000.0', 1)
    )
    with pytest.raises(ScanplanError, match="modified"):
        load_plan(path)


def test_bes_from_the_spread_engine_drives_the_spacing() -> None:
    p = plan_scan(
        PlanRequest(
            mass_range_mev=(16.6, 17.2),
            control="none",
            bes_from_spread=True,
            spread_particles=20_000,
            spread_scheduler="sync",
        )
    )
    info = p.inputs.spread_engine
    assert info is not None
    assert p.inputs.bes_source == "spread_engine" and len(info.energies_mev) == 3
    on = sorted(p.points, key=lambda q: q.e_beam_mev)
    assert on[0].rel_spread == pytest.approx(info.rel_spread_rms[0])
    assert on[-1].rel_spread == pytest.approx(info.rel_spread_rms[-1])
    # spacing from the Voigt FWHM (Olivero) with the engine's spread at the low end
    fg = 2.3548 * on[0].rel_spread * on[0].e_beam_mev
    fwhm = 0.5346 * 3.44 + math.sqrt(0.2166 * 3.44**2 + fg * fg)
    gaps = [b.e_beam_mev - a.e_beam_mev for a, b in pairwise(on)]
    assert max(gaps) <= 0.5 * fwhm * 1.001
    with pytest.raises(ScanplanError, match="not both"):
        plan_scan(PlanRequest(mass_range_mev=(16.6, 17.2), bes=0.002, bes_from_spread=True))


def test_dhstb02_offset_and_fixed_quads() -> None:
    base = plan_scan(PlanRequest(mass_range_mev=(16.8, 17.0), control="none"))
    low = plan_scan(
        PlanRequest(
            mass_range_mev=(16.8, 17.0),
            control="none",
            dhstb02_relative_offset=-0.005,
            quad_scaling="fixed",
        )
    )
    for a, b in zip(base.points, low.points, strict=True):
        # facts 3 nominal excitation: B = 27.16 + 28.446 I, p = 0.0551318 B
        pa = 0.0551318 * (27.16 + 28.446 * a.dhstb02_current_a)
        pb = 0.0551318 * (27.16 + 28.446 * b.dhstb02_current_a)
        assert pb / pa == pytest.approx(0.995, rel=1e-9)
        assert b.dhstb01_current_a == pytest.approx(a.dhstb01_current_a)
        # fixed quads: the Run III currents of the settings file
        assert b.q1_current_a == pytest.approx((1.771 - 0.023767) / 0.08372, abs=1e-3)


def test_width_at_the_centre_gives_the_47_points_of_2022() -> None:
    # facts 4: 47 on-resonance points over 262.2-300.1 MeV; half the Gaussian FWHM at the
    # centre of the range (2.3548 x 0.0025 x 281.15 / 2 = 0.83 MeV) allows 46 gaps
    p = plan_scan(
        PlanRequest(
            energy_range_mev=RANGE_2022,
            lorentz_width_mev=0.0,
            extrapolate=True,
            control="none",
            width_reference="centre",
            spacing_rule="published",
        )
    )
    half_width = 0.5 * 2.3548 * 0.0025 * 0.5 * sum(RANGE_2022)
    assert len(p.points) == math.ceil((RANGE_2022[1] - RANGE_2022[0]) / half_width) + 1 == 47
    assert not [x for x in validate_plan(p) if x.level == "error"]


@settings(max_examples=25, deadline=None)
@given(
    lo=st.floats(16.2, 16.9),
    span=st.floats(0.0, 0.6),
    fraction=st.floats(0.2, 0.6),
    passes=st.integers(1, 4),
    direction=st.sampled_from(["descending", "ascending"]),
    bes=st.floats(0.0005, 0.005),
)
def test_any_deliverable_request_gives_a_valid_plan(
    lo, span, fraction, passes, direction, bes
) -> None:
    req = PlanRequest(
        mass_range_mev=(lo, lo + span),
        step_fraction=fraction,
        passes=passes,
        direction=direction,
        bes=bes,
        control="none",
    )
    plan = plan_scan(req)
    assert not [x for x in validate_plan(plan) if x.level == "error"]
    e = sorted(p.e_beam_mev for p in plan.points)
    res = [(m * m - 2 * M_E**2) / (2 * M_E) for m in (lo, lo + span)]
    if res[1] - res[0] <= 0.05:  # narrower than the duplicate tolerance: one central point
        assert e == pytest.approx([0.5 * (res[0] + res[1])])
    else:
        assert e[0] == pytest.approx(res[0], abs=1e-6) and e[-1] == pytest.approx(res[1], abs=1e-6)
    assert {p.pass_index for p in plan.points} == set(range(min(passes, len(e))))
