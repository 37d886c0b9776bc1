"""beamline.calibration: data files, facts-file numbers (section 3), inverse properties."""

from __future__ import annotations

import math

import pytest
from fixtures import lattices as lattice_fixtures
from hypothesis import given
from hypothesis import strategies as st

from beamline import calibration as cal
from beamline import names
from beamline.constants import MEV_PER_TESLA_METRE
from beamline.errors import BeamlineInputError

# facts 3 [C]/[M]: the numbers as printed there, typed in independently of the data files
FACTS_NOMINAL = (27.16, 28.446)  # B[G] = a + b I[A]
FACTS_BENDING_POWER = 0.0551318  # p[MeV/c] per G
FACTS_PASSES = {
    "run3_pass1_desc": (72.0, 28.384, "descending"),
    "run3_offres_block": (90.6, 28.260, "descending"),
    "run3_pass2_desc": (192.6, 27.762, "descending"),
    "run3_pass3_asc": (58.8, 28.519, "ascending"),
}
FACTS_QUAD = (0.023767, 0.08372)  # G[T/m] = a + b I[A]


def test_data_files_match_facts() -> None:
    data = cal.dipole_calibrations()
    assert data.bending_power_mev_per_g == FACTS_BENDING_POWER
    nominal = cal.dipole_calibration("DHSTB01", "btf_nominal_v1")
    assert (nominal.offset, nominal.slope) == FACTS_NOMINAL
    for name, (offset, slope, branch) in FACTS_PASSES.items():
        curve = data.calibrations[name]
        assert (curve.offset, curve.slope, curve.branch) == (offset, slope, branch)
        assert curve.field_reference == "hall_probe"
    quad = cal.quadrupole_calibration("Q1")
    assert (quad.offset, quad.slope) == FACTS_QUAD
    scale = cal.energy_scale("padme_run3_v1")
    assert scale.offset_mev == -2.00
    assert scale.fit_rms_mev == 0.07


def test_mean_calibrations_are_means_of_the_pass_fits() -> None:
    desc = cal.dipole_calibrations().calibrations["run3_desc_mean_v1"]
    members = [FACTS_PASSES[n] for n in ("run3_pass1_desc", "run3_offres_block", "run3_pass2_desc")]
    assert desc.offset == pytest.approx(sum(m[0] for m in members) / 3, rel=1e-14)
    assert desc.slope == pytest.approx(sum(m[1] for m in members) / 3, rel=1e-14)
    assert desc.branch == "descending"
    every = cal.dipole_calibrations().calibrations["run3_all_mean_v1"]
    assert every.offset == pytest.approx(sum(m[0] for m in FACTS_PASSES.values()) / 4, rel=1e-14)
    assert every.branch is None


def test_versions_are_carried_in_labels() -> None:
    curve = cal.dipole_calibration("DHSTB01")
    assert curve.label == f"{curve.name}@{cal.dipole_calibrations().version}"
    assert cal.energy_scale().label.startswith("padme_run3_v1@energy-scale-")


def test_backward_compatible_api() -> None:
    # the functions the model uses keep their signatures and meaning
    assert cal.magnet_spec("dhstb01").name == "DHSTB01"
    assert names.DIPOLES == ("DHSTB01", "DHSTB02")
    p = cal.dipole_momentum_mev("DHSTB01", 170.0)
    assert p == pytest.approx(FACTS_BENDING_POWER * (27.16 + 28.446 * 170.0), rel=1e-15)
    assert cal.dipole_current_for_momentum("DHSTB01", p) == pytest.approx(170.0, rel=1e-14)
    assert cal.quad_gradient_tpm("Q3", 22.0) == pytest.approx(0.023767 + 0.08372 * 22.0)


def test_madx_definitions_use_the_same_numbers() -> None:
    text = cal.madx_definitions()
    assert "b_dhstb01_g := 27.16 + 28.446 * i_dhstb01_a;" in text
    assert f"{FACTS_BENDING_POWER!r} * b_dhstb01_g / {MEV_PER_TESLA_METRE!r}" in text
    assert "g_q1_tpm := 0.023767 + 0.08372 * i_q1_a;" in text
    run3 = cal.madx_definitions({"DHSTB01": "run3_pass3_asc"})
    assert "b_dhstb01_g := 58.8 + 28.519 * i_dhstb01_a;" in run3


