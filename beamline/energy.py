"""Beam energy from a dipole current or field readback and back, with provenance and sigma.

The chain (every step an exact inverse of the reverse step):

    current_a --(calibration, branch)--> field_g --(bending power)--> p_magnet [MeV/c]
      --> E_magnet = sqrt(p_magnet^2 + m_e^2) --(energy scale)--> E = E_magnet + offset_mev
      --> sqrt_s (target electron at rest)

``energy_mev`` is always the TOTAL beam energy on the named scale and ``momentum_mev`` the
beam momentum sqrt(E^2 - m_e^2) that goes with it; ``magnet_momentum_mev`` is the momentum
the dipole bends onto the design arc before the scale correction.

Choice of calibration: an explicitly named one; otherwise, when the scale is defined on the
Hall-probe field (``padme_run3_v1``), the magnet's Hall-probe calibration for the branch
(ascending / descending / unknown); otherwise the magnet's default (design) calibration. A
design-field calibration is refused with a Hall-probe scale (the BTF nominal curve reads
29-48 G below the Hall probe, ~2 MeV). A magnet without Hall-probe data (DHSTB02) defaults
to the scale ``none`` (with a warning).

Sigma contributions [MeV] (added in quadrature into ``sigma_energy_mev``):

* ``calibration_scatter``: ``field_rms_g`` of the calibration (not for a field readback);
* ``hysteresis``: known/unknown-branch field sigma (:mod:`beamline.hysteresis`; not for a
  field readback, which measures the field);
* ``readback_resolution``: PSU current (or Hall-probe) quantisation, resolution/sqrt(12);
* ``absolute_scale``: ``sigma_mev`` of the scale; ``scale_fit_rms``: its ``fit_rms_mev``.

Field sigmas are turned into energy with dE/dB = bending_power * p/E.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import calibration as cal
from . import hysteresis
from .constants import ELECTRON_MASS_MEV, energy_mev_from_momentum, momentum_mev_from_energy
from .errors import BeamlineInputError
from .kinematics import sqrt_s_mev


@dataclass(frozen=True)
class EnergyEstimate:
    """A beam energy with its setting, provenance and uncertainty.

    Energies [MeV] total, momenta [MeV/c], field [G], current [A]. ``calibration`` and
    ``scale`` are ``name@version`` labels; ``branch`` is None when unknown; ``source`` is
    what was given ("current", "field" or "energy"); ``relative_offset`` the relative
    momentum offset of the magnet setting w.r.t. the beam (DHSTB02 steering);
    ``extrapolated`` is True when the current lies outside the calibration's range.
    ``hysteresis_offset_g`` [G] is the expected field offset of the branch relative to the
    branch-unknown Hall-probe curve; it is already in ``field_g`` when the calibration is the
    branch's own (the default), and only informative for an explicitly named calibration.
    ``sigma_contributions_mev`` keys: calibration_scatter, hysteresis, readback_resolution,
    absolute_scale, scale_fit_rms.
    """

    magnet: str
    source: str
    energy_mev: float
    sqrt_s_mev: float
    momentum_mev: float
    magnet_momentum_mev: float
    field_g: float
    current_a: float
    calibration: str
    scale: str
    branch: str | None
    hysteresis_offset_g: float
    relative_offset: float
    sigma_energy_mev: float
    sigma_contributions_mev: dict[str, float] = field(default_factory=dict)
    extrapolated: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def sigma_sqrt_s_mev(self) -> float:
        """Sigma of sqrt(s) [MeV]: d sqrt(s)/dE = m_e / sqrt(s)."""
        return self.sigma_energy_mev * ELECTRON_MASS_MEV / self.sqrt_s_mev

    def as_row(self) -> dict[str, Any]:
        """Flat dict for tables and JSON (sigma contributions as ``sigma_<name>_mev``)."""
        row: dict[str, Any] = {
            "magnet": self.magnet,
            "source": self.source,
            "current_a": self.current_a,
            "field_g": self.field_g,
            "magnet_momentum_mev": self.magnet_momentum_mev,
            "momentum_mev": self.momentum_mev,
            "energy_mev": self.energy_mev,
            "sqrt_s_mev": self.sqrt_s_mev,
            "sigma_energy_mev": self.sigma_energy_mev,
            "sigma_sqrt_s_mev": self.sigma_sqrt_s_mev,
            "calibration": self.calibration,
            "scale": self.scale,
            "branch": self.branch or "unknown",
            "hysteresis_offset_g": self.hysteresis_offset_g,
            "relative_offset": self.relative_offset,
            "extrapolated": self.extrapolated,
            "warnings": list(self.warnings),
        }
        for key, value in self.sigma_contributions_mev.items():
            row[f"sigma_{key}_mev"] = value
        return row


@dataclass(frozen=True)
class _Choice:
    spec: cal.DipoleSpec
    curve: cal.LinearExcitation
    scale: cal.EnergyScale
    branch: str | None
    warnings: tuple[str, ...]


def _choose(magnet: str, calibration: str | None, branch: str | None, scale: str | None) -> _Choice:
    spec = cal.dipole_spec(magnet)
    b = cal.check_branch(branch)
    warnings: list[str] = []
    if scale is None and not spec.branch_calibrations:
        sc = cal.energy_scale("none")
        warnings.append(
            f"{spec.name} has no Hall-probe calibration: energy from its design excitation, "
            "scale 'none'"
        )
    else:
        sc = cal.energy_scale(scale)
    if calibration is not None:
        curve = cal.dipole_calibration(spec.name, calibration)
    elif sc.field_reference == "hall_probe":
        found = cal.branch_calibration(spec.name, b)
        if found is None:
            raise BeamlineInputError(
                f"{spec.name} has no Hall-probe calibration; the energy scale {sc.name} is "
                "defined on the Hall-probe field: use the scale 'none'"
            )
        curve = found
    else:
        curve = cal.dipole_calibration(spec.name)
    if not sc.accepts(curve):
        raise BeamlineInputError(
            f"energy scale {sc.name} is defined on the {sc.field_reference} field but "
            f"calibration {curve.name} gives the {curve.field_reference} field; use a "
            "hall_probe calibration or the scale 'none'"
        )
    if curve.branch is not None and b is not None and b != curve.branch:
        warnings.append(
            f"approach {b} is not covered by calibration {curve.name} ({curve.branch} branch)"
        )
    return _Choice(spec, curve, sc, b, tuple(warnings))


def _energy_from_magnet_momentum(p_magnet_mev: float, sc: cal.EnergyScale) -> float:
    return energy_mev_from_momentum(p_magnet_mev) + sc.offset_mev


def _magnet_momentum_from_energy(energy_mev: float, sc: cal.EnergyScale) -> float:
    e_magnet = energy_mev - sc.offset_mev
    if not (math.isfinite(energy_mev) and e_magnet > ELECTRON_MASS_MEV):
        raise BeamlineInputError(
            f"beam energy {energy_mev!r} MeV is not above the positron rest energy on scale "
            f"{sc.name} (offset {sc.offset_mev:g} MeV)"
        )
    return momentum_mev_from_energy(e_magnet)


def _de_dfield(p_magnet_mev: float) -> float:
    """dE/dB [MeV/G] at the magnet momentum ``p_magnet_mev``."""
    power = cal.dipole_calibrations().bending_power_mev_per_g
    return power * p_magnet_mev / energy_mev_from_momentum(p_magnet_mev)


def _readback() -> cal.ReadbackResolution:
    return cal.dipole_calibrations().readback


def _build(
    choice: _Choice,
    source: str,
    current_a: float,
    field_g: float,
    beam_p_magnet_mev: float,
    relative_offset: float,
    extrapolated: bool,
) -> EnergyEstimate:
    sc, curve = choice.scale, choice.curve
    energy = _energy_from_magnet_momentum(beam_p_magnet_mev, sc)
    dedb = _de_dfield(beam_p_magnet_mev)
    contrib: dict[str, float] = {}
    if source == "field":
        contrib["calibration_scatter"] = 0.0
        contrib["hysteresis"] = 0.0
        contrib["readback_resolution"] = _readback().sigma_field_g * dedb
    else:
        contrib["calibration_scatter"] = curve.value_rms * dedb
        contrib["hysteresis"] = (
            hysteresis.hysteresis_sigma_field_g(choice.spec.name, current_a, choice.branch) * dedb
        )
        contrib["readback_resolution"] = _readback().sigma_current_a * curve.slope * dedb
    contrib["absolute_scale"] = sc.sigma_mev
    contrib["scale_fit_rms"] = sc.fit_rms_mev
    warnings = list(choice.warnings)
    if extrapolated:
        warnings.append(
            f"extrapolated: {current_a:.4f} A ({field_g:.1f} G) is outside the range "
            f"{curve.range_text()} of calibration {curve.name}"
        )
    offset_g = 0.0
    if source != "field":
        offset_g = hysteresis.branch_field_offset_g(choice.spec.name, current_a, choice.branch)
    return EnergyEstimate(
        magnet=choice.spec.name,
        source=source,
        energy_mev=energy,
        sqrt_s_mev=sqrt_s_mev(energy),
        momentum_mev=momentum_mev_from_energy(energy),
        magnet_momentum_mev=cal.momentum_mev_from_field(field_g),
        field_g=field_g,
        current_a=current_a,
        calibration=curve.label,
        scale=sc.label,
        branch=choice.branch,
        hysteresis_offset_g=offset_g,
        relative_offset=relative_offset,
        sigma_energy_mev=math.sqrt(math.fsum(v * v for v in contrib.values())),
        sigma_contributions_mev=contrib,
        extrapolated=extrapolated,
        warnings=tuple(warnings),
    )


def _check_finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise BeamlineInputError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def energy_from_current(
    current_a: float,
    magnet: str = "DHSTB01",
    *,
    branch: str | None = None,
    calibration: str | None = None,
    scale: str | None = None,
    extrapolate: bool = False,
) -> EnergyEstimate:
    """Beam energy [MeV] that the dipole at set current ``current_a`` [A] bends onto the
    design orbit (planner view of a set point; checker view of a PSU current readback).

    ``branch``: how the set point was approached ("ascending", "descending", None unknown).
    ``extrapolate`` allows a current outside the calibration's range (flagged).
    """
    choice = _choose(magnet, calibration, branch, scale)
    current = _check_finite(current_a, f"{choice.spec.name} current in A")
    choice.spec.check_current(current)
    extrapolated = choice.curve.check_current(current, extrapolate=extrapolate)
    field_g = choice.curve.value(current)
    p_magnet = cal.momentum_mev_from_field(field_g)
    if p_magnet <= 0:
        raise BeamlineInputError(f"{choice.spec.name} at {current:g} A bends no positive momentum")
    return _build(choice, "current", current, field_g, p_magnet, 0.0, extrapolated)


def energy_from_field(
    field_g: float,
    magnet: str = "DHSTB01",
    *,
    calibration: str | None = None,
    scale: str | None = None,
    extrapolate: bool = False,
) -> EnergyEstimate:
    """Beam energy [MeV] from a Hall-probe field readback ``field_g`` [G] (checker view).

    The energy follows from the field alone (bending power and scale): no current
    calibration is involved, so a field is never refused for the calibration's range. The
    reported ``current_a`` is the current at which the calibration gives this field; when it
    and the field lie outside the calibration's data the estimate is flagged
    ``extrapolated`` with a warning. ``extrapolate`` is accepted for symmetry and unused.
    """
    del extrapolate  # a readback always converts
    choice = _choose(magnet, calibration, None, scale)
    b = _check_finite(field_g, f"{choice.spec.name} field in G")
    if b <= 0:
        raise BeamlineInputError(f"{choice.spec.name} field must be positive, got {b:g} G")
    current = choice.curve.current(b)
    extrapolated = choice.curve.is_extrapolation(current) and not choice.curve.field_in_range(b)
    return _build(choice, "field", current, b, cal.momentum_mev_from_field(b), 0.0, extrapolated)


def calibrated_energy_range_mev(
    magnet: str = "DHSTB01",
    *,
    branch: str | None = None,
    calibration: str | None = None,
    scale: str | None = None,
) -> tuple[float, float]:
    """Beam-energy range [MeV] covered by the calibration's trusted range (its current range,
    widened to its field range where it has one)."""
    choice = _choose(magnet, calibration, branch, scale)
    lo, hi = choice.curve.valid_current_a
    fields = [choice.curve.value(lo), choice.curve.value(hi)]
    if choice.curve.valid_field is not None:
        fields = [
            min(fields[0], choice.curve.valid_field[0]),
            max(fields[1], choice.curve.valid_field[1]),
        ]
    energies = []
    for b in fields:
        p = cal.momentum_mev_from_field(b)
        energies.append(_energy_from_magnet_momentum(max(p, 0.0), choice.scale))
    return energies[0], energies[1]


def current_for_energy(
    energy_mev: float,
    magnet: str = "DHSTB01",
    *,
    branch: str | None = None,
    calibration: str | None = None,
    scale: str | None = None,
    relative_offset: float | None = None,
    extrapolate: bool = False,
) -> EnergyEstimate:
    """Set current [A] for a beam of total energy ``energy_mev`` [MeV] (planner view).

    ``relative_offset`` (default: the magnet's ``default_relative_offset``, 0 for DHSTB01) sets
    the dipole for ``(1 + relative_offset)`` times the beam momentum (DHSTB02 steering). The
    sigma is that of the beam energy obtained at this current.
    """
    choice = _choose(magnet, calibration, branch, scale)
    energy = _check_finite(energy_mev, "beam energy in MeV")
    eps = choice.spec.default_relative_offset if relative_offset is None else relative_offset
    eps = _check_finite(eps, "relative offset")
    if not (-0.5 < eps < 0.5):
        raise BeamlineInputError(f"relative offset {eps:g} is not a small fraction (|eps| < 0.5)")
    p_beam = _magnet_momentum_from_energy(energy, choice.scale)
    field_g = cal.field_g_from_momentum(p_beam * (1.0 + eps))
    current = choice.curve.current(field_g)
    if choice.curve.is_extrapolation(current) and not extrapolate:
        e_lo, e_hi = calibrated_energy_range_mev(
            choice.spec.name, branch=branch, calibration=choice.curve.name, scale=choice.scale.name
        )
        raise BeamlineInputError(
            f"beam energy {energy:g} MeV is outside the calibrated range {e_lo:.2f}..{e_hi:.2f} "
            f"MeV ({choice.curve.range_text()}) of {choice.spec.name} calibration {choice.curve.name}, "
            f"scale {choice.scale.name}; extrapolating needs --extrapolate"
        )
    lim_lo, lim_hi = choice.spec.current_limits_a
    if (
        abs(current - lim_lo) <= cal.RANGE_TOLERANCE_A
        or abs(current - lim_hi) <= cal.RANGE_TOLERANCE_A
    ):
        current = min(max(current, lim_lo), lim_hi)  # round-off at a supply limit
    choice.spec.check_current(current)
    extrapolated = choice.curve.is_extrapolation(current)
    return _build(choice, "energy", current, field_g, p_beam, eps, extrapolated)
