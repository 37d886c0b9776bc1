"""Planning commands: ``scanplan plan | show | validate | yield``. Thin wrappers over
:mod:`scanplan.planning` and :mod:`scanplan.physics`, figures from :mod:`scanplan.plots.plan`;
heavy imports inside the functions. Option defaults are read from
``lattices/physics/scan_defaults.toml`` and the physics model (their one home)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from ..errors import ScanplanError
from ..physics.params import (
    ControlPosition,
    ControlSideName,
    Direction,
    QuadScaling,
    WidthReference,
    load_physics,
    load_scan_defaults,
)
from . import common
from .common import FloatRange, console, guarded, print_json, range_option, rich_table
from .tables import fit_table

_PM = re.compile(r"^\s*([^+±]+?)\s*(?:\+-|±|\+/-)\s*([^+±]+)\s*$")


def parse_interval(text: str, name: str) -> tuple[float, float]:
    """``lo:hi``, ``centre+-half`` (or ``centre±half``) or a single value, in MeV."""
    try:
        m = _PM.match(text)
        if m:
            c, h = float(m.group(1)), float(m.group(2))
            if h < 0:
                raise ValueError
            lo, hi = c - h, c + h
        elif ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 2:
                raise ValueError
            lo, hi = parts
        else:
            lo = hi = float(text)
    except ValueError:
        raise ScanplanError(
            f"{name}: cannot read '{text}'; use LOW:HIGH, CENTRE+-HALF or a single value"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ScanplanError(f"{name}: '{text}' needs finite bounds with low <= high")
    return lo, hi


POINT_COLUMNS = [
    ("period", "period", ""),
    ("pass_index", "pass", ""),
    ("kind", "kind", ""),
    ("e_beam_mev", "E [MeV]", ".3f"),
    ("sigma_e_beam_mev", "σE [MeV]", ".2f"),
    ("sqrt_s_mev", "√s [MeV]", ".4f"),
    ("dhstb01_current_a", "DHSTB01 [A]", ".3f"),
    ("dhstb02_current_a", "DHSTB02 [A]", ".3f"),
    ("branch", "branch", ""),
    ("q1_current_a", "Q1 [A]", ".2f"),
    ("q2_current_a", "Q2 [A]", ".2f"),
    ("q3_current_a", "Q3 [A]", ".2f"),
    ("q4_current_a", "Q4 [A]", ".2f"),
    ("target_pot", "POT", ".3g"),
    ("hours", "beam [h]", ".1f"),
    ("background_per_pot", "bkg/POT", ".3g"),
    ("signal_efficiency", "ε", ".3f"),
    ("signal_yield_per_pot_g2", "Y·V/POT/g²", ".3f"),
    ("expected_signal_ref", "N_S(g_ref)", ".0f"),
]


#: columns ``show`` leaves out, in this order, when the terminal is too narrow: the set
#: points (period, energy, currents) and POT/hours are always shown in full
OPTIONAL_COLUMNS = (
    "expected_signal_ref",
    "signal_yield_per_pot_g2",
    "signal_efficiency",
    "background_per_pot",
    "start_utc",
    "beam_start_h",
    "sigma_e_beam_mev",
    "sqrt_s_mev",
    "kind",
    "pass_index",
    "branch",
)


def _point_rows(plan: Any) -> list[dict[str, Any]]:
    from scanplan.planning import plan_calendar

    cal = {c.period: c for c in plan_calendar(plan)}
    rows = []
    for p in sorted(plan.points, key=lambda q: q.period):
        row = p.model_dump()
        c = cal[p.period]
        row["beam_start_h"] = c.beam_start_h
        row["beam_end_h"] = c.beam_end_h
        row["start_utc"] = c.start_utc
        row["end_utc"] = c.end_utc
        rows.append(row)
    return rows


#: The three ways to give the scanned range (exactly one), shared by plan and sweep.
MassOpt = Annotated[str | None, typer.Option(help="X17 mass range LOW:HIGH [MeV].")]
SqrtSOpt = Annotated[str | None, typer.Option(help="sqrt(s) range LOW:HIGH [MeV].")]
EnergyOpt = Annotated[str | None, typer.Option(help="Beam-energy range LOW:HIGH [MeV].")]


def range_fields(
    mass_mev: str | None, sqrt_s_mev: str | None, energy_mev: str | None
) -> dict[str, tuple[float, float] | None]:
    """The PlanRequest range fields from the range options (unset ones None)."""
    return {
        "mass_range_mev": parse_interval(mass_mev, "--mass-mev") if mass_mev else None,
        "sqrt_s_range_mev": parse_interval(sqrt_s_mev, "--sqrt-s-mev") if sqrt_s_mev else None,
        "energy_range_mev": parse_interval(energy_mev, "--energy-mev") if energy_mev else None,
    }


SCAN_DEFAULTS = load_scan_defaults()
_DEFAULT_BES = load_physics().signal.default_bes


def choice(literal: Any) -> str:
    """The words of a ``Literal`` type for a help text: ``a|b|c``."""
    return "|".join(get_args(literal))


@guarded
def plan(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the plan JSON here.")
    ] = None,
    mass_mev: MassOpt = None,
    sqrt_s_mev: SqrtSOpt = None,
    energy_mev: EnergyOpt = None,
    step_fraction: Annotated[
        float, typer.Option(help="Combined spacing <= this x line FWHM.")
    ] = SCAN_DEFAULTS.spacing.step_fraction,
    step_mev: Annotated[
        float | None, typer.Option(help="Explicit maximum combined spacing [MeV].")
    ] = None,
    width_reference: Annotated[
        str, typer.Option(help=f"Line width for the rule: {choice(WidthReference)}.")
    ] = SCAN_DEFAULTS.spacing.width_reference,
    passes: Annotated[int, typer.Option(help="Interleaved passes.")] = SCAN_DEFAULTS.spacing.passes,
    direction: Annotated[
        str,
        typer.Option(help=f"Pass direction in DHSTB01 current: {choice(Direction)}."),
    ] = SCAN_DEFAULTS.spacing.direction,
    control: Annotated[
        str, typer.Option(help=f"Control points: {choice(ControlSideName)}.")
    ] = SCAN_DEFAULTS.control.side,
    control_energies_mev: Annotated[
        FloatRange | None, range_option("Explicit control energies [MeV].")
    ] = None,
    control_count: Annotated[
        int | None,
        typer.Option(
            help=f"Number of control points (default {SCAN_DEFAULTS.control.below.count} below, "
            f"{SCAN_DEFAULTS.control.above.count} above)."
        ),
    ] = None,
    control_offset_mev: Annotated[
        float | None,
        typer.Option(
            help=f"Range edge to nearest control point [MeV] (default "
            f"{SCAN_DEFAULTS.control.below.offset_mev:g} below, {SCAN_DEFAULTS.control.above.offset_mev:g} above)."
        ),
    ] = None,
    control_step_mev: Annotated[
        float | None,
        typer.Option(
            help=f"Control spacing [MeV] (default {SCAN_DEFAULTS.control.below.step_mev:g} below, "
            f"{SCAN_DEFAULTS.control.above.step_mev:g} above)."
        ),
    ] = None,
    control_position: Annotated[
        str, typer.Option(help=f"Control block position: {choice(ControlPosition)}.")
    ] = SCAN_DEFAULTS.control.position,
    pot_per_point: Annotated[
        float | None,
        typer.Option(
            help=f"POT per point (default {SCAN_DEFAULTS.beam_time.pot_per_point:.3g} without a budget)."
        ),
    ] = None,
    budget_hours: Annotated[
        float | None, typer.Option(help="Total time [h] shared by all points, overheads included.")
    ] = None,
    positrons_per_bunch: Annotated[
        float, typer.Option(help="e+ per bunch on target.")
    ] = SCAN_DEFAULTS.beam_time.positrons_per_bunch,
    rep_rate_hz: Annotated[
        float, typer.Option(help="Repetition rate [Hz].")
    ] = SCAN_DEFAULTS.beam_time.repetition_rate_hz,
    uptime: Annotated[
        float, typer.Option(help="Fraction of time with beam.")
    ] = SCAN_DEFAULTS.beam_time.uptime_fraction,
    overhead_hours: Annotated[
        float, typer.Option(help="Changeover per point [h].")
    ] = SCAN_DEFAULTS.beam_time.overhead_hours_per_point,
    start_utc: Annotated[str | None, typer.Option(help="Calendar start (ISO, UTC).")] = None,
    bes: Annotated[
        float | None,
        typer.Option(
            help=f"Relative beam-energy spread (default: the physics model's, {_DEFAULT_BES:g})."
        ),
    ] = None,
    bes_from_spread: Annotated[
        bool, typer.Option(help="BES from the spread engine (tracking through the slits).")
    ] = False,
    spread_particles: Annotated[
        int, typer.Option(help="Particles per energy (spread engine).")
    ] = SCAN_DEFAULTS.spread_engine.particles,
    spread_seed: Annotated[
        int, typer.Option(help="Seed of the spread engine.")
    ] = SCAN_DEFAULTS.spread_engine.seed,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler for the spread engine (default: local cluster; 'sync')."),
    ] = None,
    lorentz_width_mev: Annotated[
        float | None, typer.Option(help="Override w_L [MeV] (0: Gaussian line, 2022 rule).")
    ] = None,
    reference_coupling: Annotated[float | None, typer.Option(help="g for expected signal.")] = None,
    spacing_rule: Annotated[
        str | None,
        typer.Option(
            help="robust (default: signal lost midway between points <= 10 % under the "
            "pessimistic line shape) or published (the half-width rule alone)."
        ),
    ] = None,
    settings: Annotated[str | None, typer.Option(help="Settings name (slits, quads).")] = None,
    quad_scaling: Annotated[
        str, typer.Option(help=f"Quadrupole currents: {choice(QuadScaling)}.")
    ] = SCAN_DEFAULTS.currents.quad_scaling,
    energy_scale: Annotated[str | None, typer.Option(help="Energy-scale name.")] = None,
    dhstb02_offset: Annotated[
        float | None, typer.Option(help="DHSTB02 relative momentum offset (e.g. -0.005).")
    ] = None,
    extrapolate: Annotated[
        bool, typer.Option(help="Allow currents outside the calibrations' trusted ranges.")
    ] = False,
    name: Annotated[str, typer.Option(help="Plan name.")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Plan a scan over a mass, sqrt(s) or beam-energy range and write the plan JSON."""
    common.check_output_path(output, "--output")
    common.plan_limits(step_mev, pot_per_point, budget_hours, overhead_hours, bes, uptime, settings)
    from scanplan.planning import PlanRequest, plan_scan
    from scanplan.records import save_plan

    req = PlanRequest(
        **range_fields(mass_mev, sqrt_s_mev, energy_mev),
        step_fraction=step_fraction,
        step_mev=step_mev,
        width_reference=width_reference,
        passes=passes,
        direction=direction,
        control=control,
        control_energies_mev=tuple(control_energies_mev) if control_energies_mev else None,
        control_count=control_count,
        control_offset_mev=control_offset_mev,
        control_step_mev=control_step_mev,
        control_position=control_position,
        pot_per_point=pot_per_point,
        budget_hours=budget_hours,
        positrons_per_bunch=positrons_per_bunch,
        repetition_rate_hz=rep_rate_hz,
        uptime_fraction=uptime,
        overhead_hours_per_point=overhead_hours,
        start_utc=start_utc,
        bes=bes,
        bes_from_spread=bes_from_spread,
        spread_particles=spread_particles,
        spread_seed=spread_seed,
        spread_scheduler=scheduler,
        lorentz_width_mev=lorentz_width_mev,
        reference_coupling=reference_coupling,
        spacing_rule=spacing_rule,
        settings=settings,
        quad_scaling=quad_scaling,
        energy_scale=energy_scale,
        dhstb02_relative_offset=dhstb02_offset,
        extrapolate=extrapolate,
        name=name,
    )
    if bes_from_spread and not json_out:
        with console.status("tracking through the slits (spread engine) ..."):
            result = plan_scan(req).sealed()
    else:
        result = plan_scan(req).sealed()
    if output is not None:
        save_plan(result, output)
    if json_out:
        print_json(result.model_dump(mode="json"))
        return
    _print_plan(result)
    _print_expected_limit(result)
    if output is not None:
        console.print(f"plan written to {output} (sha256 {result.content_sha256[:12]})")


