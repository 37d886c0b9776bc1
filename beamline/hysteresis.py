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

Branch and drift (:class:`HysteresisModel`, data ``lattices/calibrations/hysteresis_run3.toml``):
in the 2022 per-pass fits the field offset grew with time (33.9 -> 38.8 -> 44.5 -> 45.4 G)
and the only ascending pass came last, so approach direction and drift are confounded.
:func:`fit_hysteresis_model` separates them by weighted least squares with both terms,
``dB = base + drift * cycle + branch * s`` (``s`` = +1/2 descending, -1/2 ascending), and
keeps iron's sign for the branch term (descending above ascending) unless the fit contradicts
it by more than ``significance`` sigma. The branch curves of ``dipoles.toml`` (``run3_*_v2``)
are this model at ``reference_cycle``; a test checks that they agree. In a history the
branch part (+/- branch/2) and the drift part (drift per cycle times the cycles since the
first step; a new cycle starts at a reversal of the direction after a sweep of at least
``min_pass_span_a``) are reported separately.

The recommended approach: ``standardisation_cycles`` cycles to the supply maximum, then
every set point approached from the preferred side (the calibration's branch, else
``preferred_branch`` of the data); a step that would arrive from the other side is
preceded by an overshoot of ``overshoot_a`` beyond the set point. All parameters are in
``[hysteresis]`` of ``lattices/calibrations/dipoles.toml``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import calibration as cal
from .constants import momentum_mev_from_energy
from .datafiles import DataModel, load_toml_model
from .errors import BeamlineInputError, LatticeDataError
from .paths import data_file

#: Sign of the branch term per branch: the descending branch lies above (iron).
BRANCH_SIGN = {"descending": 0.5, "ascending": -0.5}


class PassData(DataModel):
    """One 2022 pass: its Hall-probe calibration, cycle (pass number in time order) and the
    beam-energy sub-range [MeV] its fit was made on."""

    calibration: str
    cycle: float
    energy_range_mev: tuple[float, float]


class HysteresisData(DataModel):
    """``lattices/calibrations/hysteresis_run3.toml``."""

    schema_version: int
    version: str
    magnet: str
    base_calibration: str
    offset_sigma_g: float
    significance: float
    reference_cycle: float
    min_pass_span_a: float
    samples_per_pass: int
    passes: tuple[PassData, ...]


@dataclass(frozen=True)
class PassOffset:
    """Mean Hall-probe field offset [G] of one pass from the base curve, over its currents
    [A] (``current_range_a``), with its branch and cycle."""

    calibration: str
    branch: str
    cycle: float
    current_range_a: tuple[float, float]
    offset_g: float


@dataclass(frozen=True)
class HysteresisModel:
    """``dB = base_g + drift_g_per_cycle * cycle + branch_g * s`` [G] relative to the base
    calibration; ``*_sigma_*`` 1-sigma uncertainties (scaled by sqrt(chi2/dof) when that
    exceeds 1); ``branch_fit_g`` the fitted branch term before the sign rule and
    ``branch_rule`` what the rule did; ``passes`` the data; ``chi2``/``dof`` of the fit."""

    magnet: str
    base_calibration: str
    base_g: float
    base_sigma_g: float
    drift_g_per_cycle: float
    drift_sigma_g_per_cycle: float
    branch_g: float
    branch_sigma_g: float
    branch_fit_g: float
    branch_rule: str
    reference_cycle: float
    chi2: float
    dof: int
    passes: tuple[PassOffset, ...]
    version: str = ""
    min_pass_span_a: float = 0.0

    def branch_offset_g(self, branch: str | None) -> float:
        """Branch part [G]: +branch/2 descending, -branch/2 ascending, 0 unknown."""
        b = cal.check_branch(branch)
        return 0.0 if b is None else BRANCH_SIGN[b] * self.branch_g

    def drift_offset_g(self, cycles: float) -> float:
        """Drift part [G] accumulated over ``cycles`` cycles."""
        return self.drift_g_per_cycle * cycles

    def offset_g(self, branch: str | None, cycle: float) -> float:
        """Total offset [G] from the base curve at ``cycle`` on ``branch``."""
        return self.base_g + self.drift_offset_g(cycle) + self.branch_offset_g(branch)


