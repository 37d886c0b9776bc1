"""Dipole hysteresis: approach branch of each set point, expected field offset, sigma, recipe.

The field of DHSTB01 at a given current depends on how the set point was approached
(facts 3: ~10 G between passes at equal current). This module turns a sequence of set
currents [A] into, per step:

* the **branch**: "descending" if the step was approached from above (previous set current
  higher), "ascending" if from below; a step smaller than ``min_step_a`` keeps the previous
  branch; the first step is "descending" after a standardisation cycle (which ends at the
  supply maximum), taken from ``previous_current_a`` if given, else unknown (``None``);
* the **expected field offset** [G]: field of the branch's Hall-probe calibration minus the
  field of the branch-unknown Hall-probe calibration at the same current (0 when unknown or
  when the magnet has no Hall-probe data);
* the **hysteresis sigma** [G]: ``sigma_known_branch_g`` for a known branch; for an unknown
  branch the larger of ``sigma_unknown_branch_g`` and
  ``sqrt(sigma_known^2 + (|B_desc - B_asc| / 2)^2)`` (half the separation of the branch curves);
* a **warning** for a step approached from a side the calibration does not cover.

The recommended approach: ``standardisation_cycles`` cycles to the supply maximum, then
every set point approached from the preferred side (the calibration's branch, else
``preferred_branch`` of the data); a step that would arrive from the other side is
preceded by an overshoot of ``overshoot_a`` beyond the set point. All parameters are in
``[hysteresis]`` of ``lattices/calibrations/dipoles.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from . import calibration as cal
from .errors import BeamlineInputError


def parameters() -> cal.HysteresisParameters:
    """The hysteresis parameters of the dipole data file (``[hysteresis]``, required)."""
    return cal.dipole_calibrations().hysteresis


def branch_field_offset_g(magnet: str, current_a: float, branch: str | None) -> float:
    """Expected field offset [G] of the ``branch`` at ``current_a`` [A] relative to the
    branch-unknown Hall-probe curve (0 for an unknown branch or a magnet without data)."""
    b = cal.check_branch(branch)
    if b is None:
        return 0.0
    curve = cal.branch_calibration(magnet, b)
    mean = cal.branch_calibration(magnet, None)
    if curve is None or mean is None:
        return 0.0
    return curve.value(current_a) - mean.value(current_a)


def hysteresis_sigma_field_g(magnet: str, current_a: float, branch: str | None) -> float:
    """Field uncertainty [G] from hysteresis at ``current_a`` [A] for a known/unknown branch."""
    params = parameters()
    if cal.check_branch(branch) is not None:
        return params.sigma_known_branch_g
    desc = cal.branch_calibration(magnet, "descending")
    asc = cal.branch_calibration(magnet, "ascending")
    sigma = params.sigma_unknown_branch_g
    if desc is not None and asc is not None:
        half_sep = 0.5 * abs(desc.value(current_a) - asc.value(current_a))
        sigma = max(sigma, math.hypot(params.sigma_known_branch_g, half_sep))
    return sigma


@dataclass(frozen=True)
class HysteresisStep:
    """One set point of a scan: ``index``, ``current_a`` [A], ``previous_current_a`` [A] (None
    for the first without history), ``branch`` (None unknown), ``field_offset_g`` [G],
    ``sigma_field_g`` [G], ``approach_currents_a`` (set currents to send, overshoot first),
    ``warnings``."""

    index: int
    current_a: float
    previous_current_a: float | None
    branch: str | None
    field_offset_g: float
    sigma_field_g: float
    approach_currents_a: tuple[float, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class HysteresisHistory:
    """Branch analysis of a sequence of set currents and the recommended approach.

    ``calibration`` (label) and ``calibration_branch`` (None: not branch-specific),
    ``preferred_branch``, ``standardisation_cycles`` recommended before the first step,
    ``standardisation_current_a`` [A] (supply maximum), ``steps``, ``recommended_sequence_a``
    (every set current to send, in order, overshoots included), ``recommendation`` (text),
    ``warnings`` (all step warnings).
    """

    magnet: str
    calibration: str
    calibration_branch: str | None
    preferred_branch: str
    standardisation_cycles: int
    standardisation_current_a: float
    steps: tuple[HysteresisStep, ...]
    recommended_sequence_a: tuple[float, ...]
    recommendation: str

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for s in self.steps for w in s.warnings)


def classify_branches(
    currents_a: Sequence[float],
    *,
    previous_current_a: float | None = None,
    standardised: bool = False,
    min_step_a: float | None = None,
) -> list[str | None]:
    """Branch of each set current [A]: "ascending", "descending" or None (unknown).

    ``previous_current_a`` [A] is the set current before the first step; ``standardised``
    means a standardisation cycle (ending at the supply maximum) preceded the first step.
    """
    step = parameters().min_step_a if min_step_a is None else min_step_a
    out: list[str | None] = []
    branch: str | None = "descending" if standardised else None
    prev = previous_current_a
    for current in currents_a:
        if prev is not None:
            if current < prev - step:
                branch = "descending"
            elif current > prev + step:
                branch = "ascending"
        out.append(branch)
        prev = current
    return out


def hysteresis_history(
    currents_a: Sequence[float],
    magnet: str = "DHSTB01",
    *,
    calibration: str | None = None,
    previous_current_a: float | None = None,
    standardised: bool = False,
) -> HysteresisHistory:
    """Branch, expected field offset and sigma of every set current [A] of a scan, warnings
    for steps the calibration does not cover, and the recommended approach.

    ``calibration`` names the dipole calibration the plan uses (default: the magnet's
    Hall-probe calibration of the preferred branch, else its default calibration).
    """
    params = parameters()
    spec = cal.dipole_spec(magnet)
    currents = [float(c) for c in currents_a]
    if not currents:
        raise BeamlineInputError("hysteresis history needs at least one set current")
    for c in currents:
        if not math.isfinite(c):
            raise BeamlineInputError(f"{spec.name} set current must be a finite number of A")
        spec.check_current(c)
    if previous_current_a is not None:
        spec.check_current(previous_current_a)
    if calibration is None:
        curve = (
            cal.branch_calibration(spec.name, params.preferred_branch)
            or cal.branch_calibration(spec.name, None)
            or cal.dipole_calibration(spec.name)
        )
    else:
        curve = cal.dipole_calibration(spec.name, calibration)
    preferred = curve.branch or params.preferred_branch
    top = spec.current_limits_a[1]
    bottom = spec.current_limits_a[0]
    branches = classify_branches(
        currents, previous_current_a=previous_current_a, standardised=standardised
    )
    steps = []
    sequence: list[float] = []
    prev = previous_current_a
    # after the recommended standardisation the magnet arrives from the supply maximum
    rec_prev = top if preferred == "descending" else bottom
    for i, (current, branch) in enumerate(zip(currents, branches, strict=True)):
        warnings = []
        if branch is None:
            warnings.append(
                f"step {i} ({current:g} A): approach side unknown (no previous current, no "
                "standardisation); hysteresis sigma is the unknown-branch one"
            )
        elif curve.branch is not None and branch != curve.branch:
            warnings.append(
                f"step {i} ({current:g} A) is approached {branch}; calibration {curve.label} "
                f"covers the {curve.branch} branch only"
            )
        approach: list[float] = []
        natural = "descending" if current < rec_prev else "ascending"
        if abs(current - rec_prev) > params.min_step_a and natural != preferred:
            over = (
                current + params.overshoot_a
                if preferred == "descending"
                else current - params.overshoot_a
            )
            approach.append(min(max(over, bottom), top))
        approach.append(current)
        sequence.extend(approach)
        rec_prev = current
        steps.append(
            HysteresisStep(
                index=i,
                current_a=current,
                previous_current_a=prev,
                branch=branch,
                field_offset_g=branch_field_offset_g(spec.name, current, branch),
                sigma_field_g=hysteresis_sigma_field_g(spec.name, current, branch),
                approach_currents_a=tuple(approach),
                warnings=tuple(warnings),
            )
        )
        prev = current
    side = "above" if preferred == "descending" else "below"
    end = top if preferred == "descending" else bottom
    recommendation = (
        f"standardise {spec.name}: {params.standardisation_cycles} cycles "
        f"{bottom:g} A -> {top:g} A, ending at {end:g} A; then approach every set point from "
        f"{side} ({preferred}), overshooting by {params.overshoot_a:g} A where the scan "
        "reverses"
    )
    return HysteresisHistory(
        magnet=spec.name,
        calibration=curve.label,
        calibration_branch=curve.branch,
        preferred_branch=preferred,
        standardisation_cycles=params.standardisation_cycles,
        standardisation_current_a=top,
        steps=tuple(steps),
        recommended_sequence_a=tuple(sequence),
        recommendation=recommendation,
    )
