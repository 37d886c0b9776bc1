"""Planning commands: ``scanplan plan | show | validate | yield | sensitivity | compare |
optimise``. Thin wrappers over :mod:`scanplan.planner`, :mod:`scanplan.sensitivity`,
:mod:`scanplan.optimise` and :mod:`scanplan.compare`; heavy imports inside the functions."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ScanplanError
from .common import console, guarded, parse_range, print_json, rich_table

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


def _save_figure(fig: Any, path: Path, announce: bool = True) -> None:
    from scanplan.atomic import atomic_write_bytes

    buf = io.BytesIO()
    fmt = path.suffix.lstrip(".").lower() or "png"
    fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    import matplotlib.pyplot as plt

    plt.close(fig)
    if announce:
        console.print(f"plot written to {path}", highlight=False)


def _figure(nrows: int = 1, height: float = 4.5) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, 1, figsize=(9, height * nrows), squeeze=False)
    return fig, axes[:, 0]


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
    ("target_pot", "POT", ".3g"),
    ("hours", "beam [h]", ".1f"),
    ("background_per_pot", "bkg/POT", ".3g"),
    ("signal_efficiency", "ε", ".3f"),
    ("signal_yield_per_pot_g2", "Y·V/POT/g²", ".3f"),
    ("expected_signal_ref", "N_S(g_ref)", ".0f"),
]


def _point_rows(plan: Any) -> list[dict[str, Any]]:
    from scanplan.planner import plan_calendar

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


@guarded
def plan(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the plan JSON here.")
    ] = None,
    mass_mev: Annotated[str | None, typer.Option(help="X17 mass range LOW:HIGH [MeV].")] = None,
    sqrt_s_mev: Annotated[str | None, typer.Option(help="sqrt(s) range LOW:HIGH [MeV].")] = None,
    energy_mev: Annotated[
        str | None, typer.Option(help="Beam-energy range LOW:HIGH [MeV].")
    ] = None,
    step_fraction: Annotated[
        float | None, typer.Option(help="Combined spacing <= this x line FWHM (default 0.5).")
    ] = None,
    step_mev: Annotated[
        float | None, typer.Option(help="Explicit maximum combined spacing [MeV].")
    ] = None,
    width_reference: Annotated[
        str | None, typer.Option(help="Line width for the rule: min (default) or centre.")
    ] = None,
    passes: Annotated[int | None, typer.Option(help="Interleaved passes (default 2).")] = None,
    direction: Annotated[
        str | None, typer.Option(help="Pass direction in DHSTB01 current: descending|ascending.")
    ] = None,
    control: Annotated[str, typer.Option(help="Control points: below|above|none.")] = "below",
    control_energies_mev: Annotated[
        str | None, typer.Option(help="Explicit control energies v1,v2,... or a:b:step [MeV].")
    ] = None,
    control_count: Annotated[int | None, typer.Option(help="Number of control points.")] = None,
    control_offset_mev: Annotated[
        float | None, typer.Option(help="Range edge to nearest control point [MeV].")
    ] = None,
    control_step_mev: Annotated[float | None, typer.Option(help="Control spacing [MeV].")] = None,
    control_position: Annotated[
        str | None, typer.Option(help="Control block: after_first_pass|start|end.")
    ] = None,
    pot_per_point: Annotated[
        float | None, typer.Option(help="POT per point (default 7.6e9).")
    ] = None,
    budget_hours: Annotated[
        float | None, typer.Option(help="Total time [h] shared by all points, overheads included.")
    ] = None,
    positrons_per_bunch: Annotated[
        float | None, typer.Option(help="e+ per bunch on target.")
    ] = None,
    rep_rate_hz: Annotated[float | None, typer.Option(help="Repetition rate [Hz].")] = None,
    uptime: Annotated[float | None, typer.Option(help="Fraction of time with beam.")] = None,
    overhead_hours: Annotated[float | None, typer.Option(help="Changeover per point [h].")] = None,
    start_utc: Annotated[str | None, typer.Option(help="Calendar start (ISO, UTC).")] = None,
    bes: Annotated[float | None, typer.Option(help="Relative beam-energy spread (0.0025).")] = None,
    bes_from_spread: Annotated[
        bool, typer.Option(help="BES from the spread engine (tracking through the slits).")
    ] = False,
    spread_particles: Annotated[
        int, typer.Option(help="Particles per energy (spread engine).")
    ] = 200_000,
    spread_seed: Annotated[int, typer.Option(help="Seed of the spread engine.")] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler for the spread engine (default: local cluster; 'sync')."),
    ] = None,
    lorentz_width_mev: Annotated[
        float | None, typer.Option(help="Override w_L [MeV] (0: Gaussian line, 2022 rule).")
    ] = None,
    reference_coupling: Annotated[float | None, typer.Option(help="g for expected signal.")] = None,
    settings: Annotated[str | None, typer.Option(help="Settings name (slits, quads).")] = None,
    quad_scaling: Annotated[str, typer.Option(help="Quads: momentum|fixed.")] = "momentum",
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
    from scanplan.planner import PlanRequest, plan_scan
    from scanplan.records import save_plan

    req = PlanRequest(
        mass_range_mev=parse_interval(mass_mev, "--mass-mev") if mass_mev else None,
        sqrt_s_range_mev=parse_interval(sqrt_s_mev, "--sqrt-s-mev") if sqrt_s_mev else None,
        energy_range_mev=parse_interval(energy_mev, "--energy-mev") if energy_mev else None,
        step_fraction=step_fraction,
        step_mev=step_mev,
        width_reference=width_reference,
        passes=passes,
        direction=direction,
        control=control,
        control_energies_mev=tuple(parse_range(control_energies_mev, "--control-energies-mev"))
        if control_energies_mev
        else None,
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
    if output is not None:
        console.print(f"plan written to {output} (sha256 {result.content_sha256[:12]})")


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
    console.print(rich_table(title, _point_rows(p), [*POINT_COLUMNS, when]))
    for note in inp.notes:
        console.print(f"note: {note}", highlight=False)


@guarded
def show(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON.")],
    plot: Annotated[Path | None, typer.Option(help="Write points over their line shapes.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print point rows as JSON.")] = False,
) -> None:
    """Table of a plan's points (with calendar) and an optional plot over the line shapes."""
    from scanplan.records import load_plan

    p = load_plan(plan_file)
    if plot is not None:
        _plot_plan(p, plot, announce=not json_out)
    if json_out:
        print_json({"name": p.name, "content_sha256": p.content_sha256, "points": _point_rows(p)})
        return
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


