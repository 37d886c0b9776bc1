"""``scanplan analyse``: an observed scan through PADME's published likelihood."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import common
from .common import (
    IMAGE_SUFFIXES,
    FloatRange,
    check_output_path,
    console,
    guarded,
    print_json,
    range_option,
    rich_table,
)

#: The most masses ``analyse --mass-mev`` evaluates (each is one fit of the scan).
MAX_MASS_POINTS = 2001


def _plot(a: Any, path: Path, announce: bool) -> None:
    import matplotlib
    import numpy as np

    from scanplan.analysis.likelihood import resonance_energy_mev

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scanplan.figures import write_figure

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 12))
    lik, d, s = a.lik, a.lik.data, a.scan
    i = a.best_index
    e_res = resonance_energy_mev(s.masses_mev[i : i + 1])
    th, loc = s.free.theta[i : i + 1], s.free.local[i : i + 1]
    total = lik.expected(th, loc, e_res)[0] / d.pot
    bkg_only = lik.expected(s.background.theta, s.background.local, e_res)[0] / d.pot
    for p, lab in enumerate(d.part_labels):
        m = d.part == p
        order = np.argsort(d.sqrt_s_mev[m])
        x = d.sqrt_s_mev[m][order]
        ax1.errorbar(
            x,
            (d.n_obs / d.pot)[m][order],
            yerr=(np.sqrt(np.maximum(d.n_obs, 1.0)) / d.pot)[m][order],
            fmt="o",
            ms=3,
            label=f"data, scan part {lab}",
        )
        ax1.plot(x, bkg_only[m][order], "-", color="grey", lw=1)
        ax1.plot(x, total[m][order], "--", color="tab:red", lw=1)
    ax1.plot([], [], "-", color="grey", label="background-only fit")
    ax1.plot([], [], "--", color="tab:red", label=f"best fit, M = {s.masses_mev[i]:.2f} MeV")
    ax1.set_xlabel("√s [MeV]")
    ax1.set_ylabel("N / POT")
    ax1.legend(fontsize=8)
    ax2.plot(s.masses_mev, s.local_significance, color="k")
    ax2.set_xlabel("X17 mass [MeV]")
    ax2.set_ylabel("local significance [σ]")
    if a.global_sig is not None:
        ax2.set_title(f"global significance {a.global_sig.significance:.2f}σ")
    g = a.g
    ax3.fill_between(s.masses_mev, g(s.band_mu[-2.0]), g(s.band_mu[2.0]), color="gold", label="±2σ")
    ax3.fill_between(
        s.masses_mev, g(s.band_mu[-1.0]), g(s.band_mu[1.0]), color="limegreen", label="±1σ"
    )
    ax3.plot(s.masses_mev, g(s.expected_limit_mu), "k--", label="expected")
    ax3.plot(s.masses_mev, g(s.observed_limit_mu), "k-", label=f"observed {a.cl:.0%} CL")
    ax3.set_yscale("log")
    ax3.set_xlabel("X17 mass [MeV]")
    ax3.set_ylabel("upper limit on g")
    ax3.legend(fontsize=8)
    fig.tight_layout()
    write_figure(fig, path, bbox_inches="tight")
    if announce:
        console.print(f"plot written to {path}", highlight=False)


@guarded
def analyse(
    observed: Annotated[Path, typer.Argument(help="Observed-scan table (.csv or .parquet).")],
    mass_mev: Annotated[
        FloatRange | None,
        range_option("Mass grid [MeV] (default 16.22:17.62:0.01).", max_points=MAX_MASS_POINTS),
    ] = None,
    toys: Annotated[
        int, typer.Option(help="Background-only toys for the global significance (0: off).")
    ] = 0,
    seed: common.ToySeedOpt = 0,
    scheduler: common.SchedulerOpt = None,
    workers: common.WorkersOpt = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write N/POT, local significance and limit plots.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Local significance, best fit and 90 % CL limits on g of an observed scan (PADME's
    published likelihood); with --toys the global significance."""
    check_output_path(plot, "--plot", suffixes=IMAGE_SUFFIXES)
    import numpy as np

    from scanplan.analysis.analyse import analyse_scan
    from scanplan.analysis.observed import load_observed

    scan = load_observed(observed)
    masses = None if mass_mev is None else np.array(mass_mev)
    if toys and not json_out:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as prog:
            task = prog.add_task("look-elsewhere toys", total=max(1, -(-toys // 25)))
            a = analyse_scan(
                scan,
                masses,
                toys=toys,
                seed=seed,
                scheduler=scheduler,
                n_workers=workers,
                on_toy_batch=lambda _i: prog.advance(task),
            )
    else:
        a = analyse_scan(scan, masses, toys=toys, seed=seed, scheduler=scheduler, n_workers=workers)
    if plot is not None:
        _plot(a, plot, not json_out)
    out = a.as_json()
    if json_out:
        print_json(out)
        return
    best = out["best_fit"]
    console.print(
        f"{observed}: {out['points_used']} on-resonance points used "
        f"({out['points_skipped_control']} control points left out), likelihood "
        f"{out['likelihood']}",
        highlight=False,
    )
    console.print(
        f"best fit: M = {best['mass_mev']:.3f} MeV, g = {best['g']:.3e}, local significance "
        f"{best['local_significance']:.2f}σ"
        + (
            ""
            if out["global_significance"] is None
            else f", global {out['global_significance']:.2f}σ "
            f"(± {out['global']['significance_error']:.2f}, {toys} toys)"
        ),
        highlight=False,
    )
    if not out["fits_converged"]:
        console.print(
            "warning: some profile fits did not converge; check the table", style="yellow"
        )
    nuis = [
        {"name": k, "value": v, "pull": best["pulls"].get(_PULL_KEY.get(k, k))}
        for k, v in best["nuisances"].items()
    ]
    console.print(rich_table("nuisances at the best fit", nuis, _NUIS_COLUMNS))
    rows = out["scan"]
    step = max(1, len(rows) // 15)
    shown = [
        {**r, "minus1": r["expected_band_g"]["minus1"], "plus1": r["expected_band_g"]["plus1"]}
        for r in rows[::step]
    ]
    console.print(rich_table(f"{out['cl']:.0%} CL upper limits on g", shown, _SCAN_COLUMNS))


_PULL_KEY = {"bias_p0": "bias_u0", "bias_p1_per_mev": "bias_u1"}
_NUIS_COLUMNS = [("name", "nuisance", ""), ("value", "value", ".5g"), ("pull", "pull [σ]", "+.2f")]
_SCAN_COLUMNS = [
    ("mass_mev", "M [MeV]", ".2f"),
    ("local_significance", "Z local", ".2f"),
    ("observed_limit_g", "g obs", ".3e"),
    ("expected_limit_g", "g exp", ".3e"),
    ("minus1", "-1σ", ".3e"),
    ("plus1", "+1σ", ".3e"),
]


@guarded
def replan(
    plan_file: Annotated[Path, typer.Argument(help="The plan being run (JSON).")],
    observed: Annotated[
        Path, typer.Option(help="Observed-scan table of the points taken so far (.csv/.parquet).")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the new plan JSON here.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """Re-allocate the remaining beam time after the points taken so far (expected
    discovery power over the masses still open); the new plan chains the old one's hash."""
    check_output_path(output, "--output")
    from scanplan.analysis.observed import load_observed
    from scanplan.analysis.replan import replan as do_replan
    from scanplan.records import load_plan, save_plan

    plan = load_plan(plan_file)
    result = do_replan(plan, load_observed(observed))
    sealed = result.plan.sealed()
    if output is not None:
        save_plan(sealed, output)
    info = result.info.model_dump(mode="json")
    out = {"plan_sha256": sealed.content_sha256, "points": len(sealed.points), **info}
    if json_out:
        print_json(out)
        return
    i = result.info
    console.print(
        f"{plan_file}: {i.used_hours:.1f} h of {i.budget_hours:.1f} h used; "
        f"{i.remaining_hours:.1f} h re-allocated. Best fit so far M = {i.best_mass_mev:.3f} MeV "
        f"({i.max_local_significance:.2f}σ local); {i.open_masses}/{i.masses} masses open. "
        f"Expected discovery power {i.power_before:.3f} -> {i.power_after:.3f}.",
        highlight=False,
    )
    rows = [c.model_dump() for c in i.changes if c.action != "taken"]
    console.print(rich_table("changes", rows, _CHANGE_COLUMNS))
    if output is not None:
        console.print(f"new plan written to {output} (parent {i.parent_sha256[:12]})")


_CHANGE_COLUMNS = [
    ("action", "action", ""),
    ("old_period", "old period", ""),
    ("new_period", "new period", ""),
    ("e_beam_mev", "E [MeV]", ".3f"),
    ("hours_before", "h before", ".1f"),
    ("hours_after", "h after", ".1f"),
    ("reason", "why", ""),
]