def _print_expected_limit(p: Any) -> None:
    """The plan's expected 90 % CL limit at the centre of its range with its bands
    (published likelihood, as ``scanplan sensitivity``); skipped below 3 points."""
    from scanplan.sensitivity import default_masses_mev, expected_limits

    if sum(q.kind != "control" for q in p.points) < 3:
        return
    mass = default_masses_mev(p, 3)[1:2]
    lim = expected_limits(p, mass, likelihood="published")
    if lim.g_minus2 is None or lim.g_plus2 is None:  # pragma: no cover - published has them
        return
    console.print(
        f"expected {lim.cl:.0%} CL limit at M = {mass[0]:.3f} MeV (published likelihood): "
        f"g < {lim.g_median[0]:.3e}  [±1σ {lim.g_minus1[0]:.3e}..{lim.g_plus1[0]:.3e}, "
        f"±2σ {lim.g_minus2[0]:.3e}..{lim.g_plus2[0]:.3e}]",
        highlight=False,
    )


def announce_plot(path: Path, quiet: bool) -> None:
    if not quiet:
        console.print(f"plot written to {path}", highlight=False)


def _print_plan(p: Any) -> None:
    inp = p.inputs
    title = (
        f"Scan plan {p.name or ''} — {len(p.points)} points, combined step "
        f"{inp.combined_step_mev:.3f} MeV (rule {inp.step_fraction:g} x FWHM "
        f"{inp.rule_width_mev:.3f} MeV), {inp.total_hours:.0f} h"
    )
    when = (
        ("start_utc", "beam start (UTC)", "")
        if inp.start_utc
        else ("beam_start_h", "beam start [h]", ".1f")
    )
    table, dropped = fit_table(title, _point_rows(p), [*POINT_COLUMNS, when], OPTIONAL_COLUMNS)
    console.print(table)
    if dropped:
        console.print(
            f"not shown at {console.width} columns: {', '.join(dropped)} "
            "(--json has every column)",
            highlight=False,
        )
    if inp.spacing is not None:
        sp = inp.spacing
        losses = ", ".join(f"{k} {v:.1%}" for k, v in sp.midway_loss.items())
        console.print(
            f"spacing rule {sp.rule}: signal lost midway between points at "
            f"{sp.loss_at_e_beam_mev:.1f} MeV: {losses} (the half-width rule's "
            f"{sp.half_width_step_mev:.3f} MeV step would lose "
            f"{sp.midway_loss_half_width['pessimistic']:.1%} pessimistic)",
            highlight=False,
        )
    for note in inp.notes:
        console.print(f"note: {note}", highlight=False)


