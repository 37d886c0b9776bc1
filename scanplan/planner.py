"""Scan planner: a mass (or sqrt(s), or beam-energy) range in, a :class:`Plan` of points out.

Rules (issue 6; defaults in ``lattices/physics/scan_defaults.toml``):

* **Spacing.** The combined spacing of all passes is at most ``step_fraction`` times the FWHM
  of the expected line shape (Voigt of the beam spread ``BES * E_res`` and the
  electron-motion Lorentzian, :mod:`scanplan.physics.lineshape`). The width is taken where
  the line is narrowest over the range (``width_reference = "min"``) or at its centre. The
  points fill the range evenly: ``n = ceil(span / max_step) + 1`` points, both ends included.
* **Passes.** Points are dealt to ``passes`` interleaved passes (rank from the starting end
  modulo ``passes``): pass 0 is the coarse pass, the others fall half-way (for 2) between its
  points. Every pass is monotone in DHSTB01 current in ``direction``, so each stays on one
  hysteresis branch; the branch recorded for a point is its pass direction, which assumes
  the first point of every pass is approached with the overshoot recipe of
  :mod:`beamline.hysteresis` (done by the crew when the magnet is moved back for a pass).
* **Control points** below (2022) or above (2025) the range, or none; they form their own
  pass, placed after the first pass (2022), at the start or at the end.
* **POT.** Either POT per point, or a total budget [h] shared equally by all points:
  ``hours = POT / (positrons_per_bunch * repetition_rate_hz * uptime_fraction * 3600)``
  plus ``overhead_hours_per_point`` of changeover; a calendar follows from a start time.
* **Currents.** DHSTB01 from its Hall-probe calibration of the pass branch and the energy
  scale (:func:`beamline.energy.current_for_energy`); DHSTB02 from its own (design)
  calibration with the relative offset of the setting; slits from the settings file;
  quadrupole gradients scaled with the beam momentum from the settings' reference energy
  (``quad_scaling = "momentum"``) or kept at the settings' currents (``"fixed"``).

Per point, the yields are for a resonance at the point's own sqrt(s) (on-peak):
``signal_yield_per_pot_g2 = Y * V(0)``; the sensitivity module evaluates any other mass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

from beamline import calibration as cal
from beamline import energy as beam_energy
from beamline.constants import momentum_mev_from_energy
from beamline.kinematics import e_beam_for_sqrt_s_mev, resonance_energy_mev, sqrt_s_mev
from beamline.lattice import line_spec, load_settings, read_strength_values
from hw_interfaces.clock import iso_utc, parse_utc

from .errors import ScanplanError
from .physics.lineshape import line_fwhm_mev
from .physics.params import PhysicsModel, ScanDefaults, load_physics, load_scan_defaults
from .physics.yields import background_per_pot, in_table_range, signal_efficiency
from .physics.yields import signal_yield_per_pot_g2 as _yield
from .records import Plan, PlanInputs, Point, Provenance, SpreadEngineInfo

SECONDS_PER_HOUR = 3600.0
SLITS = ("SLTB2", "SLTB3", "SLTB4", "SLTB5")
QUADS = ("Q1", "Q2", "Q3", "Q4")
RangeKind = Literal["mass", "sqrt_s", "energy"]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan. Exactly one of ``mass_range_mev``, ``sqrt_s_range_mev`` and
    ``energy_range_mev`` [MeV, (low, high)]; ``None`` elsewhere means "data-file default".

    Spacing: ``step_fraction`` of the line FWHM (``width_reference`` "min"/"centre"),
    ``step_mev`` an explicit maximum combined spacing [MeV] (must obey the rule),
    ``passes`` (>= 1) interleaved passes in ``direction`` ("descending"/"ascending").
    Control: ``control`` "below"/"above"/"none", explicit ``control_energies_mev`` [MeV] or
    ``control_count``/``control_offset_mev``/``control_step_mev``; ``control_position``
    "after_first_pass"/"start"/"end".
    Beam time: ``pot_per_point`` or ``budget_hours`` [h]; ``positrons_per_bunch``,
    ``repetition_rate_hz`` [Hz], ``uptime_fraction``, ``overhead_hours_per_point`` [h],
    ``start_utc`` (ISO time of the first changeover, for the calendar).
    Physics: ``bes`` relative beam-energy spread, or ``bes_from_spread`` to take the rms
    relative spread of the transmitted beam from the spread engine
    (:func:`beamline.spread.compute_spread` with the settings' slits, ``spread_particles``
    per energy, ``spread_seed``, ``spread_scheduler``) at the ends and centre of the range
    (and the control block), linear in beam energy in between;
    ``lorentz_width_mev`` override of w_L [MeV],
    ``reference_coupling`` g, ``physics`` data name.
    Machine: ``settings`` name, ``quad_scaling`` "momentum"/"fixed", ``energy_scale`` name,
    ``dhstb02_relative_offset`` (p_02 = (1 + offset) p_beam), ``extrapolate`` to allow
    currents outside the calibrations' trusted ranges.
    """

    mass_range_mev: tuple[float, float] | None = None
    sqrt_s_range_mev: tuple[float, float] | None = None
    energy_range_mev: tuple[float, float] | None = None
    step_fraction: float | None = None
    step_mev: float | None = None
    width_reference: str | None = None
    passes: int | None = None
    direction: str | None = None
    control: str = "below"
    control_energies_mev: tuple[float, ...] | None = None
    control_count: int | None = None
    control_offset_mev: float | None = None
    control_step_mev: float | None = None
    control_position: str | None = None
    pot_per_point: float | None = None
    budget_hours: float | None = None
    positrons_per_bunch: float | None = None
    repetition_rate_hz: float | None = None
    uptime_fraction: float | None = None
    overhead_hours_per_point: float | None = None
    start_utc: str | None = None
    bes: float | None = None
    bes_from_spread: bool = False
    spread_particles: int = 200_000
    spread_seed: int = 0
    spread_scheduler: str | None = None
    lorentz_width_mev: float | None = None
    reference_coupling: float | None = None
    physics: str = "padme_x17_run3"
    settings: str | None = None
    quad_scaling: str = "momentum"
    energy_scale: str | None = None
    dhstb02_relative_offset: float | None = None
    extrapolate: bool = False
    name: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def _finite(value: float, what: str, *, positive: bool = False, nonneg: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0) or (nonneg and v < 0):
        need = " > 0" if positive else " >= 0" if nonneg else ""
        raise ScanplanError(f"{what} must be a finite number{need}, got {value!r}")
    return v


