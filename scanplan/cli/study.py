"""Studies of plans: ``scanplan sensitivity | compare | optimise | sweep``. Thin wrappers over
:mod:`scanplan.sensitivity`, :mod:`scanplan.compare` and :mod:`scanplan.optimise`, figures
from :mod:`scanplan.plots.plan`; heavy imports inside the functions. Option defaults come
from ``lattices/physics/scan_defaults.toml`` and the physics model (their one home)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ScanplanError
from ..physics.params import ControlSideName, OptimiseObjective, load_physics
from . import common
from .common import (
    IMAGE_SUFFIXES,
    MAX_HOURS,
    FloatRange,
    check_number,
    check_output_path,
    console,
    guarded,
    print_json,
    range_option,
    rich_table,
)
from .plan import (
    SCAN_DEFAULTS,
    EnergyOpt,
    MassOpt,
    SqrtSOpt,
    announce_plot,
    choice,
    parse_interval,
    range_fields,
)

_COUPLINGS = load_physics().statistics.coupling_grid


@guarded
def sensitivity(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON.")],
    masses_mev: Annotated[
        FloatRange | None, range_option("Mass grid [MeV] (default: plan span).")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the sensitivity curve.")] = None,
    toys: Annotated[
        int,
        typer.Option(
            help="Toy-MC CLs grid with N toys per cell (0: off), with the --likelihood model "
            "(published: at most 5000 toys, 400 cells, 200000 toys in all)."
        ),
    ] = 0,
    toy_masses: Annotated[
        int, typer.Option(help="Masses of the toy grid.")
    ] = SCAN_DEFAULTS.sensitivity.toy_masses,
    couplings: Annotated[
        FloatRange | None,
        range_option(
            "Coupling grid for toys (default "
            f"{_COUPLINGS[0]:g}..{_COUPLINGS[1]:g}, {SCAN_DEFAULTS.sensitivity.toy_couplings} log steps)."
        ),
    ] = None,
    seed: common.ToySeedOpt = 0,
    scheduler: common.SchedulerOpt = None,
    workers: common.WorkersOpt = None,
    likelihood: Annotated[
        str,
        typer.Option(
            help="published: PADME's published likelihood (as scanplan analyse); "
            "simple: per-point nuisances only. Asimov limits and toys use the same one."
        ),
    ] = "published",
    json_out: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
) -> None:
    """Expected CLs upper limit on g versus mass (Asimov; optional toy-MC grid on Dask)."""
    check_output_path(plot, "--plot", suffixes=IMAGE_SUFFIXES)
    import numpy as np

    from scanplan.records import load_plan
    from scanplan.sensitivity import coverage, default_masses_mev, expected_limits, toy_cls_grid

    p = load_plan(plan_file)
    masses = np.array(masses_mev) if masses_mev else None
    lim = expected_limits(p, masses, likelihood=likelihood)
    cov = coverage(p)
    out: dict[str, Any] = {
        "file": str(plan_file),
        "likelihood": lim.likelihood,
        "cl": lim.cl,
        "covered_sqrt_s_mev": [cov.covered_lo_mev, cov.covered_hi_mev],
        "limits": lim.rows(),
    }
    grid = None
    if toys:
        from rich.progress import Progress

        span = default_masses_mev(p, toy_masses)
        gs = (
            list(couplings)
            if couplings
            else list(
                np.geomspace(
                    *p.inputs.physics.statistics.coupling_grid,
                    SCAN_DEFAULTS.sensitivity.toy_couplings,
                )
            )
        )
        run_grid = toy_cls_grid
        if lim.likelihood == "published":
            from scanplan.analysis.plan_toys import check_bounds, published_toy_grid

            check_bounds(toys, len(span), len(gs))  # before any work
            run_grid = published_toy_grid
        with Progress(console=console, transient=True, disable=json_out) as prog:
            task = prog.add_task("toy CLs grid", total=len(span) * len(gs))
            grid = run_grid(
                p,
                list(span),
                gs,
                n_toys=toys,
                seed=seed,
                scheduler=scheduler,
                n_workers=workers,
                on_done=lambda _i: prog.advance(task),
            )
        asimov_g = getattr(grid, "g_limit_asimov", None)
        if asimov_g is None:
            asimov_g = expected_limits(p, grid.masses_mev).g_median
        toy_err = getattr(grid, "g_limit_err", None)
        errs = [math.nan] * len(span) if toy_err is None else list(toy_err)
        out["toys"] = {
            "likelihood": lim.likelihood,
            "n_toys": toys,
            "seed": seed,
            "masses_mev": grid.masses_mev.tolist(),
            "couplings": grid.couplings.tolist(),
            "cls": grid.cls.tolist(),
            "g_limit_toys": grid.g_limit.tolist(),
            "g_limit_toys_err": [float(e) for e in errs],
            "g_limit_asimov": np.asarray(asimov_g).tolist(),
            "n_clipped": grid.n_clipped,
        }
    if plot is not None:
        from scanplan.plots.plan import plot_sensitivity

        written = plot_sensitivity(lim, p.name or str(plan_file), plot, grid, toys)
        announce_plot(written, json_out)
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
    if lim.g_minus2 is not None:
        cols[2:2] = [("g_upper_limit_minus2sigma", "-2σ", ".3e")]
        cols[5:5] = [("g_upper_limit_plus2sigma", "+2σ", ".3e")]
    title = f"Expected {lim.cl:.0%} CLs limits (Asimov, {lim.likelihood} likelihood) — {plan_file}"
    console.print(rich_table(title, rows[::step], cols))
    console.print(
        f"sqrt(s) coverage (exposure >= 50 % of median): {cov.covered_lo_mev:.3f}..{cov.covered_hi_mev:.3f} MeV"
    )
    if grid is not None:
        t = out["toys"]
        trows = [
            {"mass_mev": m, "toys": g, "err": e, "asimov": a}
            for m, g, e, a in zip(
                t["masses_mev"],
                t["g_limit_toys"],
                t["g_limit_toys_err"],
                t["g_limit_asimov"],
                strict=True,
            )
        ]
        console.print(
            rich_table(
                f"Toy-MC CLs ({toys} toys/cell, seed {seed}, {lim.likelihood} likelihood)",
                trows,
                [
                    ("mass_mev", "mass [MeV]", ".3f"),
                    ("toys", "g limit toys", ".3e"),
                    ("err", "± toys", ".1e"),
                    ("asimov", "g limit Asimov", ".3e"),
                ],
            )
        )
        if grid.n_clipped:
            console.print(
                f"note: {grid.n_clipped} of {grid.cls.size} toy CLs values fell outside [0, 1] "
                "(toy fluctuation) and were clipped"
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
    check_output_path(plot, "--plot", suffixes=IMAGE_SUFFIXES)
    from scanplan.compare import compare_plans
    from scanplan.records import load_plan

    a, b = load_plan(plan_a), load_plan(plan_b)
    c = compare_plans(a, b)
    if plot is not None:
        from scanplan.plots.plan import plot_comparison

        announce_plot(plot_comparison(c, (a, b), (str(plan_a), str(plan_b)), plot), json_out)
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
        str,
        typer.Option(
            help=f"Figure of merit over the window, {choice(OptimiseObjective)} of the "
            "expected g limit.",
        ),
    ] = SCAN_DEFAULTS.optimise.objective,
    total_hours: Annotated[
        float | None, typer.Option(help="Beam hours to share (default: the plan's).")
    ] = None,
    min_hours: Annotated[
        float, typer.Option(help="Minimum beam hours per point.")
    ] = SCAN_DEFAULTS.optimise.min_hours,
    likelihood: Annotated[
        str,
        typer.Option(
            help="Likelihood of the reported limits: published (as scanplan analyse) or simple."
        ),
    ] = "published",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print summary and hours as JSON.")
    ] = False,
) -> None:
    """Redistribute the beam time over the points to maximise sensitivity in a mass window."""
    check_output_path(output, "--output")
    check_number(total_hours, "--total-hours", low=0, high=MAX_HOURS, low_open=True)
    check_number(min_hours, "--min-hours", low=0, high=MAX_HOURS)
    from scanplan.optimise import optimise_plan
    from scanplan.records import load_plan, save_plan

    p = load_plan(plan_file)
    res = optimise_plan(
        p,
        parse_interval(window_mev, "--window-mev"),
        total_hours=total_hours,
        objective=objective,
        min_hours=min_hours,
        likelihood=likelihood,
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
                "likelihood": likelihood,
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
            f"Expected g limit over {s['window_mev'][0]:g}..{s['window_mev'][1]:g} MeV "
            f"({objective}, {likelihood} likelihood)",
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
    from scanplan.planning import parse_request_value

    out: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, values = text.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ScanplanError(f"--vary '{text}': use KEY=v1,v2,... (e.g. passes=1,2,3)")
        try:
            out[key] = [parse_request_value(key, v.strip()) for v in values.split(",")]
        except ScanplanError as exc:
            raise ScanplanError(f"--vary: {exc}") from None
    if not out:
        raise ScanplanError("give at least one --vary KEY=v1,v2,...")
    return out


@guarded
def sweep(
    vary: Annotated[
        list[str], typer.Option(help="Plan option to vary: KEY=v1,v2,... (repeatable).")
    ],
    mass_mev: MassOpt = None,
    sqrt_s_mev: SqrtSOpt = None,
    energy_mev: EnergyOpt = None,
    budget_hours: Annotated[float | None, typer.Option(help="Total time [h] per option.")] = None,
    control: Annotated[
        str, typer.Option(help=f"Control points: {choice(ControlSideName)}.")
    ] = SCAN_DEFAULTS.control.side,
    window_mev: Annotated[
        str | None, typer.Option(help="Mass window for the figure of merit (default: plan span).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: local cluster; 'sync').")
    ] = None,
    workers: common.WorkersOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
) -> None:
    """Compare plans over many options (every combination of --vary), one Dask task each."""
    check_number(budget_hours, "--budget-hours", low=0, high=MAX_HOURS, low_open=True)
    from rich.progress import Progress

    from scanplan.compare import sweep_options
    from scanplan.planning import PlanRequest

    base = PlanRequest(
        **range_fields(mass_mev, sqrt_s_mev, energy_mev),
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