@guarded
def show(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON.")],
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write points over their line shapes; with --store the POT taken vs planned "
            "and the suspensions per point."
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Run-conditions store (SQLite): add POT recorded, done and suspensions per point.",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print point rows as JSON.")] = False,
) -> None:
    """Table of a plan's points (with calendar) and an optional plot over the line shapes;
    with --store the progress of the scan (POT recorded vs planned, suspensions)."""
    from scanplan.records import load_plan

    p = load_plan(plan_file)
    if plot is not None:
        from scanplan.figures import check_figure_path

        check_figure_path(plot)
    if store is not None:
        from .show_store import show_progress

        show_progress(p, store, plot, json_out, _point_rows(p), lambda: _print_plan_recipe(p))
        return
    if plot is not None:
        from scanplan.plots.plan import plot_plan

        announce_plot(plot_plan(p, plot), json_out)
    if json_out:
        print_json({"name": p.name, "content_sha256": p.content_sha256, "points": _point_rows(p)})
        return
    _print_plan_recipe(p)


def _print_plan_recipe(p: Any) -> None:
    _print_plan(p)
    _print_recipe(p)


def _print_recipe(p: Any) -> None:
    """How to approach the DHSTB01 set points (beamline.hysteresis recipe)."""
    from beamline.hysteresis import hysteresis_history

    pts = sorted(p.points, key=lambda q: q.period)
    try:
        hist = hysteresis_history([q.dhstb01_current_a for q in pts], "DHSTB01", standardised=True)
    except ValueError as exc:  # e.g. a current beyond the supply range: validate reports it
        console.print(f"hysteresis recipe unavailable: {exc}", highlight=False)
        return
    overshoots = sum(len(s.approach_currents_a) > 1 for s in hist.steps)
    console.print(
        f"DHSTB01: {hist.recommendation}; {overshoots} set point(s) need an overshoot",
        highlight=False,
    )


