"""The two dipoles the checker reads, named once: magnet names and plan order from
``beamline.calibration.DIPOLES``, control-system elements from the calibrations'
``supply_element`` (``lattices/calibrations/dipoles.toml``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..records import Point


@dataclass(frozen=True)
class Dipole:
    """``magnet`` as in the calibrations (DHSTB01), ``element`` as in the BTF control system
    (DHSTB001)."""

    magnet: str
    element: str

    @property
    def plan_field(self) -> str:
        """The plan point's current field for this magnet (``dhstb01_current_a``)."""
        return f"{self.magnet.lower()}_current_a"

    def planned_current_a(self, point: Point) -> float:
        """The plan's current of this magnet at ``point`` [A]."""
        return float(getattr(point, self.plan_field))


@functools.cache
def dipoles() -> tuple[Dipole, Dipole]:
    """(DHSTB01, DHSTB02): the energy-selecting dipole first, then the steering one."""
    from beamline.calibration import DIPOLES, dipole_spec

    first, second = (Dipole(m, dipole_spec(m).supply_element) for m in DIPOLES)
    return first, second
