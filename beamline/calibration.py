"""Magnet calibrations: current [A] <-> field <-> momentum, and the absolute energy scales.
The one source of truth.

Data live in ``lattices/calibrations/*.toml`` (one file per magnet family, plus
``energy_scale.toml``); this is the only module that reads them. The lattice model gets its
current -> strength relations from :func:`madx_definitions`, so the planner, the checker and
the xtrack/MAD-X model all use the same numbers.

Conventions
-----------
* Dipoles: the calibration gives the field ``field_g`` [G] for a current; the momentum bent
  onto the design arc is ``bending_power_mev_per_g * field_g`` [MeV/c]. A calibration's
  ``field_reference`` says whether that field is the design field ("design", BTF nominal
  excitation) or the Hall-probe readback ("hall_probe", the 2022 per-pass fits).
* Quadrupoles: gradient magnitude ``gradient_tpm`` [T/m]; the sign is the polarity setting.
* Energy scales (``energy_scale.toml``): an absolute offset [MeV] added to the total energy
  derived from the field; see :mod:`beamline.energy` for the full chain.
* ``valid_current_a`` of a calibration is the current range of the data it was fitted on
  (inclusive: 130.66-190.132 A for 2022), ``valid_field_g`` (optional, Hall-probe curves)
  the field range of those data. A current is trusted when it lies in the current range or
  its field in the field range (that field, hence that energy, was measured); otherwise it
  is an extrapolation (allowed only on request, see :meth:`LinearExcitation.check_current`).
  A field readback is never refused (it needs no current calibration; a warning at most).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from .calibration_schemas import (
    BRANCHES,
    FIELD_REFERENCES,
    DipoleLinear,
    DipolesFile,
    DipoleSpec,
    EnergyScale,
    EnergyScalesFile,
    HysteresisParameters,
    MagnetSpec,
    QuadrupolesFile,
    ReadbackResolution,
)
from .constants import MEV_PER_TESLA_METRE
from .datafiles import load_toml_model
from .errors import BeamlineInputError
from .paths import data_file

__all__ = [
    "BRANCHES",
    "FIELD_REFERENCES",
    "RANGE_TOLERANCE_A",
    "DipoleCalibrations",
    "DipoleSpec",
    "EnergyScale",
    "EnergyScales",
    "HysteresisParameters",
    "LinearExcitation",
    "MagnetSpec",
    "QuadrupoleCalibrations",
    "ReadbackResolution",
]

_T = TypeVar("_T")

#: round-off allowance [A] of range checks (an inverse conversion lands within ~1e-13 A)
RANGE_TOLERANCE_A = 1e-9


@dataclass(frozen=True)
class LinearExcitation:
    """``value = offset + slope * current``, trusted for ``valid_current_a``.

    For dipoles ``value`` is a field [G], for quadrupoles a gradient magnitude [T/m].
    ``value_rms`` is the scatter of single measurements about the curve (same unit),
    ``field_reference`` "design" or "hall_probe", ``branch`` the hysteresis branch of the
    data (``None``: not determined), ``version`` that of the data file it came from.
    Built from a calibration entry of the data file (a "mean" entry is computed here).
    """

    name: str
    offset: float
    slope: float
    valid_current_a: tuple[float, float]
    description: str
    source: str
    branch: str | None
    field_reference: str
    value_rms: float
    version: str
    valid_field: tuple[float, float] | None = None

    def value(self, current_a: float) -> float:
        """Field [G] (dipole) or gradient [T/m] (quadrupole) at ``current_a`` [A]."""
        return self.offset + self.slope * current_a

    def current(self, value: float) -> float:
        """Current [A] giving ``value`` (exact inverse of :meth:`value`)."""
        return (value - self.offset) / self.slope

    @property
    def label(self) -> str:
        """``name@version``: how results name the calibration that produced them."""
        return f"{self.name}@{self.version}" if self.version else self.name

    def is_extrapolation(self, current_a: float) -> bool:
        """True if ``current_a`` [A] lies outside ``valid_current_a`` and its value outside
        ``valid_field`` (each by more than the round-off tolerance ``RANGE_TOLERANCE_A``)."""
        lo, hi = self.valid_current_a
        if lo - RANGE_TOLERANCE_A <= current_a <= hi + RANGE_TOLERANCE_A:
            return False
        return not self.field_in_range(self.value(current_a))

    def field_in_range(self, value: float) -> bool:
        """Whether a field [G] lies in the data's field range (False without one)."""
        if self.valid_field is None:
            return False
        lo, hi = self.valid_field
        tol = RANGE_TOLERANCE_A * self.slope
        return lo - tol <= value <= hi + tol

    def range_text(self) -> str:
        """The trusted range for messages: ``lo..hi A`` (and ``, fields lo..hi G``)."""
        lo, hi = self.valid_current_a
        text = f"{lo:g}..{hi:g} A"
        if self.valid_field is not None:
            text += f", fields {self.valid_field[0]:g}..{self.valid_field[1]:g} G"
        return text

    def check_current(self, current_a: float, *, extrapolate: bool = False, what: str = "") -> bool:
        """Refuse a current outside the trusted range unless ``extrapolate``.

        Returns True when the value is an (allowed) extrapolation. ``what`` replaces the
        default description of the value in the error message.
        """
        if not math.isfinite(current_a):
            raise BeamlineInputError(f"current must be a finite number of A, got {current_a!r}")
        if not self.is_extrapolation(current_a):
            return False
        if extrapolate:
            return True
        desc = what or f"current {current_a:g} A"
        raise BeamlineInputError(
            f"{desc} is outside the range {self.range_text()} of calibration {self.name}; "
            "extrapolating needs --extrapolate"
        )