@guarded
def validate(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print problems as JSON.")] = False,
) -> None:
    """Check hash, current limits, spacing, hysteresis monotonicity, duplicates (exit 2 if invalid)."""
    from scanplan.planning import validate_plan
    from scanplan.records import load_plan

    p = load_plan(plan_file)
    problems = validate_plan(p)
    errors = [x for x in problems if x.level == "error"]
    rows = [x.as_dict() for x in problems]
    if json_out:
        print_json({"file": str(plan_file), "valid": not errors, "problems": rows})
    elif problems:
        cols = [
            ("level", "level", ""),
            ("check", "check", ""),
            ("period", "period", ""),
            ("message", "problem", ""),
        ]
        console.print(rich_table(f"{plan_file}: {len(problems)} finding(s)", rows, cols))
    if errors:
        raise ScanplanError(
            f"{plan_file}: invalid plan, {len(errors)} problem(s); first: {errors[0].message}"
        )
    if not json_out:
        console.print(f"{plan_file}: valid ({len(p.points)} points, {len(problems)} warning(s))")


@guarded
def yield_(
    mass_mev: Annotated[float, typer.Option(help="X17 mass [MeV].")],
    energy_mev: Annotated[float, typer.Option(help="Total beam energy [MeV].")],
    bes: Annotated[
        float | None,
        typer.Option(
            help=f"Relative beam-energy spread (default: the physics model's, {_DEFAULT_BES:g})."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Signal yield per POT per g² and sqrt(s) at one (mass, beam energy)."""
    common.yield_limits(mass_mev, energy_mev)
    from scanplan.physics.yields import yield_report

    row = yield_report(mass_mev, energy_mev, bes).as_dict()
    if json_out:
        print_json(row)
        return
    rows = [
        {"quantity": k, "value": f"{v:.6g}" if isinstance(v, float) else str(v)}
        for k, v in row.items()
    ]
    console.print(
        rich_table("X17 yield", rows, [("quantity", "quantity", ""), ("value", "value", "")])
    )
