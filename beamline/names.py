"""Names of the line's slits and magnets: one home, derived from the data files.

* ``SLITS``: the slits of ``[slits]`` in ``lattices/btf_padme/line.toml`` (upper case, in
  file order: SLTB2, SLTB3, SLTB4, SLTB5);
* ``DIPOLES`` / ``QUADRUPOLES``: the magnets of ``lattices/calibrations/{dipoles,
  quadrupoles}.toml`` (DHSTB01, DHSTB02 / Q1..Q4), ``MAGNETS`` both;
* the spelling map of a magnet: model name ``DHSTB01`` <-> supply element ``DHSTB001``
  (control system, memcached keys) <-> lattice element ``dhstb01`` (MAD-X sequence) <->
  current knob ``i_dhstb01_a``, all on :class:`beamline.calibration_schemas.MagnetSpec`.

The tuples are read when this module is first imported (a few small TOML files).
"""

from __future__ import annotations

from .calibration import dipole_calibrations, magnet_spec, quadrupole_calibrations
from .errors import BeamlineInputError
from .lattice import line_spec

SLITS: tuple[str, ...] = tuple(name.upper() for name in line_spec().slits)
DIPOLES: tuple[str, ...] = tuple(dipole_calibrations().magnets)
QUADRUPOLES: tuple[str, ...] = tuple(quadrupole_calibrations().magnets)
MAGNETS: tuple[str, ...] = (*DIPOLES, *QUADRUPOLES)


def check_slit(slit: str) -> str:
    """Upper-case name of ``slit`` (any case), or a BeamlineInputError listing the slits."""
    key = slit.upper()
    if key not in SLITS:
        raise BeamlineInputError(f"unknown slit '{slit}'; slits: {', '.join(SLITS)}")
    return key


def supply_element(magnet: str) -> str:
    """Control-system element of the supply of ``magnet`` (``DHSTB01`` -> ``DHSTB001``)."""
    return magnet_spec(magnet).supply_element


def lattice_element(magnet: str) -> str:
    """Sequence element of ``magnet`` (``DHSTB01`` -> ``dhstb01``)."""
    return magnet_spec(magnet).lattice_element


def magnet_for_supply(element: str) -> str:
    """Model name of the magnet powered by supply ``element`` (``DHSTB001`` -> ``DHSTB01``)."""
    key = element.upper()
    for name in MAGNETS:
        if magnet_spec(name).supply_element == key:
            return name
    known = ", ".join(magnet_spec(m).supply_element for m in MAGNETS)
    raise BeamlineInputError(f"unknown supply element '{element}'; elements: {known}")


def supply_elements(magnets: tuple[str, ...] = MAGNETS) -> tuple[str, ...]:
    """Supply elements of ``magnets`` (default all), in that order."""
    return tuple(supply_element(m) for m in magnets)
