"""Magnet calibrations: current [A] <-> field <-> momentum. The one source of truth.

Data live in ``lattices/calibrations/*.toml`` (one file per magnet family). The lattice
model gets its current -> strength relations from :func:`madx_definitions`, so the
planner, the checker and the xtrack/MAD-X model all use the same numbers.

Conventions
-----------
* Dipoles: the calibration gives the Hall-probe field ``field_g`` [G] for a current; the
  momentum bent onto the design arc is ``bending_power_mev_per_g * field_g`` [MeV/c].
* Quadrupoles: gradient magnitude ``gradient_tpm`` [T/m]; the sign is the polarity setting.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ._toml import read_toml, require
from .constants import MEV_PER_TESLA_METRE
from .errors import BeamlineInputError, LatticeDataError
from .paths import data_file

DIPOLES = ("DHSTB01", "DHSTB02")
QUADRUPOLES = ("Q1", "Q2", "Q3", "Q4")


@dataclass(frozen=True)
class LinearExcitation:
    """``value = offset + slope * current``, trusted for ``valid_current_a``."""

    name: str
    offset: float
    slope: float
    valid_current_a: tuple[float, float]
    description: str = ""
    source: str = ""
    branch: str | None = None

    def value(self, current_a: float) -> float:
        return self.offset + self.slope * current_a

    def current(self, value: float) -> float:
        return (value - self.offset) / self.slope


@dataclass(frozen=True)
class MagnetSpec:
    """A magnet: its control-system element, supply limits and default calibration."""

    name: str
    supply_element: str
    current_limits_a: tuple[float, float]
    default_calibration: str

    def check_current(self, current_a: float) -> float:
        """Return ``current_a`` if the supply can deliver it, else raise a clear error."""
        lo, hi = self.current_limits_a
        if not (lo <= current_a <= hi):
            raise BeamlineInputError(
                f"{self.name} current {current_a:g} A is outside the supply range {lo:g}..{hi:g} A"
            )
        return current_a


@dataclass(frozen=True)
class DipoleCalibrations:
    version: str
    bending_power_mev_per_g: float
    magnets: dict[str, MagnetSpec]
    calibrations: dict[str, LinearExcitation]


@dataclass(frozen=True)
class QuadrupoleCalibrations:
    version: str
    magnets: dict[str, MagnetSpec]
    calibrations: dict[str, LinearExcitation]


def _magnets(raw: dict, where: str) -> dict[str, MagnetSpec]:
    out = {}
    for name, m in require(raw, "magnets", where).items():
        lo, hi = require(m, "current_limits_a", f"{where} [magnets.{name}]")
        out[name] = MagnetSpec(
            name=name,
            supply_element=require(m, "supply_element", f"{where} [magnets.{name}]"),
            current_limits_a=(float(lo), float(hi)),
            default_calibration=require(m, "default_calibration", f"{where} [magnets.{name}]"),
        )
    return out


def _linear(raw: dict, where: str, offset_key: str, slope_key: str) -> dict[str, LinearExcitation]:
    out = {}
    for name, c in require(raw, "calibrations", where).items():
        w = f"{where} [calibrations.{name}]"
        if c.get("kind", "linear") != "linear":
            raise LatticeDataError(f"{w}: only kind = 'linear' is supported, got {c['kind']!r}")
        lo, hi = require(c, "valid_current_a", w)
        out[name] = LinearExcitation(
            name=name,
            offset=float(require(c, offset_key, w)),
            slope=float(require(c, slope_key, w)),
            valid_current_a=(float(lo), float(hi)),
            description=c.get("description", ""),
            source=c.get("source", ""),
            branch=c.get("branch"),
        )
    return out


@functools.cache
def dipole_calibrations() -> DipoleCalibrations:
    """DHSTB01/DHSTB02 calibration data from ``lattices/calibrations/dipoles.toml``."""
    path = data_file("calibrations", "dipoles.toml")
    raw = read_toml(path)
    return DipoleCalibrations(
        version=require(raw, "version", str(path)),
        bending_power_mev_per_g=float(require(raw, "bending_power_mev_per_g", str(path))),
        magnets=_magnets(raw, str(path)),
        calibrations=_linear(raw, str(path), "offset_g", "slope_g_per_a"),
    )


@functools.cache
def quadrupole_calibrations() -> QuadrupoleCalibrations:
    """Q1-Q4 calibration data from ``lattices/calibrations/quadrupoles.toml``."""
    path = data_file("calibrations", "quadrupoles.toml")
    raw = read_toml(path)
    return QuadrupoleCalibrations(
        version=require(raw, "version", str(path)),
        magnets=_magnets(raw, str(path)),
        calibrations=_linear(raw, str(path), "offset_tpm", "slope_tpm_per_a"),
    )


def magnet_spec(magnet: str) -> MagnetSpec:
    """Spec of a dipole or quadrupole by its BTF name (case-insensitive)."""
    key = magnet.upper()
    for family in (dipole_calibrations().magnets, quadrupole_calibrations().magnets):
        if key in family:
            return family[key]
    allowed = ", ".join((*DIPOLES, *QUADRUPOLES))
    raise BeamlineInputError(f"unknown magnet '{magnet}'; known magnets: {allowed}")


def dipole_calibration(magnet: str, calibration: str | None = None) -> LinearExcitation:
    """The excitation curve used for ``magnet`` (its default unless ``calibration`` is named)."""
    spec = magnet_spec(magnet)
    if spec.name not in DIPOLES:
        raise BeamlineInputError(f"{spec.name} is not a dipole; dipoles: {', '.join(DIPOLES)}")
    data = dipole_calibrations()
    name = calibration or spec.default_calibration
    try:
        return data.calibrations[name]
    except KeyError:
        raise BeamlineInputError(
            f"unknown dipole calibration '{name}'; known: {', '.join(sorted(data.calibrations))}"
        ) from None


def quadrupole_calibration(magnet: str, calibration: str | None = None) -> LinearExcitation:
    spec = magnet_spec(magnet)
    if spec.name not in QUADRUPOLES:
        raise BeamlineInputError(
            f"{spec.name} is not a quadrupole; quadrupoles: {', '.join(QUADRUPOLES)}"
        )
    data = quadrupole_calibrations()
    name = calibration or spec.default_calibration
    try:
        return data.calibrations[name]
    except KeyError:
        raise BeamlineInputError(
            f"unknown quadrupole calibration '{name}'; known: {', '.join(sorted(data.calibrations))}"
        ) from None


def dipole_field_g(magnet: str, current_a: float, calibration: str | None = None) -> float:
    """Hall-probe field [G] of a dipole at ``current_a`` [A]."""
    return dipole_calibration(magnet, calibration).value(current_a)


def dipole_momentum_mev(magnet: str, current_a: float, calibration: str | None = None) -> float:
    """Momentum [MeV/c] that the dipole at ``current_a`` [A] bends onto the design arc."""
    return dipole_calibrations().bending_power_mev_per_g * dipole_field_g(
        magnet, current_a, calibration
    )


def dipole_current_for_momentum(
    magnet: str, momentum_mev: float, calibration: str | None = None
) -> float:
    """Current [A] at which the dipole bends ``momentum_mev`` [MeV/c] onto the design arc."""
    field_g = momentum_mev / dipole_calibrations().bending_power_mev_per_g
    return dipole_calibration(magnet, calibration).current(field_g)


def quad_gradient_tpm(magnet: str, current_a: float, calibration: str | None = None) -> float:
    """Gradient magnitude [T/m] of a quadrupole at ``current_a`` [A]."""
    return quadrupole_calibration(magnet, calibration).value(current_a)


def quad_current_for_gradient(
    magnet: str, gradient_tpm: float, calibration: str | None = None
) -> float:
    """Current [A] giving the gradient magnitude ``gradient_tpm`` [T/m]."""
    return quadrupole_calibration(magnet, calibration).current(gradient_tpm)


def madx_definitions(
    dipole_calibration_names: dict[str, str] | None = None,
    quadrupole_calibration_names: dict[str, str] | None = None,
) -> str:
    """MAD-X deferred expressions from the current knobs to the derived field variables.

    Defines ``b_<dipole>_g``, ``brho_<dipole>_tm`` and ``g_<quad>_tpm`` in terms of
    ``i_<magnet>_a``. Valid input for both MAD-X and xtrack's MAD-X loader.
    """
    dip_names = dipole_calibration_names or {}
    quad_names = quadrupole_calibration_names or {}
    power = dipole_calibrations().bending_power_mev_per_g
    lines = [
        f"! calibrations: {dipole_calibrations().version}, {quadrupole_calibrations().version}"
    ]
    for magnet in DIPOLES:
        cal = dipole_calibration(magnet, dip_names.get(magnet))
        m = magnet.lower()
        lines.append(f"! {magnet}: {cal.name} ({cal.description})")
        lines.append(f"b_{m}_g := {cal.offset!r} + {cal.slope!r} * i_{m}_a;")
        lines.append(f"brho_{m}_tm := {power!r} * b_{m}_g / {MEV_PER_TESLA_METRE!r};")
    for magnet in QUADRUPOLES:
        cal = quadrupole_calibration(magnet, quad_names.get(magnet))
        m = magnet.lower()
        lines.append(f"! {magnet}: {cal.name}")
        lines.append(f"g_{m}_tpm := {cal.offset!r} + {cal.slope!r} * i_{m}_a;")
    return "\n".join(lines) + "\n"
