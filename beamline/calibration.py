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
from dataclasses import dataclass, field
from typing import TypeVar

from .constants import MEV_PER_TESLA_METRE
from .datafiles import read_toml, require
from .errors import BeamlineInputError, LatticeDataError
from .paths import data_file

_T = TypeVar("_T")

DIPOLES = ("DHSTB01", "DHSTB02")
QUADRUPOLES = ("Q1", "Q2", "Q3", "Q4")
BRANCHES = ("ascending", "descending")
FIELD_REFERENCES = ("design", "hall_probe")
#: round-off allowance [A] of range checks (an inverse conversion lands within ~1e-13 A)
RANGE_TOLERANCE_A = 1e-9


@dataclass(frozen=True)
class LinearExcitation:
    """``value = offset + slope * current``, trusted for ``valid_current_a``.

    For dipoles ``value`` is a field [G], for quadrupoles a gradient magnitude [T/m].
    ``value_rms`` is the scatter of single measurements about the curve (same unit),
    ``field_reference`` "design" or "hall_probe", ``branch`` the hysteresis branch of the
    data (``None``: not determined), ``version`` that of the data file it came from.
    """

    name: str
    offset: float
    slope: float
    valid_current_a: tuple[float, float]
    description: str = ""
    source: str = ""
    branch: str | None = None
    field_reference: str = "design"
    value_rms: float = 0.0
    version: str = ""
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
class MagnetSpec:
    """A magnet: its control-system element, supply limits and default calibration.

    ``branch_calibrations`` maps "ascending"/"descending"/"unknown" to the Hall-probe
    calibration for that approach branch (empty: no Hall-probe data for this magnet).
    ``default_relative_offset`` is the default relative momentum offset of the setting
    with respect to the beam (DHSTB02 steering offset; 0 for the others).
    """

    name: str
    supply_element: str
    current_limits_a: tuple[float, float]
    default_calibration: str
    branch_calibrations: dict[str, str] = field(default_factory=dict)
    default_relative_offset: float = 0.0

    def check_current(self, current_a: float) -> float:
        """Return ``current_a`` if the supply can deliver it, else raise a clear error."""
        lo, hi = self.current_limits_a
        if not (lo <= current_a <= hi):
            raise BeamlineInputError(
                f"{self.name} current {current_a:g} A is outside the supply range {lo:g}..{hi:g} A"
            )
        return current_a


@dataclass(frozen=True)
class HysteresisParameters:
    """Named hysteresis parameters of the dipoles (``[hysteresis]`` of dipoles.toml).

    Fields [G] / [A]: ``pass_to_pass_g`` field difference between passes at equal current,
    ``sigma_known_branch_g`` / ``sigma_unknown_branch_g`` field sigma for a set point
    approached from a known / unknown side, ``preferred_branch`` the side to approach from,
    ``overshoot_a`` the overshoot before approaching, ``standardisation_cycles`` cycles to
    the supply maximum before a scan, ``min_step_a`` smallest change counted as a move.
    """

    pass_to_pass_g: float
    sigma_known_branch_g: float
    sigma_unknown_branch_g: float
    preferred_branch: str
    overshoot_a: float
    standardisation_cycles: int
    min_step_a: float


@dataclass(frozen=True)
class ReadbackResolution:
    """Readback quantisation: PSU current [A] and Hall probe [G] (sigma = resolution/sqrt 12)."""

    current_resolution_a: float
    hall_resolution_g: float

    @property
    def sigma_current_a(self) -> float:
        return self.current_resolution_a / math.sqrt(12.0)

    @property
    def sigma_field_g(self) -> float:
        return self.hall_resolution_g / math.sqrt(12.0)


@dataclass(frozen=True)
class DipoleCalibrations:
    version: str
    bending_power_mev_per_g: float
    magnets: dict[str, MagnetSpec]
    calibrations: dict[str, LinearExcitation]
    hysteresis: HysteresisParameters | None = None
    readback: ReadbackResolution | None = None


@dataclass(frozen=True)
class QuadrupoleCalibrations:
    version: str
    magnets: dict[str, MagnetSpec]
    calibrations: dict[str, LinearExcitation]