def _plot_plan(p: Any, path: Path, announce: bool = True) -> None:
    import numpy as np

    from scanplan.planner import plan_model
    from scanplan.sensitivity import coverage, plan_arrays, signal_per_g2

    model = plan_model(p)
    arr = plan_arrays(p)
    cov = coverage(p)
    s = signal_per_g2(cov.masses_mev, arr, model)
    fig, (ax,) = _figure()
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    pts = sorted(p.points, key=lambda q: q.period)
    for i, q in enumerate(pts):
        if q.kind == "control":
            continue
        ax.plot(
            cov.masses_mev, s[:, i], color=colors[q.pass_index % len(colors)], lw=0.8, alpha=0.7
        )
    ax.plot(cov.masses_mev, cov.exposure_per_g2, color="k", lw=1.5, label="sum (exposure)")
    on = [q for q in pts if q.kind == "on_resonance"]
    ax.scatter(
        [q.sqrt_s_mev for q in on],
        [0] * len(on),
        c=[colors[q.pass_index % 5] for q in on],
        marker="|",
        s=200,
        label="points (colour = pass)",
    )
    ax.set_xlabel("X17 mass = sqrt(s) at resonance [MeV]")
    ax.set_ylabel("selected signal per g² [events]")
    n_ctl = len(pts) - len(on)
    ax.set_title(f"{p.name or 'plan'}: {len(on)} points over their line shapes (+{n_ctl} control)")
    ax.set_ylim(bottom=-0.03 * float(np.max(cov.exposure_per_g2)))
    ax.legend(loc="upper right")
    _save_figure(fig, path, announce)