def resolve_energy_range(
    req: PlanRequest,
) -> tuple[RangeKind, tuple[float, float], tuple[float, float]]:
    """Which range was given, its (low, high) values and the beam-energy range [MeV]."""
    given = [
        (k, v)
        for k, v in (
            ("mass", req.mass_range_mev),
            ("sqrt_s", req.sqrt_s_range_mev),
            ("energy", req.energy_range_mev),
        )
        if v is not None
    ]
    if len(given) != 1:
        raise ScanplanError("give exactly one of a mass, a sqrt(s) or a beam-energy range")
    kind, rng = given[0]
    lo, hi = (_finite(x, f"{kind} range bound [MeV]", positive=True) for x in rng)
    if hi < lo:
        raise ScanplanError(f"{kind} range {lo:g}:{hi:g} MeV has its high end below its low end")
    try:
        if kind == "energy":
            e = (lo, hi)
        elif kind == "mass":
            e = (resonance_energy_mev(lo), resonance_energy_mev(hi))
        else:
            e = (e_beam_for_sqrt_s_mev(lo), e_beam_for_sqrt_s_mev(hi))
    except ValueError as exc:
        raise ScanplanError(f"{kind} range {lo:g}:{hi:g} MeV: {exc}") from None
    spec = line_spec()
    for x in e:
        if not (spec.energy_range_mev[0] <= x <= spec.energy_range_mev[1]):
            raise ScanplanError(
                f"{kind} range {lo:g}:{hi:g} MeV needs beam energies {e[0]:.2f}..{e[1]:.2f} MeV, "
                f"outside what the line delivers ({spec.energy_range_mev[0]:g}.."
                f"{spec.energy_range_mev[1]:g} MeV)"
            )
    return kind, (lo, hi), e  # type: ignore[return-value]


def rule_width_mev(
    e_lo_mev: float,
    e_hi_mev: float,
    bes: float | Callable[[float], float],
    model: PhysicsModel,
    reference: str,
) -> float:
    """Line FWHM [MeV] the spacing rule refers to over the beam-energy range (``bes`` a
    relative spread or a function of the beam energy [MeV])."""

    def at(e: float) -> float:
        return line_fwhm_mev(e, bes(e) if callable(bes) else bes, model)

    if reference == "min":  # sampled: the BES may vary along the range (spread engine)
        samples = [e_lo_mev + (e_hi_mev - e_lo_mev) * i / 40 for i in range(41)]
        return min(at(e) for e in samples)
    if reference == "centre":
        return at(0.5 * (e_lo_mev + e_hi_mev))
    raise ScanplanError(f"width reference must be 'min' or 'centre', got {reference!r}")


