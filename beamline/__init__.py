"""Physics model of the BTF -> PADME transfer line.

Lattice loading, calibrations, optics, tracking and the energy-spread engine.
This package imports nothing from ``scanplan`` or ``hw_interfaces``.
Heavy modules (xtrack) are imported lazily by the submodules that need them.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