@dataclass(frozen=True)
class EnergyScale:
    """Absolute energy scale: ``E = sqrt(p_magnet^2 + m_e^2) + offset_mev``.

    ``sigma_mev`` is the uncertainty of the absolute scale, ``fit_rms_mev`` the rms of the
    points it was fitted on, ``field_reference`` "hall_probe" (defined on the Hall field)
    or "any".
    """

    name: str
    version: str
    offset_mev: float
    sigma_mev: float
    fit_rms_mev: float
    field_reference: str
    description: str = ""

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def accepts(self, calibration: LinearExcitation) -> bool:
        """Whether the scale may be applied to fields from ``calibration``."""
        return self.field_reference == "any" or self.field_reference == calibration.field_reference


@dataclass(frozen=True)
class EnergyScales:
    version: str
    default_scale: str
    scales: dict[str, EnergyScale]


def _magnets(raw: dict, where: str) -> dict[str, MagnetSpec]:
    out = {}
    for name, m in require(raw, "magnets", where).items():
        w = f"{where} [magnets.{name}]"
        lo, hi = require(m, "current_limits_a", w)
        branch_cals = dict(m.get("branch_calibrations", {}))
        bad = set(branch_cals) - {*BRANCHES, "unknown"}
        if bad:
            raise LatticeDataError(f"{w}: unknown branch(es) {sorted(bad)} in branch_calibrations")
        out[name] = MagnetSpec(
            name=name,
            supply_element=require(m, "supply_element", w),
            current_limits_a=(float(lo), float(hi)),
            default_calibration=require(m, "default_calibration", w),
            branch_calibrations=branch_cals,
            default_relative_offset=float(m.get("default_relative_offset", 0.0)),
        )
    return out


def _linear(
    raw: dict, where: str, offset_key: str, slope_key: str, rms_key: str, version: str
) -> dict[str, LinearExcitation]:
    out: dict[str, LinearExcitation] = {}
    tables = require(raw, "calibrations", where)
    # plain linear curves first, then means of them
    for name, c in sorted(tables.items(), key=lambda kv: kv[1].get("kind", "linear") == "mean"):
        w = f"{where} [calibrations.{name}]"
        kind = c.get("kind", "linear")
        if kind == "linear":
            lo, hi = require(c, "valid_current_a", w)
            offset = float(require(c, offset_key, w))
            slope = float(require(c, slope_key, w))
            vf = c.get("valid_field_g")
            valid_field = None if vf is None else (float(vf[0]), float(vf[1]))
        elif kind == "mean":
            members = require(c, "members", w)
            missing = [m for m in members if m not in out]
            if not members or missing:
                raise LatticeDataError(f"{w}: members must be linear calibrations, not {missing}")
            curves = [out[m] for m in members]
            offset = math.fsum(cv.offset for cv in curves) / len(curves)
            slope = math.fsum(cv.slope for cv in curves) / len(curves)
            lo = max(cv.valid_current_a[0] for cv in curves)
            hi = min(cv.valid_current_a[1] for cv in curves)
            fields = [cv.valid_field for cv in curves]
            valid_field = None
            if all(f is not None for f in fields):
                valid_field = (max(f[0] for f in fields if f), min(f[1] for f in fields if f))
        else:
            raise LatticeDataError(f"{w}: kind must be 'linear' or 'mean', got {kind!r}")
        if slope <= 0 or not (float(lo) < float(hi)):
            raise LatticeDataError(f"{w}: slope must be > 0 and the valid range non-empty")
        branch = c.get("branch")
        if branch is not None and branch not in BRANCHES:
            raise LatticeDataError(f"{w}: branch must be one of {BRANCHES}, got {branch!r}")
        reference = c.get("field_reference", "design")
        if reference not in FIELD_REFERENCES:
            raise LatticeDataError(f"{w}: field_reference must be one of {FIELD_REFERENCES}")
        out[name] = LinearExcitation(
            name=name,
            offset=offset,
            slope=slope,
            valid_current_a=(float(lo), float(hi)),
            description=c.get("description", ""),
            source=c.get("source", ""),
            branch=branch,
            field_reference=reference,
            value_rms=float(c.get(rms_key, 0.0)),
            version=version,
            valid_field=valid_field,
        )
    return out