@dataclass(frozen=True)
class DipoleCalibrations:
    """The dipole data file: ``version``, ``bending_power_mev_per_g`` [MeV/c per G],
    ``magnets``, excitation ``calibrations`` (means computed), ``hysteresis``, ``readback``."""

    version: str
    bending_power_mev_per_g: float
    magnets: dict[str, DipoleSpec]
    calibrations: dict[str, LinearExcitation]
    hysteresis: HysteresisParameters
    readback: ReadbackResolution


@dataclass(frozen=True)
class QuadrupoleCalibrations:
    version: str
    magnets: dict[str, MagnetSpec]
    calibrations: dict[str, LinearExcitation]


@dataclass(frozen=True)
class EnergyScales:
    version: str
    default_scale: str
    scales: dict[str, EnergyScale]


def _dipole_curves(data: DipolesFile) -> dict[str, LinearExcitation]:
    """Excitation curves of the dipole file; a "mean" entry averages its (linear) members."""
    out: dict[str, LinearExcitation] = {}
    for name, c in data.calibrations.items():
        if isinstance(c, DipoleLinear):
            offset, slope, valid = c.offset_g, c.slope_g_per_a, c.valid_current_a
            valid_field = c.valid_field_g
        else:
            members = [data.calibrations[m] for m in c.members]
            linear = [m for m in members if isinstance(m, DipoleLinear)]  # checked by the model
            offset = math.fsum(m.offset_g for m in linear) / len(linear)
            slope = math.fsum(m.slope_g_per_a for m in linear) / len(linear)
            valid = (
                max(m.valid_current_a[0] for m in linear),
                min(m.valid_current_a[1] for m in linear),
            )
            fields = [m.valid_field_g for m in linear if m.valid_field_g is not None]
            valid_field = None
            if len(fields) == len(linear):  # intersection of the members' field ranges
                valid_field = (max(f[0] for f in fields), min(f[1] for f in fields))
        out[name] = LinearExcitation(
            name=name,
            offset=offset,
            slope=slope,
            valid_current_a=valid,
            description=c.description,
            source=c.source or "",
            branch=c.branch,
            field_reference=c.field_reference,
            value_rms=c.field_rms_g,
            version=data.version,
            valid_field=valid_field,
        )
    return out


