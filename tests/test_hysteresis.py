"""beamline.hysteresis: branch of each step, expected field offset, sigma, approach recipe."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamline import calibration as cal
from beamline.errors import BeamlineInputError
from beamline.hysteresis import (
    PassOffset,
    branch_field_offset_g,
    classify_branches,
    fit_hysteresis_model,
    hysteresis_history,
    hysteresis_model,
    hysteresis_sigma_field_g,
    parameters,
)

# facts 3 per-pass fits B = a + b I [G]
DESC = [(72.0, 28.384), (90.6, 28.260), (192.6, 27.762)]
ASC = [(58.8, 28.519)]


def test_classify_branches() -> None:
    currents = [180.0, 178.5, 177.0, 178.0, 178.0, 176.0]
    assert classify_branches(currents) == [
        None,
        "descending",
        "descending",
        "ascending",
        "ascending",  # no move: keeps the branch it arrived on
        "descending",
    ]
    assert classify_branches(currents, standardised=True)[0] == "descending"
    assert classify_branches(currents, previous_current_a=170.0)[0] == "ascending"


def test_2022_style_scan_descending_then_ascending() -> None:
    # facts 4: descending passes, then an ascending extension
    desc = [190.0 - 1.0 * k for k in range(6)]
    asc = [186.0 + 1.0 * k for k in range(3)]
    hist = hysteresis_history([*desc, *asc], standardised=True)
    assert [s.branch for s in hist.steps] == ["descending"] * 6 + ["ascending"] * 3
    assert hist.calibration.startswith("run3_desc_v2@")
    warned = [i for i, s in enumerate(hist.steps) if s.warnings]
    assert warned == [6, 7, 8]
    assert "covers the descending branch only" in hist.steps[6].warnings[0]
    over = parameters().overshoot_a
    # every ascending step is preceded by an overshoot above it, then approached from above
    for s in hist.steps[6:]:
        assert s.approach_currents_a == (s.current_a + over, s.current_a)
    assert hist.recommended_sequence_a[:6] == tuple(desc)
    assert "standardise DHSTB01" in hist.recommendation
    assert hist.standardisation_current_a == cal.magnet_spec("DHSTB01").current_limits_a[1]


def test_ascending_calibration_warns_on_descending_steps() -> None:
    hist = hysteresis_history(
        [150.0, 151.0, 149.0], previous_current_a=140.0, calibration="run3_asc_v2"
    )
    assert [s.branch for s in hist.steps] == ["ascending", "ascending", "descending"]
    assert [bool(s.warnings) for s in hist.steps] == [False, False, True]
    assert hist.steps[2].approach_currents_a == (149.0 - parameters().overshoot_a, 149.0)


def test_unknown_first_step_is_flagged() -> None:
    hist = hysteresis_history([170.0])
    assert hist.steps[0].branch is None
    assert "approach side unknown" in hist.steps[0].warnings[0]
    assert hist.steps[0].sigma_field_g == hysteresis_sigma_field_g("DHSTB01", 170.0, None)


@given(current_a=st.floats(min_value=130.66, max_value=190.132))
def test_branch_term_follows_iron(current_a: float) -> None:
    """Issue 14: the descending branch lies above the ascending one (iron), at every current,
    and the unknown branch halfway."""
    desc = branch_field_offset_g("DHSTB01", current_a, "descending")
    asc = branch_field_offset_g("DHSTB01", current_a, "ascending")
    assert desc > 0 > asc
    assert desc == pytest.approx(-asc, rel=1e-12)
    assert branch_field_offset_g("DHSTB01", current_a, None) == 0.0
    d_curve = cal.branch_calibration("DHSTB01", "descending")
    a_curve = cal.branch_calibration("DHSTB01", "ascending")
    assert d_curve.value(current_a) > a_curve.value(current_a)
    known = hysteresis_sigma_field_g("DHSTB01", current_a, "descending")
    unknown = hysteresis_sigma_field_g("DHSTB01", current_a, None)
    assert unknown > known


def test_2022_pass_offsets_against_the_issue_numbers() -> None:
    """The four facts-3 pass fits, each over its own sub-range: the offsets from the nominal
    curve grow with time, 33.9 -> 38.8 -> 43.8 -> 45.4 G (issue 14; pass 2 depends most on
    its unpublished sub-range)."""
    model = hysteresis_model()
    offsets = [p.offset_g for p in model.passes]
    for got, quoted in zip(offsets, (33.9, 38.8, 43.8, 45.4), strict=True):
        assert got == pytest.approx(quoted, abs=1.0)
    # the sub-ranges reproduce the scan's ends (issue 14: 130.66-190.132 A)
    assert model.passes[1].current_range_a[0] == pytest.approx(130.66, abs=0.1)
    assert model.passes[3].current_range_a[1] == pytest.approx(190.132, abs=0.1)


def test_2022_fit_against_closed_form() -> None:
    """Three descending passes at cycles 0, 1, 2 and one ascending at 3, equal weights: the
    least-squares drift is the slope of the descending points, (y2 - y0) / 2, and the
    ascending point fixes the branch term exactly: branch = (desc line at 3) - y3."""
    model = hysteresis_model()
    y = [p.offset_g for p in model.passes]
    drift = (y[2] - y[0]) / 2
    line_at_3 = sum(y[:3]) / 3 + drift * (3 - 1)
    assert model.drift_g_per_cycle == pytest.approx(drift, rel=1e-9)
    assert model.branch_fit_g == pytest.approx(line_at_3 - y[3], rel=1e-9)
    assert model.dof == 1
    assert model.branch_g > 0 and "agrees with iron" in model.branch_rule
    # sigma of a difference of a 3-point line extrapolated to x = 3 and one point (sigma s):
    s = 1.27
    var_line = s**2 / 3 + (2 * 2) ** 2 * s**2 / 2 / 4  # mean + slope * 2, slope var s^2/2
    assert model.branch_sigma_g == pytest.approx(math.sqrt(var_line + s**2), rel=1e-9)


def test_fit_recovers_known_terms_and_applies_the_sign_rule() -> None:
    def synth(base: float, drift: float, branch: float) -> list[PassOffset]:
        rows = [("descending", 0.0), ("descending", 1.0), ("ascending", 2.0), ("descending", 3.0)]
        return [
            PassOffset(
                f"p{i}",
                b,
                c,
                (150.0, 160.0),
                base + drift * c + (0.5 if b == "descending" else -0.5) * branch,
            )
            for i, (b, c) in enumerate(rows)
        ]

    fit = fit_hysteresis_model(synth(30.0, 4.0, 6.0), sigma_g=1.0)
    assert (fit.base_g, fit.drift_g_per_cycle, fit.branch_g) == pytest.approx((30.0, 4.0, 6.0))
    strong = fit_hysteresis_model(synth(30.0, 4.0, -20.0), sigma_g=1.0)
    assert strong.branch_g == pytest.approx(-20.0) and "contradicts iron" in strong.branch_rule
    weak = fit_hysteresis_model(synth(30.0, 4.0, -1.0), sigma_g=1.0)
    assert weak.branch_g == 0.0 and weak.branch_fit_g == pytest.approx(-1.0)
    with pytest.raises(BeamlineInputError, match="both branches"):
        fit_hysteresis_model([o for o in synth(0, 0, 0) if o.branch == "descending"], sigma_g=1)


def test_dipoles_v2_curves_are_the_model_at_the_reference_cycle() -> None:
    """dipoles.toml holds the fit's numbers (rounded to 1 mG): regenerate them with the data."""
    model = hysteresis_model()
    nominal = cal.dipole_calibration("DHSTB01", "btf_nominal_v1")
    for branch in ("descending", "ascending", None):
        curve = cal.branch_calibration("DHSTB01", branch)
        expect = nominal.offset + model.offset_g(branch, model.reference_cycle)
        assert curve.offset == pytest.approx(expect, abs=1e-3)
        assert curve.slope == nominal.slope


