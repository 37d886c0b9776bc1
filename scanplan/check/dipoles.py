"""The magnets the checker reads, named once: magnet names and order from
``beamline.names.DIPOLES`` / ``QUADRUPOLES`` (the calibrations), control-system elements from
their ``supply_element``, plan fields from :func:`scanplan.records.current_field`."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..records import Point, current_field


@dataclass(frozen=True)
class Magnet:
    """``magnet`` as in the calibrations (DHSTB01, Q3), ``element`` as in the BTF control
    system (DHSTB001, QUATB003)."""

    magnet: str
    element: str

    @property
    def plan_field(self) -> str:
        """The plan point's current field for this magnet (``dhstb01_current_a``)."""
        return current_field(self.magnet)

    def planned_current_a(self, point: Point) -> float:
        """The plan's current of this magnet at ``point`` [A]."""
        return point.current_a(self.magnet)


#: the dipoles' records are Magnets (the name the checker and the run have used)
Dipole = Magnet


@functools.cache
def dipoles() -> tuple[Magnet, Magnet]:
    """(DHSTB01, DHSTB02): the energy-selecting dipole first, then the steering one."""
    from beamline.names import DIPOLES, supply_element

    first, second = (Magnet(m, supply_element(m)) for m in DIPOLES)
    return first, second


@functools.cache
def quadrupoles() -> tuple[Magnet, ...]:
    """Q1..Q4 with their supplies QUATB001..QUATB004 (``lattices/calibrations/quadrupoles.toml``)."""
    from beamline.names import QUADRUPOLES, supply_element

    return tuple(Magnet(m, supply_element(m)) for m in QUADRUPOLES)


def magnets() -> tuple[Magnet, ...]:
    """Every magnet the checker reads: the dipoles, then the quadrupoles."""
    return (*dipoles(), *quadrupoles())


def plan_currents_a(point: Point) -> dict[str, float]:
    """Supply element -> the plan's current at ``point`` [A], for every magnet (what the crew
    sets; what a simulator is set to)."""
    return {m.element: m.planned_current_a(point) for m in magnets()}
