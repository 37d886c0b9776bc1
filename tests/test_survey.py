"""Survey of the line: total bend π/2, PADME axis after DHSTB02, facts-file layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline import optics

# facts file §1: s [m] from the DHSTB01 arc entrance (centres for slits and quads)
FACTS_S_M = {
    "tgttb01": -2.712,
    "sltb2": -0.342,
    "mylar_window": 2.411,
    "sltb3": 2.735,
    "sltb4": 2.945,
    "q1": 3.859,
    "q2": 4.959,
    "q3": 10.294,
    "q4": 11.194,
    "sltb5": 11.63,
    "padme_target": 13.885,
    "ecal": 17.5,
    "timepix": 17.89,
}
FACTS_RANGES_M = {"dhstb01": (0.0, 1.3532), "dhstb02": (11.925, 13.278)}


@pytest.fixture(scope="module")
def survey(run3_line):
    return optics.survey(run3_line).drop_duplicates("name", keep="first").set_index("name")


def test_total_bend_is_quarter_turn_same_direction(survey):
    theta_end = survey.loc["_end_point", "theta_rad"]
    assert abs(theta_end) == pytest.approx(math.pi / 2, abs=1e-12)
    # both dipoles bend the same way: 45° after DHSTB01, 90° after DHSTB02
    assert survey.loc["dhstb01_exit", "theta_rad"] == pytest.approx(theta_end / 2, abs=1e-12)


def test_padme_axis_is_the_straight_after_dhstb02(survey):
    """DHSTB02 exit, PADME target and TimePix lie on one line along the final direction."""
    pts = survey.loc[["dhstb02_exit", "padme_target", "timepix"], ["X_m", "Z_m"]].to_numpy()
    theta = survey.loc["dhstb02_exit", "theta_rad"]
    direction = np.array([math.sin(theta), math.cos(theta)])
    for p in pts[1:]:
        d = p - pts[0]
        cross = d[0] * direction[1] - d[1] * direction[0]
        assert abs(cross) < 1e-12
        assert np.dot(d, direction) > 0


def _element_centre_s(line_bl, survey, name: str) -> float:
    s_entry = survey.loc[name, "s_m"]
    return s_entry + getattr(line_bl.line[name], "length", 0.0) / 2


@pytest.mark.parametrize("name", sorted(FACTS_S_M))
def test_positions_follow_the_facts_layout(run3_line, survey, name):
    assert _element_centre_s(run3_line, survey, name) == pytest.approx(FACTS_S_M[name], abs=5e-4)


@pytest.mark.parametrize("name", sorted(FACTS_RANGES_M))
def test_dipole_extents_follow_the_facts_layout(run3_line, survey, name):
    start, end = FACTS_RANGES_M[name]
    s0 = survey.loc[name, "s_m"]
    assert s0 == pytest.approx(start, abs=1e-3)
    assert s0 + run3_line.line[name].length == pytest.approx(end, abs=1e-3)


def test_floor_distance_between_dipoles_matches_path_length(run3_line, survey):
    """Between the dipoles the line is straight: floor distance equals path length."""
    a, b = survey.loc["dhstb01_exit"], survey.loc["dhstb02"]
    floor = math.hypot(b.X_m - a.X_m, b.Z_m - a.Z_m)
    assert floor == pytest.approx(b.s_m - a.s_m, rel=1e-12)
    assert b.s_m - a.s_m == pytest.approx(11.925 - 1.3532, abs=1e-3)