def test_history_reports_branch_and_drift_separately() -> None:
    """Issue 14 example 180, 179, 180 A: the descending step above the ascending one; a
    long sweep and a reversal add one cycle of drift."""
    model = hysteresis_model()
    short = hysteresis_history([180.0, 179.0, 180.0])
    assert short.steps[1].branch_offset_g > short.steps[2].branch_offset_g
    assert short.steps[2].drift_offset_g == 0.0  # 1 A is no pass
    long = hysteresis_history([190.0, 180.0, 170.0, 180.0])
    step = long.steps[3]
    assert step.cycle == 1
    assert step.drift_offset_g == pytest.approx(model.drift_g_per_cycle)
    assert step.field_offset_g == pytest.approx(step.branch_offset_g + step.drift_offset_g)


def test_parameters_against_facts() -> None:
    p = parameters()
    # facts 3: about 10 G between passes at equal current; the descending fits at the
    # on-resonance currents differ by that order
    spread = [
        max(a + b * i for a, b in DESC[::2]) - min(a + b * i for a, b in DESC[::2])
        for i in (175.0, 185.0)
    ]
    assert all(3.0 < s < 20.0 for s in spread)
    assert p.pass_to_pass_g == 10.0
    assert p.sigma_known_branch_g < p.sigma_unknown_branch_g
    assert p.preferred_branch == "descending"


def test_dhstb02_has_no_branch_data() -> None:
    assert branch_field_offset_g("DHSTB02", 170.0, "descending") == 0.0
    assert hysteresis_sigma_field_g("DHSTB02", 170.0, None) == parameters().sigma_unknown_branch_g
    hist = hysteresis_history([170.0, 169.0], magnet="DHSTB02", standardised=True)
    assert hist.calibration.startswith("btf_nominal_v1@")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"currents_a": []}, "at least one"),
        ({"currents_a": [170.0, 500.0]}, "supply range"),
        ({"currents_a": [math.nan]}, "finite"),
        ({"currents_a": [170.0], "magnet": "Q2"}, "not a dipole"),
        ({"currents_a": [170.0], "calibration": "nope"}, "unknown dipole calibration"),
    ],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(BeamlineInputError, match=message):
        hysteresis_history(**kwargs)
