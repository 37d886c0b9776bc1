"""beamline.constants holds literal CODATA values: each is checked against scipy.constants."""

from __future__ import annotations

import subprocess
import sys

import pytest
import scipy.constants as sc

from beamline import constants as c


@pytest.mark.parametrize(
    "value, reference",
    [
        (c.C_LIGHT_M_PER_S, sc.c),
        (c.ELECTRON_MASS_MEV, sc.physical_constants["electron mass energy equivalent in MeV"][0]),
        (c.HBAR_C_MEV_FM, sc.physical_constants["reduced Planck constant times c in MeV fm"][0]),
        (c.ELECTRON_RADIUS_M, sc.physical_constants["classical electron radius"][0]),
        (c.ALPHA_EM, sc.fine_structure),
    ],
)
def test_literal_constants_equal_scipy_codata(value, reference):
    assert value == pytest.approx(reference, rel=1e-12)


def test_derived_constants_follow_their_definition():
    assert c.ELECTRON_MASS_EV == pytest.approx(sc.m_e * sc.c**2 / sc.e, rel=1e-9)
    assert c.MEV_PER_TESLA_METRE == pytest.approx(sc.c * 1e-6, rel=1e-15)
    # r_e = alpha * hbar c / (m_e c^2): three independent literals agree
    assert c.ELECTRON_RADIUS_M == pytest.approx(
        c.ALPHA_EM * c.HBAR_C_MEV_FM * 1e-15 / c.ELECTRON_MASS_MEV, rel=1e-9
    )


def test_importing_the_constants_does_not_import_scipy():
    code = "import sys, beamline.constants; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