def test_effective_bending_radius_of_facts() -> None:
    # facts 3: p = 0.0551318 B is an effective B*rho/B of 1.839 m
    brho_per_b_m = FACTS_BENDING_POWER / MEV_PER_TESLA_METRE * 1e4
    assert brho_per_b_m == pytest.approx(1.839, abs=0.0005)


ALL_DIPOLE_CALIBRATIONS = sorted(cal.dipole_calibrations().calibrations)


@pytest.mark.parametrize("name", ALL_DIPOLE_CALIBRATIONS)
@given(current_a=st.floats(min_value=0.0, max_value=400.0))
def test_field_current_round_trip_and_monotonic(name: str, current_a: float) -> None:
    curve = cal.dipole_calibrations().calibrations[name]
    field_g = curve.value(current_a)
    assert curve.current(field_g) == pytest.approx(current_a, abs=1e-9)
    assert curve.value(current_a + 0.01) > field_g
    p = cal.momentum_mev_from_field(field_g)
    assert cal.field_g_from_momentum(p) == pytest.approx(field_g, rel=1e-14)


def test_range_and_extrapolation_flag() -> None:
    curve = cal.dipole_calibration("DHSTB01", "run3_pass1_desc")
    assert curve.check_current(150.0) is False
    with pytest.raises(BeamlineInputError, match=r"130.66..190.132 A.*--extrapolate"):
        curve.check_current(200.0)
    assert curve.check_current(200.0, extrapolate=True) is True
    with pytest.raises(BeamlineInputError, match="finite"):
        curve.check_current(math.nan, extrapolate=True)


def test_supply_range_is_enforced() -> None:
    with pytest.raises(BeamlineInputError, match=r"supply range 0\.\.400 A"):
        cal.magnet_spec("DHSTB01").check_current(401.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cal.magnet_spec("DHSTB03"), "unknown magnet 'DHSTB03'"),
        (lambda: cal.dipole_calibration("DHSTB01", "v99"), "unknown dipole calibration 'v99'"),
        (lambda: cal.dipole_calibration("Q1"), "Q1 is not a dipole"),
        (lambda: cal.energy_scale("run9"), "unknown energy scale 'run9'"),
        (lambda: cal.check_branch("sideways"), "unknown branch 'sideways'"),
    ],
)
def test_bad_names(call, message: str) -> None:
    with pytest.raises(BeamlineInputError, match=message):
        call()


def test_branch_calibrations() -> None:
    assert cal.branch_calibration("DHSTB01", "descending").name == "run3_desc_v2"
    assert cal.branch_calibration("DHSTB01", "ascending").name == "run3_asc_v2"
    assert cal.branch_calibration("DHSTB01", None).name == "run3_unknown_v2"
    assert cal.branch_calibration("DHSTB02", "descending") is None


@pytest.fixture
def private_lattices(tmp_path, monkeypatch):
    """lattices/calibrations of a private copy of lattices/, the caches cleared around it."""
    caches = (cal.dipole_calibrations, cal.quadrupole_calibrations, cal.energy_scales)
    with lattice_fixtures.private_lattices(tmp_path, monkeypatch, caches) as root:
        yield root / "calibrations"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"run3_pass3_asc"]', '"run3_pass9"]', "members must be linear"),
        ('branch = "ascending"', 'branch = "up"', "branch must be one of"),
        ('preferred_branch = "descending"', 'preferred_branch = "x"', "preferred_branch"),
        ("slope_g_per_a = 28.519", "slope_g_per_a = -1.0", "slope must be > 0"),
        ('ascending = "run3_asc_v2"', 'ascending = "nope"', "unknown calibration nope"),
    ],
)
def test_malformed_dipole_data(private_lattices, old: str, new: str, message: str) -> None:
    from beamline.errors import LatticeDataError

    path = private_lattices / "dipoles.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(LatticeDataError, match=message):
        cal.dipole_calibrations()


def test_malformed_scale_data(private_lattices) -> None:
    from beamline.errors import LatticeDataError

    path = private_lattices / "energy_scale.toml"
    path.write_text(
        path.read_text().replace('default_scale = "padme_run3_v1"', 'default_scale = "x"')
    )
    with pytest.raises(LatticeDataError, match="default_scale 'x'"):
        cal.energy_scales()
