"""Plan figures: points over their line shapes, expected sensitivity, two plans compared."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..figures import write_figure

if TYPE_CHECKING:
    from ..compare import Comparison
    from ..records import Plan
    from ..sensitivity import ExpectedLimits, ToyGrid

PASS_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def figure(nrows: int = 1, height_in: float = 4.5) -> tuple[Any, Any]:
    """A figure with ``nrows`` stacked axes, ``height_in`` inches each (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, 1, figsize=(9, height_in * nrows), squeeze=False)
    return fig, axes[:, 0]


def plot_plan(plan: Plan, path: Path) -> Path:
    """Selected signal per g² of every on-resonance point versus X17 mass (colour = pass),
    their sum (the exposure) and the points' sqrt(s)."""
    import numpy as np

    from ..sensitivity import coverage, plan_arrays, signal_per_g2

    arr = plan_arrays(plan)
    cov = coverage(plan)
    s = signal_per_g2(cov.masses_mev, arr, plan.inputs.physics)
    fig, (ax,) = figure()
    pts = sorted(plan.points, key=lambda q: q.period)
    for i, q in enumerate(pts):
        if q.kind == "control":
            continue
        colour = PASS_COLOURS[q.pass_index % len(PASS_COLOURS)]
        ax.plot(cov.masses_mev, s[:, i], color=colour, lw=0.8, alpha=0.7)
    ax.plot(cov.masses_mev, cov.exposure_per_g2, color="k", lw=1.5, label="sum (exposure)")
    on = [q for q in pts if q.kind == "on_resonance"]
    ax.scatter(
        [q.sqrt_s_mev for q in on],
        [0] * len(on),
        c=[PASS_COLOURS[q.pass_index % len(PASS_COLOURS)] for q in on],
        marker="|",
        s=200,
        label="points (colour = pass)",
    )
    ax.set_xlabel("X17 mass = sqrt(s) at resonance [MeV]")
    ax.set_ylabel("selected signal per g² [events]")
    n_ctl = len(pts) - len(on)
    ax.set_title(
        f"{plan.name or 'plan'}: {len(on)} points over their line shapes (+{n_ctl} control)"
    )
    ax.set_ylim(bottom=-0.03 * float(np.max(cov.exposure_per_g2)))
    ax.legend(loc="upper right")
    return write_figure(fig, path, bbox_inches="tight")


def plot_sensitivity(
    lim: ExpectedLimits, title: str, path: Path, grid: ToyGrid | None = None, n_toys: int = 0
) -> Path:
    """Median expected CLs limit on g versus mass [MeV] with its ±1σ band, and the toy-MC
    limits of ``grid`` when given."""
    fig, (ax,) = figure()
    if lim.g_minus2 is not None and lim.g_plus2 is not None:
        ax.fill_between(
            lim.masses_mev, lim.g_minus2, lim.g_plus2, color="gold", alpha=0.5, label="±2σ"
        )
    ax.fill_between(
        lim.masses_mev, lim.g_minus1, lim.g_plus1, color="tab:green", alpha=0.3, label="±1σ"
    )
    ax.plot(lim.masses_mev, lim.g_median, color="k", label=f"median expected {lim.cl:.0%} CLs")
    if grid is not None:
        err = getattr(grid, "g_limit_err", None)  # toy error (published-likelihood grid)
        ax.errorbar(
            grid.masses_mev,
            grid.g_limit,
            yerr=err,
            fmt="o",
            color="tab:red",
            label=f"toys ({n_toys}/cell)",
        )
    ax.set_xlabel("X17 mass [MeV]")
    ax.set_ylabel("upper limit on g")
    ax.set_title(f"{title}: expected sensitivity")
    ax.legend()
    return write_figure(fig, path, bbox_inches="tight")


def plot_comparison(
    c: Comparison, plans: tuple[Plan, Plan], labels: tuple[str, str], path: Path
) -> Path:
    """Expected g limits of two plans versus mass [MeV] and their POT per point."""
    fig, (ax, ax2) = figure(2, 3.5)
    for lim, plan_, label, col in zip(c.limits, plans, labels, PASS_COLOURS, strict=False):
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
    return write_figure(fig, path, bbox_inches="tight")
