"""Bad input to the model: clear errors that say what is allowed, state left unchanged."""

from __future__ import annotations

import pytest
from fixtures.lattices import private_lattices, replace_in_file

from beamline import calibration, lattice
from beamline.errors import BeamlineInputError, LatticeDataError
from beamline.model import BeamLine


def test_out_of_limit_current_is_refused_and_nothing_changes(run3_line):
    before = run3_line.current_a("DHSTB01")
    with pytest.raises(
        BeamlineInputError, match=r"DHSTB01 current 1000 A is outside the supply range 0\.\.400 A"
    ):
        run3_line.set_current("DHSTB01", 1000.0)
    with pytest.raises(BeamlineInputError, match="outside the supply range"):
        run3_line.set_current("Q2", -3.0)
    assert run3_line.current_a("DHSTB01") == before


def test_set_currents_checks_all_before_applying(run3_line):
    before = run3_line.currents_a()
    with pytest.raises(BeamlineInputError):
        run3_line.set_currents({"Q1": 10.0, "DHSTB02": -1.0})
    assert run3_line.currents_a() == before


def test_unknown_magnet_slit_element(run3_line):
    with pytest.raises(BeamlineInputError, match=r"unknown magnet 'Q9'.*DHSTB01"):
        run3_line.set_current("Q9", 1.0)
    with pytest.raises(BeamlineInputError, match=r"unknown slit 'SLTB7'.*SLTB2"):
        run3_line.set_gap("SLTB7", 1.0)
    with pytest.raises(BeamlineInputError, match="unknown element 'nowhere'"):
        run3_line.check_element("nowhere")


@pytest.mark.parametrize("gap_mm", [0.0, -1.0, 60.0, float("nan")])
def test_bad_gaps(run3_line, gap_mm):
    before = run3_line.gap_mm("SLTB4")
    with pytest.raises(BeamlineInputError, match="SLTB4 gap"):
        run3_line.set_gap("SLTB4", gap_mm)
    assert run3_line.gap_mm("SLTB4") == before


def test_independent_jaws_set_gap_and_centre(run3_line):
    run3_line.set_jaws("SLTB4", -0.5, 1.5)
    assert run3_line.gap_mm("SLTB4") == pytest.approx(2.0)
    assert run3_line.center_mm("SLTB4") == pytest.approx(0.5)
    aper = run3_line.line["sltb4_aper"]
    assert aper.min_x + aper.shift_x == pytest.approx(-0.5e-3)
    assert aper.max_x + aper.shift_x == pytest.approx(1.5e-3)
    run3_line.set_gap("SLTB4", 1.9, 0.0)


def test_energy_outside_range():
    with pytest.raises(BeamlineInputError, match="outside the line's range"):
        BeamLine("run3_2022", 5.0)


@pytest.fixture
def lattices_copy(tmp_path, monkeypatch):
    """Root of a private copy of lattices/, the line and settings caches cleared around it."""
    caches = (lattice.load_settings, lattice.line_spec)
    with private_lattices(tmp_path, monkeypatch, caches) as root:
        yield root


def test_malformed_settings_file(lattices_copy):
    strength = lattices_copy / "btf_padme" / "settings" / "run3_2022.str"
    replace_in_file(strength, "i_q1_a = 20.8700;", "i_q1_a = twenty;")
    with pytest.raises(LatticeDataError, match=r"i_q1_a.*plain number"):
        BeamLine("run3_2022")


def test_frozen_dipole_strength_is_refused(lattices_copy):
    """A lattice whose DHSTB01 k0 is a number would follow geometry, not current."""
    seq = lattices_copy / "btf_padme" / "btf_padme.seq"
    replace_in_file(seq, "k0:=brho_dhstb01_tm/(brho_tm*rho_dip_m)", "k0=0.58")
    with pytest.raises(LatticeDataError, match=r"dhstb01.*frozen k0"):
        BeamLine("run3_2022")


def test_settings_currents_match_the_model():
    """The .str currents read by beamline.lattice equal what xtrack's MAD-X parser loaded."""
    currents = lattice.settings_currents_a("run3_2022")
    bl = BeamLine("run3_2022")  # dipoles as in the file, not matched
    assert set(currents) == set(bl.currents_a())
    for magnet, value in currents.items():
        assert bl.current_a(magnet) == value
    # facts 1, Run III column: Q1 at 1.771 T/m
    assert calibration.quad_gradient_tpm("Q1", currents["Q1"]) == pytest.approx(1.771, abs=5e-4)