@functools.cache
def dipole_calibrations() -> DipoleCalibrations:
    """DHSTB01/DHSTB02 calibration data from ``lattices/calibrations/dipoles.toml``."""
    data = load_toml_model(data_file("calibrations", "dipoles.toml"), DipolesFile)
    return DipoleCalibrations(
        version=data.version,
        bending_power_mev_per_g=data.bending_power_mev_per_g,
        magnets=data.magnets,
        calibrations=_dipole_curves(data),
        hysteresis=data.hysteresis,
        readback=data.readback,
    )


@functools.cache
def quadrupole_calibrations() -> QuadrupoleCalibrations:
    """Q1-Q4 calibration data from ``lattices/calibrations/quadrupoles.toml``."""
    data = load_toml_model(data_file("calibrations", "quadrupoles.toml"), QuadrupolesFile)
    curves = {
        name: LinearExcitation(
            name=name,
            offset=c.offset_tpm,
            slope=c.slope_tpm_per_a,
            valid_current_a=c.valid_current_a,
            description=c.description,
            source=c.source or "",
            branch=None,
            field_reference=c.field_reference,
            value_rms=c.gradient_rms_tpm,
            version=data.version,
        )
        for name, c in data.calibrations.items()
    }
    return QuadrupoleCalibrations(version=data.version, magnets=data.magnets, calibrations=curves)


@functools.cache
def energy_scales() -> EnergyScales:
    """Absolute energy scales from ``lattices/calibrations/energy_scale.toml``."""
    data = load_toml_model(data_file("calibrations", "energy_scale.toml"), EnergyScalesFile)
    return EnergyScales(version=data.version, default_scale=data.default_scale, scales=data.scales)


def _named(table: Mapping[str, _T], name: str, what: str) -> _T:
    """``table[name]``, or a BeamlineInputError listing the known names of ``what``."""
    try:
        return table[name]
    except KeyError:
        raise BeamlineInputError(
            f"unknown {what} '{name}'; known: {', '.join(sorted(table))}"
        ) from None


def energy_scale(name: str | None = None) -> EnergyScale:
    """Energy scale by name (the data file's default when ``None``)."""
    data = energy_scales()
    return _named(data.scales, name or data.default_scale, "energy scale")


def magnet_spec(magnet: str) -> MagnetSpec:
    """Spec of a dipole or quadrupole by its BTF name (case-insensitive)."""
    key = magnet.upper()
    dipoles, quads = dipole_calibrations().magnets, quadrupole_calibrations().magnets
    if key in dipoles:
        return dipoles[key]
    if key in quads:
        return quads[key]
    allowed = ", ".join((*dipoles, *quads))
    raise BeamlineInputError(f"unknown magnet '{magnet}'; known magnets: {allowed}")


def dipole_spec(magnet: str) -> DipoleSpec:
    """Spec of DHSTB01 or DHSTB02 (a clear error for any other name)."""
    dipoles = dipole_calibrations().magnets
    spec = magnet_spec(magnet)
    if not isinstance(spec, DipoleSpec):
        raise BeamlineInputError(f"{spec.name} is not a dipole; dipoles: {', '.join(dipoles)}")
    return spec


def quadrupole_spec(magnet: str) -> MagnetSpec:
    """Spec of Q1..Q4 (a clear error for any other name)."""
    quads = quadrupole_calibrations().magnets
    spec = magnet_spec(magnet)
    if spec.name not in quads:
        raise BeamlineInputError(
            f"{spec.name} is not a quadrupole; quadrupoles: {', '.join(quads)}"
        )
    return spec