def grid_energies_mev(e_lo_mev: float, e_hi_mev: float, max_step_mev: float) -> list[float]:
    """Evenly spaced energies [MeV] from low to high, both ends included, spacing <= max."""
    span = e_hi_mev - e_lo_mev
    if span <= 0:
        return [e_lo_mev]
    n = math.ceil(span / max_step_mev - 1e-9) + 1
    step = span / (n - 1)
    return [e_lo_mev + i * step for i in range(n)]


def assign_passes(energies_mev: list[float], passes: int, direction: str) -> list[list[float]]:
    """Deal grid energies to interleaved passes, each sorted in ``direction``.

    The rank is counted from the end the scan starts at (top for descending), so pass 0
    (coarse) starts at the range edge and pass k sits k/passes of a coarse step inside.
    """
    ordered = sorted(energies_mev, reverse=(direction == "descending"))
    return [ordered[k::passes] for k in range(passes)]


def _control_energies(
    req: PlanRequest, defaults: ScanDefaults, e_range: tuple[float, float]
) -> list[float]:
    side = req.control
    if side not in ("below", "above", "none"):
        raise ScanplanError(f"control must be 'below', 'above' or 'none', got {side!r}")
    if req.control_energies_mev is not None:
        if side == "none" and req.control_energies_mev:
            raise ScanplanError("control energies given with --control none")
        return [_finite(e, "control energy [MeV]", positive=True) for e in req.control_energies_mev]
    if side == "none":
        return []
    d = defaults.control_side(side)
    count = d.count if req.control_count is None else int(req.control_count)
    offset = d.offset_mev if req.control_offset_mev is None else req.control_offset_mev
    step = d.step_mev if req.control_step_mev is None else req.control_step_mev
    if count < 0:
        raise ScanplanError(f"control count must be >= 0, got {count}")
    _finite(offset, "control offset [MeV]", positive=True)
    _finite(step, "control step [MeV]", positive=True)
    if side == "below":
        return [e_range[0] - offset - i * step for i in range(count)]
    return [e_range[1] + offset + i * step for i in range(count)]


def pot_rate_per_hour(
    positrons_per_bunch: float, repetition_rate_hz: float, uptime: float
) -> float:
    """POT per wall-clock hour [1/h]."""
    return positrons_per_bunch * repetition_rate_hz * uptime * SECONDS_PER_HOUR


def parse_start_utc(text: str) -> datetime:
    """A calendar start time (ISO 8601, UTC if naive); anything else is a ScanplanError."""
    try:
        return parse_utc(text)
    except ValueError:
        raise ScanplanError(
            f"start time '{text}' is not an ISO date/time (e.g. 2026-03-01T08:00Z)"
        ) from None


def _settings_values(settings_name: str | None) -> tuple[Any, dict[str, float]]:
    s = load_settings(settings_name)
    values = read_strength_values(s.strength_file)
    need = [f"{x.lower()}_gap_mm" for x in SLITS] + [f"i_{q.lower()}_a" for q in QUADS]
    missing = [k for k in need if k not in values]
    if missing:
        raise ScanplanError(f"settings {s.name} lacks {', '.join(missing)}")
    return s, values


def _quad_currents(
    e_beam_mev: float, settings: Any, values: dict[str, float], scaling: str
) -> dict[str, float]:
    out = {}
    ratio = momentum_mev_from_energy(e_beam_mev) / momentum_mev_from_energy(
        settings.reference_energy_mev
    )
    for q in QUADS:
        i_ref = values[f"i_{q.lower()}_a"]
        if scaling == "fixed":
            current = i_ref
        else:
            g = cal.quad_gradient_tpm(q, i_ref, settings.quadrupole_calibration) * ratio
            current = cal.quad_current_for_gradient(q, g, settings.quadrupole_calibration)
        cal.magnet_spec(q).check_current(current)
        out[q] = current
    return out


