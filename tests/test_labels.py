"""DHSTB02Energy label conventions (lattices/calibrations/dhstb02_labels.toml) and the
PadmeMC conventions file: typed, versioned, errors naming file and key."""

from __future__ import annotations

import pytest
from fixtures.lattices import private_lattices, replace_in_file

from beamline import labels
from beamline.errors import BeamlineInputError, LatticeDataError
from scanplan.errors import ScanplanError
from scanplan.exports import mc_macro


def test_conventions_and_defaults():
    assert labels.default_convention("2022") == "run3_2022"
    assert labels.default_convention("2025") == "run4_2025"
    assert labels.versioned_name("run3_2022").startswith("run3_2022@dhstb02-labels-")
    # 2022: BTF nominal excitation p = 1.56827918 I + 1.49737969 MeV/c (facts 3)
    assert labels.dhstb02_label_mev(180.0, "run3_2022") == pytest.approx(
        1.56827918 * 180.0 + 1.49737969, rel=1e-8
    )
    ratio = labels.dhstb02_label_mev(180.0, "run4_2025") / labels.dhstb02_label_mev(
        180.0, "run3_2022"
    )
    assert 1.05 <= ratio <= 1.06  # facts 4b: 5-6 % above in 2025
    with pytest.raises(BeamlineInputError, match="unknown DHSTB02 label convention"):
        labels.dhstb02_label_mev(180.0, "run9")
    with pytest.raises(BeamlineInputError, match="no DHSTB02 label convention for table"):
        labels.default_convention("2019")


def test_bad_data_files_name_file_and_key(tmp_path, monkeypatch):
    caches = [labels.dhstb02_labels, mc_macro.padmemc_conventions]
    with private_lattices(tmp_path, monkeypatch, caches) as root:
        replace_in_file(
            root / "calibrations" / "dhstb02_labels.toml", "scale = 1.055", "scal = 1.055"
        )
        with pytest.raises(LatticeDataError, match=r"dhstb02_labels.toml.*scal"):
            labels.dhstb02_labels()
        replace_in_file(root / "btf_padme" / "padmemc.toml", "dipole_field_sign = -1",
                        "dipole_field_sign = -3")  # fmt: skip
        with pytest.raises(ScanplanError, match=r"padmemc.toml.*dipole_field_sign"):
            mc_macro.padmemc_conventions()