@functools.cache
def dipole_calibrations() -> DipoleCalibrations:
    """DHSTB01/DHSTB02 calibration data from ``lattices/calibrations/dipoles.toml``."""
    path = data_file("calibrations", "dipoles.toml")
    raw = read_toml(path)
    w = str(path)
    version = require(raw, "version", w)
    cals = _linear(raw, w, "offset_g", "slope_g_per_a", "field_rms_g", version)
    magnets = _magnets(raw, w)
    for spec in magnets.values():
        for cal in (spec.default_calibration, *spec.branch_calibrations.values()):
            if cal not in cals:
                raise LatticeDataError(f"{w}: magnet {spec.name} names unknown calibration {cal}")
    hyst = raw.get("hysteresis")
    hysteresis = None
    if hyst is not None:
        hw = f"{w} [hysteresis]"
        hysteresis = HysteresisParameters(
            pass_to_pass_g=float(require(hyst, "pass_to_pass_g", hw)),
            sigma_known_branch_g=float(require(hyst, "sigma_known_branch_g", hw)),
            sigma_unknown_branch_g=float(require(hyst, "sigma_unknown_branch_g", hw)),
            preferred_branch=require(hyst, "preferred_branch", hw),
            overshoot_a=float(require(hyst, "overshoot_a", hw)),
            standardisation_cycles=int(require(hyst, "standardisation_cycles", hw)),
            min_step_a=float(require(hyst, "min_step_a", hw)),
        )
        if hysteresis.preferred_branch not in BRANCHES:
            raise LatticeDataError(f"{hw}: preferred_branch must be one of {BRANCHES}")
    rb = raw.get("readback")
    readback = None
    if rb is not None:
        readback = ReadbackResolution(
            current_resolution_a=float(require(rb, "current_resolution_a", f"{w} [readback]")),
            hall_resolution_g=float(require(rb, "hall_resolution_g", f"{w} [readback]")),
        )
    return DipoleCalibrations(
        version=version,
        bending_power_mev_per_g=float(require(raw, "bending_power_mev_per_g", w)),
        magnets=magnets,
        calibrations=cals,
        hysteresis=hysteresis,
        readback=readback,
    )


@functools.cache
def quadrupole_calibrations() -> QuadrupoleCalibrations:
    """Q1-Q4 calibration data from ``lattices/calibrations/quadrupoles.toml``."""
    path = data_file("calibrations", "quadrupoles.toml")
    raw = read_toml(path)
    version = require(raw, "version", str(path))
    return QuadrupoleCalibrations(
        version=version,
        magnets=_magnets(raw, str(path)),
        calibrations=_linear(
            raw, str(path), "offset_tpm", "slope_tpm_per_a", "gradient_rms_tpm", version
        ),
    )


@functools.cache
def energy_scales() -> EnergyScales:
    """Absolute energy scales from ``lattices/calibrations/energy_scale.toml``."""
    path = data_file("calibrations", "energy_scale.toml")
    raw = read_toml(path)
    w = str(path)
    version = require(raw, "version", w)
    scales = {}
    for name, s in require(raw, "scales", w).items():
        sw = f"{w} [scales.{name}]"
        ref = s.get("field_reference", "any")
        if ref not in ("any", *FIELD_REFERENCES):
            raise LatticeDataError(
                f"{sw}: field_reference must be 'any' or one of {FIELD_REFERENCES}"
            )
        scales[name] = EnergyScale(
            name=name,
            version=version,
            offset_mev=float(require(s, "offset_mev", sw)),
            sigma_mev=float(require(s, "sigma_mev", sw)),
            fit_rms_mev=float(s.get("fit_rms_mev", 0.0)),
            field_reference=ref,
            description=s.get("description", ""),
        )
    default = require(raw, "default_scale", w)
    if default not in scales:
        raise LatticeDataError(f"{w}: default_scale '{default}' is not defined")
    return EnergyScales(version=version, default_scale=default, scales=scales)


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
    for family in (dipole_calibrations().magnets, quadrupole_calibrations().magnets):
        if key in family:
            return family[key]
    allowed = ", ".join((*DIPOLES, *QUADRUPOLES))
    raise BeamlineInputError(f"unknown magnet '{magnet}'; known magnets: {allowed}")


def dipole_spec(magnet: str) -> MagnetSpec:
    """Spec of DHSTB01 or DHSTB02 (a clear error for any other name)."""
    return _family_spec(magnet, DIPOLES, "dipole")


def _family_spec(magnet: str, family: tuple[str, ...], kind: str) -> MagnetSpec:
    """Spec of ``magnet``, which must be one of ``family`` (its ``kind``, e.g. "dipole")."""
    spec = magnet_spec(magnet)
    if spec.name not in family:
        raise BeamlineInputError(f"{spec.name} is not a {kind}; {kind}s: {', '.join(family)}")
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
    name = spec.branch_calibrations.get(key)
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
    spec = _family_spec(magnet, QUADRUPOLES, "quadrupole")
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