def plan_scan(req: PlanRequest) -> Plan:
    """Build the plan for ``req`` (pure: reads only versioned data files). The result is not
    sealed; :func:`scanplan.records.save_plan` seals and writes it."""
    if req.pot_per_point is not None and req.budget_hours is not None:
        raise ScanplanError("give either POT per point or a beam-time budget, not both")
    if req.bes_from_spread and req.bes is not None:
        raise ScanplanError("give either a BES or --bes-from-spread, not both")
    defaults = load_scan_defaults()
    model = load_physics(req.physics)
    if req.lorentz_width_mev is not None:
        model = model.with_overrides(
            lorentz_width_mev=_finite(req.lorentz_width_mev, "Lorentz width [MeV]", nonneg=True)
        )
    if req.reference_coupling is not None:
        model = model.with_overrides(
            reference_coupling=_finite(req.reference_coupling, "reference coupling", positive=True)
        )
    bes = model.signal.default_bes if req.bes is None else _finite(req.bes, "BES", nonneg=True)
    if not bes < 0.1:
        raise ScanplanError(f"BES {bes:g} is not a relative spread (< 0.1)")
    if bes == 0 and model.lorentz_gamma_mev == 0:
        raise ScanplanError("BES and the Lorentz width are both zero: the line has no width")
    fraction = defaults.spacing.step_fraction if req.step_fraction is None else req.step_fraction
    _finite(fraction, "step fraction", positive=True)
    width_ref = req.width_reference or defaults.spacing.width_reference
    passes = defaults.spacing.passes if req.passes is None else int(req.passes)
    if passes < 1:
        raise ScanplanError(f"passes must be >= 1, got {passes}")
    direction = (req.direction or defaults.spacing.direction).lower()
    if direction not in cal.BRANCHES:
        raise ScanplanError(f"direction must be 'descending' or 'ascending', got {direction!r}")
    position = req.control_position or defaults.control.position
    if position not in ("after_first_pass", "start", "end"):
        raise ScanplanError("control position must be after_first_pass, start or end")
    if req.quad_scaling not in ("momentum", "fixed"):
        raise ScanplanError(f"quad scaling must be 'momentum' or 'fixed', got {req.quad_scaling!r}")

    kind, given, e_range = resolve_energy_range(req)
    controls = sorted(
        _control_energies(req, defaults, e_range), reverse=(direction == "descending")
    )
    spread_info: SpreadEngineInfo | None = None
    if req.bes_from_spread:
        if req.bes is not None:
            raise ScanplanError("give either a BES or --bes-from-spread, not both")
        bes_of, spread_info = _bes_from_spread(req, e_range, controls)
    else:

        def bes_of(e: float) -> float:
            return bes

    width = rule_width_mev(e_range[0], e_range[1], bes_of, model, width_ref)
    max_step = fraction * width
    if req.step_mev is not None:
        step = _finite(req.step_mev, "step [MeV]", positive=True)
        if step > max_step * (1 + 1e-9):
            raise ScanplanError(
                f"step {step:g} MeV exceeds the spacing rule: {fraction:g} x line FWHM "
                f"{width:.3f} MeV = {max_step:.3f} MeV (raise --step-fraction to allow it)"
            )
        max_step = step
    if e_range[1] - e_range[0] <= defaults.validation.duplicate_tolerance_mev:
        # narrower than two distinct points: one point at the centre
        e_range = (0.5 * (e_range[0] + e_range[1]),) * 2
    grid = grid_energies_mev(e_range[0], e_range[1], max_step)
    combined = (grid[-1] - grid[0]) / (len(grid) - 1) if len(grid) > 1 else 0.0
    blocks = [
        (k, "on_resonance", energies)
        for k, energies in enumerate(assign_passes(grid, passes, direction))
    ]
    blocks = [b for b in blocks if b[2]]
    if controls:
        cblock = (len(blocks), "control", controls)
        if position == "start":
            blocks.insert(0, cblock)
        elif position == "after_first_pass":
            blocks.insert(1, cblock)
        else:
            blocks.append(cblock)
    # a control point must stay clear of the scanned line shapes
    min_dist = defaults.control.min_distance_fwhm * width
    for e in controls:
        dist = max(e_range[0] - e, e - e_range[1])
        if dist < min_dist:
            raise ScanplanError(
                f"control point {e:.2f} MeV is {dist:.2f} MeV from the scanned range "
                f"{e_range[0]:.2f}..{e_range[1]:.2f} MeV; needs >= {min_dist:.2f} MeV "
                f"({defaults.control.min_distance_fwhm:g} line FWHM)"
            )
    n_points = sum(len(b[2]) for b in blocks)

    # beam time
    ppb = (
        defaults.beam_time.positrons_per_bunch
        if req.positrons_per_bunch is None
        else req.positrons_per_bunch
    )
    rep = (
        defaults.beam_time.repetition_rate_hz
        if req.repetition_rate_hz is None
        else req.repetition_rate_hz
    )
    uptime = (
        defaults.beam_time.uptime_fraction if req.uptime_fraction is None else req.uptime_fraction
    )
    overhead = (
        defaults.beam_time.overhead_hours_per_point
        if req.overhead_hours_per_point is None
        else req.overhead_hours_per_point
    )
    _finite(ppb, "positrons per bunch", positive=True)
    _finite(rep, "repetition rate [Hz]", positive=True)
    _finite(overhead, "overhead per point [h]", nonneg=True)
    if not (0 < uptime <= 1):
        raise ScanplanError(f"uptime fraction must lie in (0, 1], got {uptime!r}")
    rate = pot_rate_per_hour(ppb, rep, uptime)
    if req.budget_hours is not None:
        budget = _finite(req.budget_hours, "budget [h]", positive=True)
        beam_hours = budget / n_points - overhead
        if beam_hours <= 0:
            raise ScanplanError(
                f"budget {budget:g} h is too small for {n_points} points: the changeover alone "
                f"takes {overhead:g} h per point ({n_points * overhead:g} h in all)"
            )
        pot = beam_hours * rate
        pot_mode = "budget"
    else:
        pot = defaults.beam_time.pot_per_point if req.pot_per_point is None else req.pot_per_point
        _finite(pot, "POT per point", positive=True)
        beam_hours = pot / rate
        pot_mode = "pot_per_point"
    start = parse_start_utc(req.start_utc) if req.start_utc else None

    settings, values = _settings_values(req.settings)
    eps02 = req.dhstb02_relative_offset
    points: list[Point] = []
    notes = list(req.notes)
    extrapolated: list[int] = []
    outside_table: list[int] = []
    dhstb02_label = ""
    period = 0
    for pass_index, kind_pt, energies in blocks:
        for e in energies:
            est01 = beam_energy.current_for_energy(
                e, "DHSTB01", branch=direction, scale=req.energy_scale, extrapolate=req.extrapolate
            )
            est02 = beam_energy.current_for_energy(
                e, "DHSTB02", relative_offset=eps02, extrapolate=req.extrapolate
            )
            dhstb02_label = f"{est02.calibration} on {est02.scale}"
            if est01.extrapolated or est02.extrapolated:
                extrapolated.append(period)
            if not in_table_range(e, model):
                outside_table.append(period)
            quads = _quad_currents(e, settings, values, req.quad_scaling)
            rs = sqrt_s_mev(e)
            eff = float(signal_efficiency(e, model))
            bes_e = bes_of(e)
            y = float(_yield(rs, e, bes_e, model))
            points.append(
                Point(
                    period=period,
                    pass_index=pass_index,
                    kind=kind_pt,  # type: ignore[arg-type]
                    e_beam_mev=e,
                    sigma_e_beam_mev=est01.sigma_energy_mev,
                    sqrt_s_mev=rs,
                    sigma_sqrt_s_mev=est01.sigma_sqrt_s_mev,
                    dhstb01_current_a=est01.current_a,
                    dhstb02_current_a=est02.current_a,
                    calibration=est01.calibration,
                    energy_scale=est01.scale,
                    branch=direction,  # type: ignore[arg-type]
                    sltb2_mm=values["sltb2_gap_mm"],
                    sltb3_mm=values["sltb3_gap_mm"],
                    sltb4_mm=values["sltb4_gap_mm"],
                    sltb5_mm=values["sltb5_gap_mm"],
                    q1_current_a=quads["Q1"],
                    q2_current_a=quads["Q2"],
                    q3_current_a=quads["Q3"],
                    q4_current_a=quads["Q4"],
                    rel_spread=bes_e,
                    target_pot=pot,
                    hours=beam_hours,
                    background_per_pot=float(background_per_pot(e, model)),
                    signal_efficiency=eff,
                    signal_yield_per_pot_g2=y,
                    expected_signal_ref=model.signal.reference_coupling**2 * pot * eff * y,
                )
            )
            period += 1
    if extrapolated:
        notes.append(
            f"periods {extrapolated} use currents outside the calibrations' trusted ranges "
            "(extrapolated on request)"
        )
    if outside_table:
        notes.append(
            f"periods {outside_table} lie outside the efficiency/background table "
            f"{model.selection.e_beam_nodes_mev[0]:g}..{model.selection.e_beam_nodes_mev[-1]:g} MeV: linear extrapolation"
        )
    inputs = PlanInputs(
        range_kind=kind,
        range_mev=given,
        e_beam_range_mev=e_range,
        step_fraction=fraction,
        width_reference=width_ref,  # type: ignore[arg-type]
        rule_width_mev=width,
        max_step_mev=max_step,
        combined_step_mev=combined,
        coarse_step_mev=combined * passes,
        passes=passes,
        direction=direction,  # type: ignore[arg-type]
        control=req.control,  # type: ignore[arg-type]
        control_energies_mev=controls,
        control_position=position,  # type: ignore[arg-type]
        pot_mode=pot_mode,
        pot_per_point=pot,
        budget_hours=req.budget_hours,
        positrons_per_bunch=ppb,
        repetition_rate_hz=rep,
        uptime_fraction=uptime,
        overhead_hours_per_point=overhead,
        pot_rate_per_hour=rate,
        start_utc=iso_utc(start) if start else None,
        total_hours=n_points * (beam_hours + overhead),
        bes=bes if spread_info is None else None,
        bes_source="given" if spread_info is None else "spread_engine",
        spread_engine=spread_info,
        physics=model,
        scan_defaults_version=defaults.version,
        quad_scaling=req.quad_scaling,  # type: ignore[arg-type]
        dhstb02_relative_offset=eps02
        if eps02 is not None
        else cal.dipole_spec("DHSTB02").default_relative_offset,
        dhstb02_calibration=dhstb02_label,
        extrapolate=req.extrapolate,
        duplicate_tolerance_mev=defaults.validation.duplicate_tolerance_mev,
        control_min_distance_fwhm=defaults.control.min_distance_fwhm,
        notes=notes,
    )
    prov = provenance(settings)
    return Plan(created_utc=iso_utc(), name=req.name, provenance=prov, inputs=inputs, points=points)


