"""Two code paths, one calibration: the xtrack model's DHSTB01 at current I bends a particle
of the energy that beamline.energy assigns to I onto the design orbit."""

from __future__ import annotations

import pytest

from beamline import calibration as cal
from beamline.energy import energy_from_current


@pytest.fixture(scope="module")
def line():
    from beamline.model import BeamLine

    return BeamLine("run3_2022")


@pytest.mark.parametrize("current_a", [60.0, 130.7, 179.0, 190.1, 330.0])
def test_dhstb01_bends_calibration_energy_onto_design_orbit(line, current_a: float) -> None:
    name = line.settings.dipole_calibration
    # pure magnet calibration (scale 'none'), the same calibration the lattice deck uses
    est = energy_from_current(current_a, calibration=name, scale="none")
    line.set_energy(est.energy_mev)
    line.set_current("DHSTB01", current_a)
    p = line.build_particles(x=0.0, px=0.0, y=0.0, py=0.0, zeta=0.0, delta=0.0)
    line.line.track(p, ele_stop="dhstb01_exit")
    assert int(p.state[0]) == 1
    assert abs(float(p.x[0])) < 1e-9
    assert abs(float(p.px[0])) < 1e-9
    # a 1 A error is visible at the same place: the test is sensitive to the current
    line.set_current("DHSTB01", current_a + 1.0)
    q = line.build_particles(x=0.0, px=0.0, delta=0.0)
    line.line.track(q, ele_stop="dhstb01_exit")
    assert abs(float(q.x[0])) > 1e-4


def test_matched_current_is_the_calibration_inverse(line) -> None:
    name = line.settings.dipole_calibration
    line.set_energy(282.27)
    expected = energy_from_current(
        line.matched_dipole_current_a("DHSTB01"), calibration=name, scale="none"
    )
    assert expected.energy_mev == pytest.approx(282.27, abs=1e-9)
    assert cal.dipole_calibration("DHSTB01", name).label == expected.calibration
