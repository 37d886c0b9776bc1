"""Every data file beamline reads is validated by its model: a misspelt or unknown key is an
error naming the file and the key, and a missing key is too (no default in code)."""

from __future__ import annotations

import re

import pytest
from fixtures.lattices import private_lattices, replace_in_file

from beamline import beam, calibration, lattice
from beamline.errors import LatticeDataError

LOADERS = (
    lattice.line_spec,
    lattice.load_settings,
    beam.load_beam_file,
    calibration.dipole_calibrations,
    calibration.quadrupole_calibrations,
    calibration.energy_scales,
)


@pytest.fixture
def lattices_copy(tmp_path, monkeypatch):
    with private_lattices(tmp_path, monkeypatch, LOADERS) as root:
        yield root


# (file below lattices/, text in the file, misspelling, loader, dotted key as reported)
MISSPELT = [
    (
        "btf_padme/line.toml",
        "max_gap_mm = 32.0",
        "max_gap = 32.0",
        lattice.line_spec,
        "slits.sltb3.max_gap",
    ),
    (
        "btf_padme/settings/run3_2022.toml",
        "reference_energy_mev = 282.5",
        "reference_energy = 282.5",
        lambda: lattice.load_settings("run3_2022"),
        "reference_energy",
    ),
    (
        "btf_padme/beams/linac_positron_run3.toml",
        "thickness_m = 125e-6",
        "thicknes_m = 125e-6",
        lambda: beam.load_beam_file("linac_positron_run3"),
        "scattering.layers.0.thicknes_m",
    ),
    (
        "btf_padme/beams/linac_positron_run3.toml",
        "sigma_delta = 0.01",
        "sigma_delt = 0.01",
        lambda: beam.load_beam("linac_positron_run3"),
        "sigma_delt",
    ),
    (
        "calibrations/dipoles.toml",
        "overshoot_a = 5.0",
        "overshot_a = 5.0",
        calibration.dipole_calibrations,
        "hysteresis.overshot_a",
    ),
    (
        "calibrations/dipoles.toml",
        "offset_g = 72.0",
        "ofset_g = 72.0",
        calibration.dipole_calibrations,
        "calibrations.run3_pass1_desc.linear.ofset_g",
    ),
    (
        "calibrations/dipoles.toml",
        'supply_element = "DHSTB002"',
        'supply_elemnt = "DHSTB002"',
        calibration.dipole_calibrations,
        "magnets.DHSTB02.supply_elemnt",
    ),
    (
        "calibrations/quadrupoles.toml",
        "slope_tpm_per_a = 0.08372",
        "slope_tpm_a = 0.08372",
        calibration.quadrupole_calibrations,
        "calibrations.dafne_tl_type_a_v1.slope_tpm_a",
    ),
    (
        "calibrations/energy_scale.toml",
        "fit_rms_mev = 0.07",
        "fit_rms = 0.07",
        calibration.energy_scales,
        "scales.padme_run3_v1.fit_rms",
    ),
]


@pytest.mark.parametrize(("rel", "old", "new", "load", "key"), MISSPELT)
def test_misspelt_key_names_file_and_key(lattices_copy, rel, old, new, load, key):
    path = lattices_copy / rel
    replace_in_file(path, old, new)
    with pytest.raises(LatticeDataError) as exc:
        load()
    message = str(exc.value)
    assert message.startswith(f"{path}: ")
    assert f"unknown key '{key}'" in message
    # the correct spelling is then missing: reported too, never replaced by a default
    correct = old.split(" = ")[0]
    assert re.search(rf"missing key '[\w.]*{correct}'", message)


def test_magnet_table_cannot_rename_itself(lattices_copy):
    path = lattices_copy / "calibrations" / "quadrupoles.toml"
    replace_in_file(path, 'supply_element = "QUATB003"', 'supply_element = "QUATB003"\nname = "Q9"')
    with pytest.raises(LatticeDataError, match=r"quadrupoles\.toml: .*Q3.*'name'"):
        calibration.quadrupole_calibrations()


def test_wrong_type_names_the_key(lattices_copy):
    path = lattices_copy / "btf_padme" / "line.toml"
    replace_in_file(path, 'plane = "y"', 'plane = "z"')
    with pytest.raises(LatticeDataError, match=r"line\.toml: key 'slits\.sltb3\.plane'"):
        lattice.line_spec()


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('beam = "linac_positron_run3"', 'beam = "linac_electron"', "beam"),
        (
            'dipole_calibration = "btf_nominal_v1"',
            'dipole_calibration = "v9"',
            "dipole_calibration",
        ),
        (
            'quadrupole_calibration = "dafne_tl_type_a_v1"',
            'quadrupole_calibration = "type_b"',
            "quadrupole_calibration",
        ),
    ],
)
def test_settings_reference_defined_entries(lattices_copy, old, new, key):
    path = lattices_copy / "btf_padme" / "settings" / "run3_2022.toml"
    replace_in_file(path, old, new)
    with pytest.raises(LatticeDataError, match=rf"run3_2022\.toml: key '{key}': .* not defined"):
        lattice.load_settings("run3_2022")


def test_the_hardware_layer_supply_names_agree_with_lattices():
    """hw_interfaces may not import beamline, so its supply names repeat lattices/line.toml:
    they must be the same set (the bare simulator's start currents are its own Run III-like
    values; scanplan sim passes the settings' currents)."""
    from beamline.names import MAGNETS, supply_element
    from hw_interfaces.btf_records import PSU_ELEMENTS
    from hw_interfaces.sim.psu import DEFAULT_CURRENTS_A

    supplies = {supply_element(m) for m in MAGNETS}
    assert set(PSU_ELEMENTS) == supplies
    assert set(DEFAULT_CURRENTS_A) == supplies