def _bes_from_spread(
    req: PlanRequest, e_range: tuple[float, float], controls: list[float]
) -> tuple[Callable[[float], float], SpreadEngineInfo]:
    """Relative rms spread of the transmitted beam from the spread engine at the range ends,
    its centre and the control-block centre; linear in beam energy in between and beyond."""
    import numpy as np

    from beamline.spread import compute_spread

    energies = {e_range[0], 0.5 * (e_range[0] + e_range[1]), e_range[1]}
    if controls:
        energies.add(0.5 * (min(controls) + max(controls)))
    if int(req.spread_particles) < 1000:
        raise ScanplanError("--spread-particles must be >= 1000")
    result = compute_spread(
        sorted(energies),
        settings=req.settings,
        n_particles=int(req.spread_particles),
        seed=int(req.spread_seed),
        scheduler=req.spread_scheduler or "local",
    )
    table = result.table.groupby("energy_mev", sort=True).first()
    rel = table["rel_spread_rms"].to_numpy(dtype=float)
    if not np.all(np.isfinite(rel)) or np.any(rel <= 0):
        raise ScanplanError(
            "spread engine: no beam transmitted at some energy with these slits; "
            "give --bes instead or more --spread-particles"
        )
    xs = table.index.to_numpy(dtype=float)

    def bes_of(e: float) -> float:
        if xs.size == 1:
            return float(rel[0])
        i = 0 if e < xs[0] else xs.size - 2 if e > xs[-1] else None
        if i is None:
            return float(np.interp(e, xs, rel))
        value = rel[i] + (e - xs[i]) * (rel[i + 1] - rel[i]) / (xs[i + 1] - xs[i])
        return float(max(value, 0.5 * rel.min()))

    info = SpreadEngineInfo(
        energies_mev=xs.tolist(),
        rel_spread_rms=rel.tolist(),
        n_transmitted=[int(x) for x in table["n_transmitted"]],
        positrons_per_bunch=[float(x) for x in table["positrons_per_bunch"]],
        particles=int(req.spread_particles),
        seed=int(req.spread_seed),
    )
    return bes_of, info