def pass_offsets(data: HysteresisData) -> list[PassOffset]:
    """Mean offset [G] of each pass's fit from the base curve over its own sub-range.

    The sub-range is given in beam energy on the 2022 scale (``padme_run3_v1``: the field is
    ``(E - offset)`` turned into a momentum over the bending power), sampled uniformly in
    field; the pass's fit gives the current of each sample.
    """
    scale = cal.energy_scale("padme_run3_v1")
    base = cal.dipole_calibration(data.magnet, data.base_calibration)
    out = []
    for p in data.passes:
        curve = cal.dipole_calibration(data.magnet, p.calibration)
        if curve.branch is None:
            raise LatticeDataError(f"hysteresis data: {p.calibration} has no branch")
        lo, hi = (
            cal.field_g_from_momentum(momentum_mev_from_energy(e - scale.offset_mev))
            for e in p.energy_range_mev
        )
        fields = np.linspace(lo, hi, data.samples_per_pass)
        currents = (fields - curve.offset) / curve.slope
        offsets = fields - (base.offset + base.slope * currents)
        out.append(
            PassOffset(
                calibration=p.calibration,
                branch=curve.branch,
                cycle=p.cycle,
                current_range_a=(float(currents.min()), float(currents.max())),
                offset_g=float(offsets.mean()),
            )
        )
    return out


def fit_hysteresis_model(
    offsets: list[PassOffset],
    *,
    sigma_g: float,
    significance: float = 2.0,
    reference_cycle: float = 0.0,
    magnet: str = "DHSTB01",
    base_calibration: str = "",
    version: str = "",
    min_pass_span_a: float = 0.0,
) -> HysteresisModel:
    """Weighted least-squares fit of base, drift and branch terms to per-pass offsets [G]
    (each with sigma ``sigma_g``), then iron's sign rule for the branch term (module doc).

    Needs both branches and at least two cycles; with no degree of freedom left the
    uncertainties are the propagated ``sigma_g`` alone.
    """
    if len({o.branch for o in offsets}) < 2 or len({o.cycle for o in offsets}) < 2:
        raise BeamlineInputError(
            "a branch and drift fit needs passes on both branches and at least two cycles"
        )
    if len(offsets) < 3 or not sigma_g > 0:
        raise BeamlineInputError("a branch and drift fit needs >= 3 passes and sigma_g > 0")
    a = np.array([[1.0, o.cycle, BRANCH_SIGN[o.branch]] for o in offsets])
    y = np.array([o.offset_g for o in offsets])
    cov = np.linalg.inv(a.T @ a) * sigma_g**2
    params = cov @ a.T @ y / sigma_g**2
    dof = len(offsets) - 3
    chi2 = float(np.sum((y - a @ params) ** 2) / sigma_g**2)
    if dof > 0 and chi2 / dof > 1.0:
        cov = cov * (chi2 / dof)
    err = np.sqrt(np.diag(cov))
    branch_fit = float(params[2])
    if branch_fit >= 0:
        branch, rule = branch_fit, "fit agrees with iron (descending above ascending)"
    elif branch_fit < -significance * err[2]:
        branch, rule = (
            branch_fit,
            (f"fit contradicts iron by {-branch_fit / err[2]:.1f} sigma: the data's sign is used"),
        )
    else:
        branch, rule = (
            0.0,
            (f"fit has the wrong sign by {-branch_fit / err[2]:.1f} sigma only: branch term 0"),
        )
    return HysteresisModel(
        magnet=magnet,
        base_calibration=base_calibration,
        base_g=float(params[0]),
        base_sigma_g=float(err[0]),
        drift_g_per_cycle=float(params[1]),
        drift_sigma_g_per_cycle=float(err[1]),
        branch_g=branch,
        branch_sigma_g=float(err[2]),
        branch_fit_g=branch_fit,
        branch_rule=rule,
        reference_cycle=reference_cycle,
        chi2=chi2,
        dof=dof,
        passes=tuple(offsets),
        version=version,
        min_pass_span_a=min_pass_span_a,
    )


