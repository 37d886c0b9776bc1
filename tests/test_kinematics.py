"""beamline.kinematics against the facts-file numbers (section 5) and closed-form identities."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamline.constants import ELECTRON_MASS_MEV
from beamline.errors import BeamlineInputError
from beamline.kinematics import (
    dsqrt_s_de_beam,
    e_beam_for_sqrt_s_mev,
    resonance_energy_mev,
    sqrt_s_mev,
)


def test_resonance_energy_of_17_mev_matches_facts() -> None:
    # facts 5: M = 17.0 MeV -> E_res = 282.27 MeV
    assert resonance_energy_mev(17.0) == pytest.approx(282.27, abs=0.005)


def test_run3_range_in_sqrt_s_matches_facts() -> None:
    # facts 4: E_beam 262.2-300.1 MeV is sqrt(s) 16.39-17.53 MeV
    assert sqrt_s_mev(262.2) == pytest.approx(16.39, abs=0.005)
    assert sqrt_s_mev(300.1) == pytest.approx(17.53, abs=0.005)


def test_one_mev_of_beam_energy_is_about_30_kev_of_sqrt_s() -> None:
    # facts 5: 1 MeV of E_beam ~ 30 keV of sqrt(s)
    assert sqrt_s_mev(283.0) - sqrt_s_mev(282.0) == pytest.approx(0.030, abs=0.001)
    assert dsqrt_s_de_beam(resonance_energy_mev(17.0)) == pytest.approx(
        ELECTRON_MASS_MEV / 17.0, rel=1e-12
    )


def test_excess_near_16_90_mev() -> None:
    # facts 5: M = 16.88 MeV is the combination; invariant mass of the pair must come back
    e = resonance_energy_mev(16.88)
    p = math.sqrt(e * e - ELECTRON_MASS_MEV**2)
    s = (e + ELECTRON_MASS_MEV) ** 2 - p * p  # four-vector definition, independent formula
    assert math.sqrt(s) == pytest.approx(16.88, rel=1e-12)


@given(st.floats(min_value=1.0, max_value=1000.0))
def test_round_trip(e_beam_mev: float) -> None:
    assert e_beam_for_sqrt_s_mev(sqrt_s_mev(e_beam_mev)) == pytest.approx(e_beam_mev, rel=1e-12)


@pytest.mark.parametrize("bad", [0.1, math.nan, math.inf, -5.0])
def test_bad_beam_energy(bad: float) -> None:
    with pytest.raises(BeamlineInputError):
        sqrt_s_mev(bad)


@pytest.mark.parametrize("bad", [0.5, math.nan])
def test_bad_sqrt_s(bad: float) -> None:
    with pytest.raises(BeamlineInputError, match="sqrt"):
        e_beam_for_sqrt_s_mev(bad)