def provenance(settings: Any) -> Provenance:
    """Tool, lattice, settings, calibration and energy-scale versions."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tool_version = version("btf-scanplan")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        tool_version = "0+unknown"
    return Provenance(
        tool="btf-scanplan",
        tool_version=tool_version,
        lattice_version=line_spec().version,
        settings=settings.name,
        settings_version=settings.version,
        calibration_version=f"{cal.dipole_calibrations().version}; {cal.quadrupole_calibrations().version}",
        energy_scale_version=cal.energy_scales().version,
        beam=settings.beam,
    )


def request_from_dict(d: dict[str, Any]) -> PlanRequest:
    """Rebuild a request from keyword values (tuples from lists)."""
    kw = dict(d)
    for k in (
        "mass_range_mev",
        "sqrt_s_range_mev",
        "energy_range_mev",
        "control_energies_mev",
        "notes",
    ):
        if kw.get(k) is not None:
            kw[k] = tuple(kw[k])
    return PlanRequest(**kw)


def request_as_dict(req: PlanRequest) -> dict[str, Any]:
    return asdict(req)


@dataclass(frozen=True)
class CalendarEntry:
    """When a point is taken: changeover from ``changeover_utc``, beam from ``start_utc`` to
    ``end_utc`` (ISO, or hours from the plan start when the plan has no start time)."""

    period: int
    changeover_start_h: float
    beam_start_h: float
    beam_end_h: float
    start_utc: str | None
    end_utc: str | None


def plan_calendar(plan: Plan) -> list[CalendarEntry]:
    """Calendar of a plan: points in period order, each a changeover then its beam hours."""
    overhead = plan.inputs.overhead_hours_per_point
    start = parse_start_utc(plan.inputs.start_utc) if plan.inputs.start_utc else None
    t = 0.0
    out = []
    for p in sorted(plan.points, key=lambda q: q.period):
        c0 = t
        b0 = t + overhead
        b1 = b0 + p.hours
        t = b1
        out.append(
            CalendarEntry(
                period=p.period,
                changeover_start_h=c0,
                beam_start_h=b0,
                beam_end_h=b1,
                start_utc=iso_utc(start + timedelta(hours=b0)) if start else None,
                end_utc=iso_utc(start + timedelta(hours=b1)) if start else None,
            )
        )
    return out


def plan_model(plan: Plan) -> PhysicsModel:
    """The physics model a plan was made with (recorded in full in its inputs)."""
    return plan.inputs.physics


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`validate_plan`: ``level`` "error" or "warning", ``check`` the
    rule ("periods", "currents", "spacing", "hysteresis", "duplicates", "kinematics",
    "control"), ``period`` (None for plan-level findings) and a one-line ``message``."""

    level: str
    check: str
    period: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _calibration_for_label(label: str) -> cal.LinearExcitation | None:
    name = label.split("@", 1)[0]
    return cal.dipole_calibrations().calibrations.get(name)