@functools.cache
def hysteresis_model() -> HysteresisModel:
    """The DHSTB01 branch and drift model fitted to the 2022 per-pass data."""
    data = load_toml_model(data_file("calibrations", "hysteresis_run3.toml"), HysteresisData)
    return fit_hysteresis_model(
        pass_offsets(data),
        sigma_g=data.offset_sigma_g,
        significance=data.significance,
        reference_cycle=data.reference_cycle,
        magnet=data.magnet,
        base_calibration=data.base_calibration,
        version=data.version,
        min_pass_span_a=data.min_pass_span_a,
    )


def _model_for(magnet: str) -> HysteresisModel | None:
    model = hysteresis_model()
    return model if cal.dipole_spec(magnet).name == model.magnet else None


def parameters() -> cal.HysteresisParameters:
    """The hysteresis parameters of the dipole data file (``[hysteresis]``, required)."""
    return cal.dipole_calibrations().hysteresis


def branch_field_offset_g(magnet: str, current_a: float, branch: str | None) -> float:
    """Expected field offset [G] of the ``branch`` at ``current_a`` [A] relative to the
    branch-unknown Hall-probe curve: the branch part of :class:`HysteresisModel` (+/- half
    the branch term; 0 for an unknown branch or a magnet without data). Independent of the
    current in the model (the branch curves are parallel)."""
    del current_a  # parallel branch curves
    model = _model_for(magnet)
    return 0.0 if model is None else model.branch_offset_g(branch)


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
    ``warnings``; ``field_offset_g`` = ``branch_offset_g`` + ``drift_offset_g`` [G]: the
    branch part and the drift accumulated since the first step, ``cycle`` the cycles (sweeps)
    since the first step."""

    index: int
    current_a: float
    previous_current_a: float | None
    branch: str | None
    field_offset_g: float
    sigma_field_g: float
    approach_currents_a: tuple[float, ...]
    warnings: tuple[str, ...]
    branch_offset_g: float = 0.0
    drift_offset_g: float = 0.0
    cycle: int = 0


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
    model: HysteresisModel | None = None

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
    model = _model_for(spec.name)
    min_span = 0.0 if model is None else model.min_pass_span_a
    cycle = 0
    sweep_start = currents[0]
    # after the recommended standardisation the magnet arrives from the supply maximum
    rec_prev = top if preferred == "descending" else bottom
    for i, (current, branch) in enumerate(zip(currents, branches, strict=True)):
        warnings = []
        if (
            i > 0
            and branch is not None
            and branches[i - 1] is not None
            and branch != branches[i - 1]
        ):
            # a reversal after a full sweep starts a new cycle (pass) of the drift term
            if abs(currents[i - 1] - sweep_start) >= min_span:
                cycle += 1
            sweep_start = currents[i - 1]
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
        part_branch = branch_field_offset_g(spec.name, current, branch)
        part_drift = 0.0 if model is None else model.drift_offset_g(cycle)
        steps.append(
            HysteresisStep(
                index=i,
                current_a=current,
                previous_current_a=prev,
                branch=branch,
                field_offset_g=part_branch + part_drift,
                sigma_field_g=hysteresis_sigma_field_g(spec.name, current, branch),
                approach_currents_a=tuple(approach),
                warnings=tuple(warnings),
                branch_offset_g=part_branch,
                drift_offset_g=part_drift,
                cycle=cycle,
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
        model=model,
    )