@guarded
def validate(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print problems as JSON.")] = False,
) -> None:
    """Check hash, current limits, spacing, hysteresis monotonicity, duplicates (exit 2 if invalid)."""
    from scanplan.planner import validate_plan
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
    bes: Annotated[float | None, typer.Option(help="Relative beam-energy spread (0.0025).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Signal yield per POT per g² and sqrt(s) at one (mass, beam energy)."""
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


@guarded
def sensitivity(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON.")],
    masses_mev: Annotated[
        str | None, typer.Option(help="Mass grid a:b:step or v1,v2 [MeV] (default: plan span).")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the sensitivity curve.")] = None,
    toys: Annotated[int, typer.Option(help="Toy-MC CLs grid with N toys per cell (0: off).")] = 0,
    toy_masses: Annotated[int, typer.Option(help="Masses of the toy grid.")] = 5,
    couplings: Annotated[
        str | None,
        typer.Option(
            help="Coupling grid for toys, v1,v2 or a:b:step (default 1e-4..8e-4, 8 log steps)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Base seed of the toys.")] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (default: local cluster; 'sync': none)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local Dask workers.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
) -> None:
    """Expected CLs upper limit on g versus mass (Asimov; optional toy-MC grid on Dask)."""
    import numpy as np

    from scanplan.planner import plan_model
    from scanplan.records import load_plan
    from scanplan.sensitivity import coverage, default_masses_mev, expected_limits, toy_cls_grid

    p = load_plan(plan_file)
    masses = np.array(parse_range(masses_mev, "--masses-mev")) if masses_mev else None
    lim = expected_limits(p, masses)
    cov = coverage(p)
    out: dict[str, Any] = {
        "file": str(plan_file),
        "cl": lim.cl,
        "covered_sqrt_s_mev": [cov.covered_lo_mev, cov.covered_hi_mev],
        "limits": lim.rows(),
    }
    grid = None
    if toys:
        from rich.progress import Progress

        span = default_masses_mev(p, toy_masses)
        gs = (
            parse_range(couplings, "--couplings")
            if couplings
            else list(np.geomspace(*plan_model(p).statistics.coupling_grid, 8))
        )
        with Progress(console=console, transient=True, disable=json_out) as prog:
            task = prog.add_task("toy CLs grid", total=len(span) * len(gs))
            grid = toy_cls_grid(
                p,
                list(span),
                gs,
                n_toys=toys,
                seed=seed,
                scheduler=scheduler,
                n_workers=workers,
                on_done=lambda _i: prog.advance(task),
            )
        asimov = expected_limits(p, grid.masses_mev)
        out["toys"] = {
            "n_toys": toys,
            "seed": seed,
            "masses_mev": grid.masses_mev.tolist(),
            "couplings": grid.couplings.tolist(),
            "cls": grid.cls.tolist(),
            "g_limit_toys": grid.g_limit.tolist(),
            "g_limit_asimov": asimov.g_median.tolist(),
        }
    if plot is not None:
        fig, (ax,) = _figure()
        ax.fill_between(
            lim.masses_mev, lim.g_minus1, lim.g_plus1, color="tab:green", alpha=0.3, label="±1σ"
        )
        ax.plot(lim.masses_mev, lim.g_median, color="k", label=f"median expected {lim.cl:.0%} CLs")
        if grid is not None:
            ax.plot(
                grid.masses_mev, grid.g_limit, "o", color="tab:red", label=f"toys ({toys}/cell)"
            )
        ax.set_xlabel("X17 mass [MeV]")
        ax.set_ylabel("upper limit on g")
        ax.set_title(f"{p.name or plan_file}: expected sensitivity")
        ax.legend()
        _save_figure(fig, plot, not json_out)
    if json_out:
        print_json(out)
        return
    rows = lim.rows()
    step = max(1, len(rows) // 15)
    cols = [
        ("mass_mev", "mass [MeV]", ".3f"),
        ("g_upper_limit", "g limit (median)", ".3e"),
        ("g_upper_limit_minus1sigma", "-1σ", ".3e"),
        ("g_upper_limit_plus1sigma", "+1σ", ".3e"),
        ("g2_upper_limit", "g² limit", ".3e"),
    ]
    console.print(
        rich_table(f"Expected {lim.cl:.0%} CLs limits (Asimov) — {plan_file}", rows[::step], cols)
    )
    console.print(
        f"sqrt(s) coverage (exposure >= 50 % of median): {cov.covered_lo_mev:.3f}..{cov.covered_hi_mev:.3f} MeV"
    )
    if grid is not None:
        trows = [
            {"mass_mev": m, "toys": t, "asimov": a}
            for m, t, a in zip(
                grid.masses_mev, grid.g_limit, out["toys"]["g_limit_asimov"], strict=True
            )
        ]
        console.print(
            rich_table(
                f"Toy-MC CLs ({toys} toys/cell, seed {seed})",
                trows,
                [
                    ("mass_mev", "mass [MeV]", ".3f"),
                    ("toys", "g limit toys", ".3e"),
                    ("asimov", "g limit Asimov", ".3e"),
                ],
            )
        )


@guarded
def compare(
    plan_a: Annotated[Path, typer.Argument(help="First plan JSON.")],
    plan_b: Annotated[Path, typer.Argument(help="Second plan JSON.")],
    plot: Annotated[
        Path | None, typer.Option(help="Write both sensitivity curves and points.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
) -> None:
    """Two plans side by side: points, spacing, POT, time, coverage, expected limits."""
    from scanplan.compare import compare_plans
    from scanplan.records import load_plan

    a, b = load_plan(plan_a), load_plan(plan_b)
    c = compare_plans(a, b)
    if plot is not None:
        fig, (ax, ax2) = _figure(2, 3.5)
        for lim, plan_, label, col in (
            (c.limits[0], a, str(plan_a), "tab:blue"),
            (c.limits[1], b, str(plan_b), "tab:orange"),
        ):
            ax.plot(lim.masses_mev, lim.g_median, color=col, label=label)
            on = [q for q in plan_.points if q.kind == "on_resonance"]
            ax2.scatter(
                [q.sqrt_s_mev for q in on], [q.target_pot for q in on], color=col, s=12, label=label
            )
        ax.set_xlabel("X17 mass [MeV]")
        ax.set_ylabel("expected limit on g")
        ax.legend()
        ax2.set_xlabel("sqrt(s) [MeV]")
        ax2.set_ylabel("POT per point")
        _save_figure(fig, plot, not json_out)
    if json_out:
        print_json(
            {
                "a": str(plan_a),
                "b": str(plan_b),
                "rows": c.rows,
                "masses_mev": c.masses_mev.tolist(),
                "g_limit_a": c.limits[0].g_median.tolist(),
                "g_limit_b": c.limits[1].g_median.tolist(),
            }
        )
        return
    rows = [{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()} for r in c.rows]
    console.print(
        rich_table(
            "Plan comparison",
            rows,
            [("metric", "metric", ""), ("a", str(plan_a), ""), ("b", str(plan_b), "")],
        )
    )


@guarded
def optimise(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON.")],
    window_mev: Annotated[str, typer.Option(help="Mass window LOW:HIGH or CENTRE+-HALF [MeV].")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Write the optimised plan here.")],
    objective: Annotated[
        str, typer.Option(help="mean|max of the expected g limit over the window.")
    ] = "mean",
    total_hours: Annotated[
        float | None, typer.Option(help="Beam hours to share (default: the plan's).")
    ] = None,
    min_hours: Annotated[float, typer.Option(help="Minimum beam hours per point.")] = 1.0,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print summary and hours as JSON.")
    ] = False,
) -> None:
    """Redistribute the beam time over the points to maximise sensitivity in a mass window."""
    from scanplan.optimise import optimise_plan
    from scanplan.records import load_plan, save_plan

    p = load_plan(plan_file)
    res = optimise_plan(
        p,
        parse_interval(window_mev, "--window-mev"),
        total_hours=total_hours,
        objective=objective,
        min_hours=min_hours,
    )
    sealed = res.plan.sealed()
    save_plan(sealed, output)
    rows = [
        {
            "period": q.period,
            "sqrt_s_mev": q.sqrt_s_mev,
            "hours": q.hours,
            "target_pot": q.target_pot,
        }
        for q in sorted(sealed.points, key=lambda q: q.period)
    ]
    if json_out:
        print_json(
            {
                "output": str(output),
                "content_sha256": sealed.content_sha256,
                **res.summary(),
                "points": rows,
            }
        )
        return
    s = res.summary()
    console.print(
        rich_table(
            "Beam-time allocation",
            rows,
            [
                ("period", "period", ""),
                ("sqrt_s_mev", "√s [MeV]", ".4f"),
                ("hours", "beam [h]", ".1f"),
                ("target_pot", "POT", ".3g"),
            ],
        )
    )
    console.print(
        rich_table(
            f"Expected g limit over {s['window_mev'][0]:g}..{s['window_mev'][1]:g} MeV ({objective})",
            [
                {"alloc": k, "mean": s[f"{k}_mean_g"], "max": s[f"{k}_max_g"]}
                for k in ("before", "uniform", "after")
            ],
            [
                ("alloc", "allocation", ""),
                ("mean", "mean g limit", ".4e"),
                ("max", "max g limit", ".4e"),
            ],
        )
    )
    console.print(f"optimised plan written to {output} (sha256 {sealed.content_sha256[:12]})")


def _parse_vary(texts: list[str]) -> dict[str, list[Any]]:
    """``KEY=v1,v2,...`` options for a sweep, values converted by the PlanRequest field type."""
    import dataclasses

    from scanplan.planner import PlanRequest

    types = {f.name: str(f.type) for f in dataclasses.fields(PlanRequest)}
    out: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, values = text.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ScanplanError(f"--vary '{text}': use KEY=v1,v2,... (e.g. passes=1,2,3)")
        if key not in types:
            raise ScanplanError(
                f"--vary: unknown plan option '{key}'; known: {', '.join(sorted(types))}"
            )
        kind = types[key]
        parsed: list[Any] = []
        for raw in (v.strip() for v in values.split(",")):
            try:
                if kind.startswith("bool"):
                    if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError
                    parsed.append(raw.lower() in ("true", "1", "yes"))
                elif kind.startswith("int"):
                    parsed.append(int(raw))
                elif kind.startswith("float"):
                    parsed.append(float(raw))
                elif kind.startswith("str"):
                    parsed.append(raw)
                else:
                    raise ScanplanError(f"--vary: option '{key}' ({kind}) cannot be varied")
            except ValueError:
                raise ScanplanError(
                    f"--vary {key}: '{raw}' is not a valid {kind.split(' ')[0]}"
                ) from None
        out[key] = parsed
    if not out:
        raise ScanplanError("give at least one --vary KEY=v1,v2,...")
    return out


@guarded
def sweep(
    vary: Annotated[
        list[str], typer.Option(help="Plan option to vary: KEY=v1,v2,... (repeatable).")
    ],
    mass_mev: Annotated[str | None, typer.Option(help="X17 mass range LOW:HIGH [MeV].")] = None,
    sqrt_s_mev: Annotated[str | None, typer.Option(help="sqrt(s) range LOW:HIGH [MeV].")] = None,
    energy_mev: Annotated[
        str | None, typer.Option(help="Beam-energy range LOW:HIGH [MeV].")
    ] = None,
    budget_hours: Annotated[float | None, typer.Option(help="Total time [h] per option.")] = None,
    control: Annotated[str, typer.Option(help="Control points: below|above|none.")] = "below",
    window_mev: Annotated[
        str | None, typer.Option(help="Mass window for the figure of merit (default: plan span).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: local cluster; 'sync').")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local Dask workers.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
) -> None:
    """Compare plans over many options (every combination of --vary), one Dask task each."""
    from rich.progress import Progress

    from scanplan.compare import sweep_options
    from scanplan.planner import PlanRequest

    base = PlanRequest(
        mass_range_mev=parse_interval(mass_mev, "--mass-mev") if mass_mev else None,
        sqrt_s_range_mev=parse_interval(sqrt_s_mev, "--sqrt-s-mev") if sqrt_s_mev else None,
        energy_range_mev=parse_interval(energy_mev, "--energy-mev") if energy_mev else None,
        budget_hours=budget_hours,
        control=control,
    )
    variations = _parse_vary(vary)
    window = parse_interval(window_mev, "--window-mev") if window_mev else None
    n = math.prod(len(v) for v in variations.values())
    with Progress(console=console, transient=True, disable=json_out) as prog:
        task = prog.add_task("planning options", total=n)
        rows = sweep_options(
            base, variations, window_mev=window, scheduler=scheduler or "local",
            n_workers=workers, on_done=lambda _i: prog.advance(task),
        )  # fmt: skip
    if json_out:
        print_json(rows)
        return
    cols = [(k, k, "") for k in variations] + [
        ("points", "points", ""),
        ("mean_spacing_mev", "spacing [MeV]", ".3f"),
        ("total_pot", "POT", ".3g"),
        ("total_hours", "hours", ".0f"),
        ("mean_expected_g_limit", "mean g limit", ".4e"),
        ("worst_expected_g_limit", "worst g limit", ".4e"),
        ("error", "error", ""),
    ]
    console.print(rich_table(f"Plan options ({n})", rows, cols))