def validate_plan(plan: Plan) -> list[Problem]:
    """Check a (hash-verified) plan: period numbering, supply and calibration current
    limits, the spacing rule, hysteresis monotonicity of every pass, duplicate points,
    sqrt(s) consistency and control-point distance. Returns every problem found."""
    probs: list[Problem] = []
    inputs = plan.inputs
    pts = sorted(plan.points, key=lambda p: p.period)
    if not pts:
        return [Problem("error", "periods", None, "plan has no points")]
    periods = [p.period for p in pts]
    if periods != list(range(len(pts))):
        dup = sorted({x for x in periods if periods.count(x) > 1})
        probs.append(
            Problem(
                "error",
                "periods",
                None,
                f"periods must be 0..{len(pts) - 1} without gaps or repeats"
                + (f" (repeated: {dup})" if dup else ""),
            )
        )
    extrapolate = inputs.extrapolate
    # currents
    for p in pts:
        for magnet, current in (
            ("DHSTB01", p.dhstb01_current_a),
            ("DHSTB02", p.dhstb02_current_a),
            ("Q1", p.q1_current_a),
            ("Q2", p.q2_current_a),
            ("Q3", p.q3_current_a),
            ("Q4", p.q4_current_a),
        ):
            lo, hi = cal.magnet_spec(magnet).current_limits_a
            if not (lo <= current <= hi):
                probs.append(
                    Problem(
                        "error",
                        "currents",
                        p.period,
                        f"{magnet} {current:.3f} A is outside the supply range {lo:g}..{hi:g} A",
                    )
                )
        curve = _calibration_for_label(p.calibration)
        if curve is None:
            probs.append(
                Problem(
                    "warning",
                    "currents",
                    p.period,
                    f"calibration {p.calibration} is not in the current calibration data",
                )
            )
        elif curve.is_extrapolation(p.dhstb01_current_a):
            lo, hi = curve.valid_current_a
            probs.append(
                Problem(
                    "warning" if extrapolate else "error",
                    "currents",
                    p.period,
                    f"DHSTB01 {p.dhstb01_current_a:.3f} A is outside the trusted range "
                    f"{lo:g}..{hi:g} A of {p.calibration}"
                    + (" (extrapolated on request)" if extrapolate else ""),
                )
            )
    # kinematics
    for p in pts:
        expect = sqrt_s_mev(p.e_beam_mev)
        if abs(p.sqrt_s_mev - expect) > 1e-6 * expect:
            probs.append(
                Problem(
                    "error",
                    "kinematics",
                    p.period,
                    f"sqrt_s {p.sqrt_s_mev:.6f} MeV does not match E_beam "
                    f"{p.e_beam_mev:.3f} MeV (expected {expect:.6f})",
                )
            )
    # duplicates
    tol = inputs.duplicate_tolerance_mev
    by_e = sorted(pts, key=lambda p: p.e_beam_mev)
    for a, b in pairwise(by_e):
        if b.e_beam_mev - a.e_beam_mev < tol:
            probs.append(
                Problem(
                    "error",
                    "duplicates",
                    b.period,
                    f"periods {a.period} and {b.period} are {b.e_beam_mev - a.e_beam_mev:.3f} MeV "
                    f"apart (< {tol:g} MeV): duplicate point",
                )
            )
    # spacing rule over the on-resonance points
    model = plan_model(plan)
    fraction = inputs.step_fraction
    on = [p for p in by_e if p.kind == "on_resonance"]
    centre_width = None
    if inputs.width_reference == "centre" and on:
        mid = 0.5 * (on[0].e_beam_mev + on[-1].e_beam_mev)
        near = min(on, key=lambda p: abs(p.e_beam_mev - mid))
        centre_width = line_fwhm_mev(mid, near.rel_spread, model)
    for a, b in pairwise(on):
        if centre_width is not None:
            allowed = fraction * centre_width
        else:
            allowed = fraction * min(
                line_fwhm_mev(a.e_beam_mev, a.rel_spread, model),
                line_fwhm_mev(b.e_beam_mev, b.rel_spread, model),
            )
        gap = b.e_beam_mev - a.e_beam_mev
        if gap > allowed * (1 + 1e-6):
            probs.append(
                Problem(
                    "error",
                    "spacing",
                    b.period,
                    f"gap {gap:.3f} MeV between {a.e_beam_mev:.3f} and {b.e_beam_mev:.3f} MeV "
                    f"exceeds {fraction:g} x line FWHM = {allowed:.3f} MeV",
                )
            )
    # hysteresis: every pass monotone in DHSTB01 current, one branch, contiguous periods
    passes: dict[int, list[Point]] = {}
    for p in pts:
        passes.setdefault(p.pass_index, []).append(p)
    for k, members in sorted(passes.items()):
        branches = {p.branch for p in members}
        if len(branches) != 1 or "unknown" in branches:
            probs.append(
                Problem(
                    "error",
                    "hysteresis",
                    members[0].period,
                    f"pass {k} mixes or lacks branches: {sorted(branches)}",
                )
            )
            continue
        branch = branches.pop()
        per = [p.period for p in members]
        if per != list(range(per[0], per[0] + len(per))):
            probs.append(
                Problem(
                    "error",
                    "hysteresis",
                    members[0].period,
                    f"pass {k} is interrupted by other passes (periods {per})",
                )
            )
        for a, b in pairwise(members):
            ok = (
                b.dhstb01_current_a < a.dhstb01_current_a
                if branch == "descending"
                else b.dhstb01_current_a > a.dhstb01_current_a
            )
            if not ok:
                probs.append(
                    Problem(
                        "error",
                        "hysteresis",
                        b.period,
                        f"pass {k} is {branch} but DHSTB01 goes {a.dhstb01_current_a:.3f} -> "
                        f"{b.dhstb01_current_a:.3f} A at period {b.period}",
                    )
                )
    # control points clear of the scanned range
    if on:
        lo_e, hi_e = on[0].e_beam_mev, on[-1].e_beam_mev
        n_fwhm = inputs.control_min_distance_fwhm
        for p in pts:
            if p.kind != "control":
                continue
            dist = max(lo_e - p.e_beam_mev, p.e_beam_mev - hi_e)
            need = n_fwhm * line_fwhm_mev(p.e_beam_mev, p.rel_spread, model)
            if dist < need:
                probs.append(
                    Problem(
                        "warning",
                        "control",
                        p.period,
                        f"control point {p.e_beam_mev:.2f} MeV is only {dist:.2f} MeV from the "
                        f"scanned range (< {n_fwhm:g} line FWHM = {need:.2f} MeV)",
                    )
                )
    return probs
