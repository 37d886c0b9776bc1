"""beamline.energy: current <-> field <-> energy <-> sqrt(s) against facts section 3 and 5."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamline import calibration as cal
from beamline.constants import ELECTRON_MASS_MEV
from beamline.energy import (
    calibrated_energy_range_mev,
    current_for_energy,
    energy_from_current,
    energy_from_field,
)
from beamline.errors import BeamlineInputError

NOMINAL = {"calibration": "btf_nominal_v1", "scale": "none"}


def facts_e_btf_mev(current_a: float) -> float:
    """facts 3: E_BTF(I) = 1.56827918 I + 1.49737969 (numerically the momentum [MeV/c])."""
    return 1.56827918 * current_a + 1.49737969


@pytest.mark.parametrize("current_a", [0.0, 130.7, 179.0, 190.1, 400.0])
def test_nominal_formula_of_facts(current_a: float) -> None:
    est = energy_from_current(current_a, **NOMINAL)
    assert est.magnet_momentum_mev == pytest.approx(facts_e_btf_mev(current_a), abs=1e-5)
    assert est.momentum_mev == pytest.approx(est.magnet_momentum_mev, rel=1e-14)
    assert est.energy_mev == pytest.approx(
        math.hypot(facts_e_btf_mev(current_a), 0.51099895), abs=1e-5
    )
    assert est.field_g == pytest.approx(27.16 + 28.446 * current_a, rel=1e-14)


def test_slope_about_1565_kev_per_amp() -> None:
    # facts 3: slope ~1.565 MeV/A over the scan; both the nominal and the Hall-probe curves
    for kw in (NOMINAL, {}):
        lo = energy_from_current(130.7, **kw).energy_mev
        hi = energy_from_current(190.1, **kw).energy_mev
        assert (hi - lo) / (190.1 - 130.7) == pytest.approx(1.565, rel=0.01)


def test_scan_current_range_covers_206_to_300_mev() -> None:
    # facts 3: 130.7-190.1 A covered 206-300 MeV (on the analysis scale)
    lo, hi = calibrated_energy_range_mev("DHSTB01")
    assert lo == pytest.approx(206.6, abs=1.0)
    assert hi == pytest.approx(300.1, abs=1.0)


def test_three_quarter_mev_step() -> None:
    # facts 3: a 0.75 MeV step ~ 13.6 G ~ 0.48 A
    for kw in (NOMINAL, {"branch": "descending"}, {"branch": "ascending"}):
        a = current_for_energy(280.0, **kw)
        b = current_for_energy(280.75, **kw)
        assert b.field_g - a.field_g == pytest.approx(13.6, abs=0.05)
        assert b.current_a - a.current_a == pytest.approx(0.48, abs=0.01)


def test_scale_offset_and_sqrt_s() -> None:
    raw = energy_from_field(5000.0, scale="none")
    run3 = energy_from_field(5000.0, scale="padme_run3_v1")
    # analysis: E = 0.0551318 B_Hall - 2.00 MeV (E ~ p; differs by m^2/2p < 1 keV)
    assert run3.energy_mev == pytest.approx(0.0551318 * 5000.0 - 2.00, abs=1e-3)
    assert run3.energy_mev == pytest.approx(raw.energy_mev - 2.00, abs=1e-12)
    m = ELECTRON_MASS_MEV
    assert run3.sqrt_s_mev == pytest.approx(math.sqrt(2 * m * m + 2 * m * run3.energy_mev))
    assert run3.momentum_mev == pytest.approx(math.sqrt(run3.energy_mev**2 - m * m))
    assert run3.scale.startswith("padme_run3_v1@") and raw.scale.startswith("none@")


@given(current_a=st.floats(min_value=130.7, max_value=190.1))
def test_current_energy_round_trip_hall(current_a: float) -> None:
    for branch in ("ascending", "descending", None):
        est = energy_from_current(current_a, branch=branch)
        back = current_for_energy(est.energy_mev, branch=branch)
        assert back.current_a == pytest.approx(current_a, abs=1e-9)
        assert back.field_g == pytest.approx(est.field_g, abs=1e-9)
        fld = energy_from_field(est.field_g, calibration=est.calibration.split("@")[0])
        assert fld.energy_mev == pytest.approx(est.energy_mev, abs=1e-9)


@given(current_a=st.floats(min_value=0.0, max_value=400.0))
def test_round_trip_and_monotonic_over_supply_range(current_a: float) -> None:
    est = energy_from_current(current_a, **NOMINAL)
    assert current_for_energy(est.energy_mev, **NOMINAL).current_a == pytest.approx(
        current_a, abs=1e-9
    )
    if current_a < 399.99:
        assert energy_from_current(current_a + 0.01, **NOMINAL).energy_mev > est.energy_mev
        assert energy_from_current(current_a + 0.01, **NOMINAL).sqrt_s_mev > est.sqrt_s_mev


def test_sigma_contributions() -> None:
    known = energy_from_current(175.0, branch="descending")
    unknown = energy_from_current(175.0)
    keys = {
        "calibration_scatter",
        "hysteresis",
        "readback_resolution",
        "absolute_scale",
        "scale_fit_rms",
    }
    assert set(known.sigma_contributions_mev) == keys
    for est in (known, unknown):
        total = math.sqrt(sum(v * v for v in est.sigma_contributions_mev.values()))
        assert est.sigma_energy_mev == pytest.approx(total, rel=1e-12)
    assert (
        unknown.sigma_contributions_mev["hysteresis"] > known.sigma_contributions_mev["hysteresis"]
    )
    # field sigma [G] -> energy: 5 G (known branch) * 0.0551318 MeV/G * p/E
    assert known.sigma_contributions_mev["hysteresis"] == pytest.approx(5.0 * 0.0551318, rel=1e-5)
    assert known.sigma_contributions_mev["absolute_scale"] == cal.energy_scale().sigma_mev
    # a Hall readback measures the field: no calibration scatter, no hysteresis
    fld = energy_from_field(5000.0)
    assert fld.sigma_contributions_mev["hysteresis"] == 0.0
    assert fld.sigma_contributions_mev["calibration_scatter"] == 0.0
    assert fld.sigma_contributions_mev["readback_resolution"] == pytest.approx(
        0.1 / math.sqrt(12) * 0.0551318, rel=1e-5
    )
    assert fld.sigma_sqrt_s_mev == pytest.approx(
        fld.sigma_energy_mev * ELECTRON_MASS_MEV / fld.sqrt_s_mev, rel=1e-12
    )


def test_hysteresis_pass_to_pass_is_055_mev() -> None:
    # facts 3: ~10 G between passes at equal current, ~0.55 MeV
    params = cal.dipole_calibrations().hysteresis
    assert (
        params.pass_to_pass_g * cal.dipole_calibrations().bending_power_mev_per_g
        == pytest.approx(0.55, abs=0.01)
    )


def test_branch_picks_calibration_and_is_recorded() -> None:
    desc = energy_from_current(175.0, branch="descending")
    asc = energy_from_current(175.0, branch="ascending")
    assert desc.calibration.startswith("run3_desc_v2@")
    assert asc.calibration.startswith("run3_asc_v2@")
    assert (desc.branch, asc.branch) == ("descending", "ascending")
    # iron: at equal current the descending branch lies above the ascending one (issue 14)
    assert desc.field_g > asc.field_g and desc.energy_mev > asc.energy_mev
    mismatch = energy_from_current(175.0, branch="ascending", calibration="run3_pass1_desc")
    assert any("not covered" in w for w in mismatch.warnings)


def test_extrapolation_only_with_flag() -> None:
    with pytest.raises(
        BeamlineInputError, match=r"calibrated range 20\d\.\d\d..(29|30)\d\.\d\d MeV"
    ):
        current_for_energy(320.0)
    est = current_for_energy(320.0, extrapolate=True)
    assert est.extrapolated and any("extrapolated" in w for w in est.warnings)
    assert not current_for_energy(280.0).extrapolated
    with pytest.raises(BeamlineInputError, match=r"130\.66\.\.190\.132 A"):
        energy_from_current(120.0)
    with pytest.raises(BeamlineInputError, match="supply range"):
        energy_from_current(401.0, extrapolate=True)
    with pytest.raises(BeamlineInputError, match="supply range"):
        current_for_energy(700.0, extrapolate=True)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: energy_from_current(math.nan), "finite"),
        (lambda: energy_from_field(-3.0), "positive"),
        (lambda: energy_from_current(170.0, magnet="Q1"), "not a dipole"),
        (lambda: energy_from_current(170.0, calibration="btf_nominal_v1"), "hall_probe"),
        (
            lambda: energy_from_current(170.0, magnet="DHSTB02", scale="padme_run3_v1"),
            "no Hall-probe",
        ),
        (lambda: current_for_energy(0.3, **NOMINAL), "rest energy"),
        (
            lambda: current_for_energy(280.0, magnet="DHSTB02", relative_offset=2.0),
            "small fraction",
        ),
        (lambda: energy_from_current(170.0, scale="v0"), "unknown energy scale"),
    ],
)
def test_bad_input(call, message: str) -> None:
    with pytest.raises(BeamlineInputError, match=message):
        call()


def test_dhstb02_relative_offset() -> None:
    base = current_for_energy(282.27, magnet="DHSTB02")
    assert base.scale.startswith("none@") and base.warnings
    low = current_for_energy(282.27, magnet="DHSTB02", relative_offset=-0.006)
    # the setting bends (1 + eps) p; the beam energy stays the requested one
    assert low.energy_mev == base.energy_mev == 282.27
    assert low.magnet_momentum_mev == pytest.approx(base.momentum_mev * (1 - 0.006), rel=1e-12)
    assert low.current_a == pytest.approx(
        (low.magnet_momentum_mev / 0.0551318 - 27.16) / 28.446, rel=1e-12
    )
    assert low.relative_offset == -0.006