def dipole_calibration(magnet: str, calibration: str | None = None) -> LinearExcitation:
    """The excitation curve used for ``magnet`` (its default unless ``calibration`` is named)."""
    spec = dipole_spec(magnet)
    name = calibration or spec.default_calibration
    return _named(dipole_calibrations().calibrations, name, "dipole calibration")


def branch_calibration(magnet: str, branch: str | None) -> LinearExcitation | None:
    """Hall-probe calibration of ``magnet`` for a branch ("ascending", "descending" or
    ``None``/"unknown"); ``None`` if the magnet has no Hall-probe data."""
    spec = dipole_spec(magnet)
    key = check_branch(branch) or "unknown"
    name = spec.branch_calibration_name(key)
    return None if name is None else dipole_calibrations().calibrations[name]


def check_branch(branch: str | None) -> str | None:
    """Normalise a branch name: "ascending", "descending" or ``None`` (unknown)."""
    if branch is None:
        return None
    key = branch.strip().lower()
    if key in ("", "unknown", "none"):
        return None
    if key not in BRANCHES:
        raise BeamlineInputError(f"unknown branch '{branch}'; use ascending, descending or unknown")
    return key


def quadrupole_calibration(magnet: str, calibration: str | None = None) -> LinearExcitation:
    """The gradient curve used for quadrupole ``magnet`` (default unless ``calibration``)."""
    spec = quadrupole_spec(magnet)
    name = calibration or spec.default_calibration
    return _named(quadrupole_calibrations().calibrations, name, "quadrupole calibration")


def dipole_field_g(magnet: str, current_a: float, calibration: str | None = None) -> float:
    """Field [G] of a dipole at ``current_a`` [A] (design or Hall-probe, see the calibration)."""
    return dipole_calibration(magnet, calibration).value(current_a)


def dipole_current_for_field(magnet: str, field_g: float, calibration: str | None = None) -> float:
    """Current [A] at which the dipole's calibration gives ``field_g`` [G]."""
    return dipole_calibration(magnet, calibration).current(field_g)


def momentum_mev_from_field(field_g: float) -> float:
    """Momentum [MeV/c] bent onto the design arc by a field ``field_g`` [G]."""
    return dipole_calibrations().bending_power_mev_per_g * field_g


def field_g_from_momentum(momentum_mev: float) -> float:
    """Field [G] that bends ``momentum_mev`` [MeV/c] onto the design arc."""
    return momentum_mev / dipole_calibrations().bending_power_mev_per_g


def dipole_momentum_mev(magnet: str, current_a: float, calibration: str | None = None) -> float:
    """Momentum [MeV/c] that the dipole at ``current_a`` [A] bends onto the design arc."""
    return momentum_mev_from_field(dipole_field_g(magnet, current_a, calibration))


def dipole_current_for_momentum(
    magnet: str, momentum_mev: float, calibration: str | None = None
) -> float:
    """Current [A] at which the dipole bends ``momentum_mev`` [MeV/c] onto the design arc."""
    return dipole_calibration(magnet, calibration).current(field_g_from_momentum(momentum_mev))


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
    for magnet, dspec in dipole_calibrations().magnets.items():
        cal = dipole_calibration(magnet, dip_names.get(magnet))
        m = dspec.lattice_element
        lines.append(f"! {magnet}: {cal.name} ({cal.description})")
        lines.append(f"b_{m}_g := {cal.offset!r} + {cal.slope!r} * {dspec.knob};")
        lines.append(f"brho_{m}_tm := {power!r} * b_{m}_g / {MEV_PER_TESLA_METRE!r};")
    for magnet, qspec in quadrupole_calibrations().magnets.items():
        cal = quadrupole_calibration(magnet, quad_names.get(magnet))
        lines.append(f"! {magnet}: {cal.name}")
        lines.append(
            f"g_{qspec.lattice_element}_tpm := {cal.offset!r} + {cal.slope!r} * {qspec.knob};"
        )
    return "\n".join(lines) + "\n"
