"""beamline.hysteresis: branch of each step, expected field offset, sigma, approach recipe."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamline import calibration as cal
from beamline.errors import BeamlineInputError
from beamline.hysteresis import (
    branch_field_offset_g,
    classify_branches,
    hysteresis_history,
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
    assert hist.calibration.startswith("run3_desc_mean_v1@")
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
        [150.0, 151.0, 149.0], previous_current_a=140.0, calibration="run3_pass3_asc"
    )
    assert [s.branch for s in hist.steps] == ["ascending", "ascending", "descending"]
    assert [bool(s.warnings) for s in hist.steps] == [False, False, True]
    assert hist.steps[2].approach_currents_a == (149.0 - parameters().overshoot_a, 149.0)


def test_unknown_first_step_is_flagged() -> None:
    hist = hysteresis_history([170.0])
    assert hist.steps[0].branch is None
    assert "approach side unknown" in hist.steps[0].warnings[0]
    assert hist.steps[0].sigma_field_g == hysteresis_sigma_field_g("DHSTB01", 170.0, None)


@given(current_a=st.floats(min_value=130.7, max_value=190.1))
def test_offsets_follow_the_pass_fits(current_a: float) -> None:
    desc = sum(a + b * current_a for a, b in DESC) / 3
    asc = ASC[0][0] + ASC[0][1] * current_a
    everything = (3 * desc + asc) / 4
    assert branch_field_offset_g("DHSTB01", current_a, "descending") == pytest.approx(
        desc - everything, abs=1e-9
    )
    assert branch_field_offset_g("DHSTB01", current_a, "ascending") == pytest.approx(
        asc - everything, abs=1e-9
    )
    assert branch_field_offset_g("DHSTB01", current_a, None) == 0.0
    known = hysteresis_sigma_field_g("DHSTB01", current_a, "descending")
    unknown = hysteresis_sigma_field_g("DHSTB01", current_a, None)
    assert unknown > known
    assert unknown >= math.hypot(known, abs(desc - asc) / 2) - 1e-9


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
