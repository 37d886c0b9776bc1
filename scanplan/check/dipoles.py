"""The two dipoles the checker reads, named once: magnet names and order from
``beamline.names.DIPOLES`` (the calibrations), control-system elements from their
``supply_element``, plan fields from :func:`scanplan.records.current_field`."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..records import Point, current_field


@dataclass(frozen=True)
class Dipole:
    """``magnet`` as in the calibrations (DHSTB01), ``element`` as in the BTF control system
    (DHSTB001)."""

    magnet: str
    element: str

    @property
    def plan_field(self) -> str:
        """The plan point's current field for this magnet (``dhstb01_current_a``)."""
        return current_field(self.magnet)

    def planned_current_a(self, point: Point) -> float:
        """The plan's current of this magnet at ``point`` [A]."""
        return point.current_a(self.magnet)


@functools.cache
def dipoles() -> tuple[Dipole, Dipole]:
    """(DHSTB01, DHSTB02): the energy-selecting dipole first, then the steering one."""
    from beamline.names import DIPOLES, supply_element

    first, second = (Dipole(m, supply_element(m)) for m in DIPOLES)
    return first, second
