"""Control-room figures: the checked beam spot on the TimePix (``scanplan check --plot``) and
the POT taken against the plan per point (``scanplan show --store``).

Both take records (a :class:`scanplan.check.verdict.Verdict`, the store's per-period sums) and
return the path written through :func:`scanplan.figures.write_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..figures import write_figure
from .plan import figure

if TYPE_CHECKING:
    from ..check.verdict import Comparison, PredictedSpot, Verdict
    from ..records import Plan

#: colours of the verdict levels (the terminal's: green / yellow / red)
LEVEL_COLOURS = {"OK": "tab:green", "WARN": "goldenrod", "FAIL": "tab:red"}
#: the two model predictions drawn, with their comparison labels and colours
#: (comparison label, legend text, colour, marker, line width): the plan's drawn wider
#: underneath, so that it shows when both predictions coincide
PREDICTIONS = (
    ("plan", "plan currents", "tab:blue", "+", 2.6),
    ("measured currents", "measured currents", "tab:purple", "x", 1.3),
)


def _comparison(verdict: Verdict, name: str) -> Comparison | None:
    try:
        return verdict.comparison(name)
    except KeyError:
        return None


def _chips(ax: Any) -> tuple[float, float]:
    """The TimePix chip outlines (PADME frame, mm); returns the detector half sizes."""
    from matplotlib.patches import Rectangle

    from hw_interfaces.timepix import TimepixGeometry

    g = TimepixGeometry()
    for row in range(g.n_chip_rows):
        for col in range(g.n_chip_cols):
            x0 = col * (g.chip_mm + g.gap_x_mm) - g.width_mm / 2 + g.offset_x_mm
            y0 = row * (g.chip_mm + g.gap_y_mm) - g.height_mm / 2 + g.offset_y_mm
            ax.add_patch(
                Rectangle((x0, y0), g.chip_mm, g.chip_mm, fill=True, fc="0.95", ec="0.55", lw=0.8)
            )
    return g.width_mm / 2, g.height_mm / 2


def _predicted_centre(verdict: Verdict, spot: PredictedSpot) -> tuple[float, float]:
    assert verdict.prediction is not None
    return (
        spot.x_timepix_mm + verdict.prediction.reference_x_mm,
        spot.y_timepix_mm + verdict.prediction.reference_y_mm,
    )


def spot_figure(verdict: Verdict) -> Any:
    """Measured TimePix centroid (with its rms size) against the model's predictions for the
    plan's and the measured currents, each with its warn (solid) and fail (dashed)
    tolerance ellipse, on the chip outline; title: point, level and the worst reason."""
    from matplotlib.patches import Ellipse

    fig, (ax,) = figure(height_in=4.3)
    half_w, half_h = _chips(ax)
    xs: list[float] = [-half_w, half_w]
    ys: list[float] = [-half_h, half_h]
    pred = verdict.prediction
    for key, label, colour, marker, width in PREDICTIONS:
        spot = None
        if pred is not None:
            spot = pred.plan if key == "plan" else pred.measured_currents
        cx = _comparison(verdict, f"TimePix x vs model ({key})")
        cy = _comparison(verdict, f"TimePix y vs model ({key})")
        if spot is None:
            continue
        x0, y0 = _predicted_centre(verdict, spot)
        ax.plot(
            [x0],
            [y0],
            marker=marker,
            ms=14,
            mew=2,
            color=colour,
            ls="none",
            label=f"model, {label}",
        )
        if cx is not None and cy is not None and cx.warn and cy.warn and cx.fail and cy.fail:
            for (wx, wy), style in (((cx.warn, cy.warn), "-"), ((cx.fail, cy.fail), "--")):
                ax.add_patch(
                    Ellipse((x0, y0), 2 * wx, 2 * wy, fill=False, ec=colour, ls=style, lw=width)
                )
                xs += [x0 - wx, x0 + wx]
                ys += [y0 - wy, y0 + wy]
    m = verdict.beam_spot
    level_colour = LEVEL_COLOURS.get(verdict.level, "black")
    if m is not None:
        ax.add_patch(
            Ellipse(
                (m.x_mm, m.y_mm),
                2 * m.sigma_x_mm,
                2 * m.sigma_y_mm,
                fill=True,
                fc=level_colour,
                alpha=0.18,
                ec="none",
            )
        )
        ax.plot(
            [m.x_mm],
            [m.y_mm],
            "o",
            ms=8,
            color=level_colour,
            label=f"measured ({m.hits_used} hits, rms {m.sigma_x_mm:.1f} x {m.sigma_y_mm:.1f} mm)",
        )
        xs += [m.x_mm - m.sigma_x_mm, m.x_mm + m.sigma_x_mm]
        ys += [m.y_mm - m.sigma_y_mm, m.y_mm + m.sigma_y_mm]
    else:
        ax.text(
            0,
            0,
            "no beam spot measured",
            ha="center",
            va="center",
            fontsize=14,
            color="tab:red",
            weight="bold",
        )
    cx = _comparison(verdict, "TimePix x vs model (measured currents)")
    if cx is not None and cx.implied_current_a is not None and cx.level != "OK":
        ax.text(
            0.01,
            0.02,
            f"x offset {cx.difference:+.2f} mm \u2248 {cx.implied_current_a:+.2f} A on {cx.implied_magnet}",
            transform=ax.transAxes,
            fontsize=11,
            color=LEVEL_COLOURS[cx.level],
            weight="bold",
        )
    pad = 3.0
    ax.set_xlim(min(xs) - pad, max(xs) + pad)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x [mm] (PADME frame)")
    ax.set_ylabel("y [mm]")
    ax.grid(alpha=0.3)
    ax.set_title(
        f"Point {verdict.period}: {verdict.level}  (plan {verdict.plan_sha256[:12]}, "
        f"{verdict.time_utc})\nTimePix spot vs model: ellipses = warn (solid) / fail (dashed) "
        "tolerance",
        fontsize=11,
        color=level_colour if verdict.level != "OK" else "black",
    )
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    return fig


def plot_check(verdict: Verdict, path: Path) -> Path:
    """Write :func:`spot_figure` to ``path`` (format from its suffix)."""
    return write_figure(spot_figure(verdict), path)


@dataclass(frozen=True)
class PointProgress:
    """One plan point in the store: planned and recorded POT, done, suspensions and the beam-off
    time they recorded [s] (None: not recorded)."""

    period: int
    e_beam_mev: float
    planned_pot: float
    recorded_pot: float | None
    done: bool
    suspensions: int
    beam_off_s: float | None


def progress_figure(plan: Plan, progress: Sequence[PointProgress]) -> Any:
    """POT taken (bars, green when done) against the plan (outline) per point, and the
    suspensions per point with their beam-off time when the store has them."""
    import numpy as np

    fig, (ax, ax2) = figure(nrows=2, height_in=3.4)
    rows = sorted(progress, key=lambda r: r.period)
    x = np.arange(len(rows))
    planned = np.array([r.planned_pot for r in rows])
    taken = np.array([r.recorded_pot or 0.0 for r in rows])
    colours = ["tab:green" if r.done else "tab:orange" for r in rows]
    ax.bar(x, planned, width=0.8, fill=False, ec="0.3", lw=1.2, label="planned POT")
    ax.bar(x, taken, width=0.6, color=colours, label="POT recorded (green: done, orange: open)")
    ax.set_ylim(0, max(planned.max(initial=0), taken.max(initial=0), 1.0) * 1.3)
    for i, r in enumerate(rows):
        if r.recorded_pot is None:
            ax.text(
                i,
                planned[i] * 0.03,
                "no POT\nrecorded",
                ha="center",
                va="bottom",
                fontsize=7,
                color="0.35",
                rotation=90 if len(rows) > 12 else 0,
            )
    total_p, total_t = planned.sum(), taken.sum()
    ax.set_ylabel("POT")
    ax.set_title(
        f"{plan.name or 'plan'} {plan.content_sha256[:12]}: POT recorded {total_t:.3g} of "
        f"{total_p:.3g} planned ({100 * total_t / total_p if total_p else 0:.0f} %), "
        f"{sum(r.done for r in rows)}/{len(rows)} points done",
        fontsize=11,
    )
    ax.legend(fontsize=9, loc="upper right", ncols=2)
    ax.grid(axis="y", alpha=0.3)
    susp = np.array([r.suspensions for r in rows])
    ax2.bar(x, susp, color="tab:red", width=0.6, label="suspensions")
    for i, r in enumerate(rows):
        if r.beam_off_s:
            ax2.text(
                i, susp[i], f"{r.beam_off_s / 60:.0f} min off", ha="center", va="bottom", fontsize=8
            )
    ax2.set_ylabel("suspensions")
    ax2.set_ylim(0, max(1, int(susp.max(initial=0))) * 1.3)
    ax2.yaxis.get_major_locator().set_params(integer=True)
    ax2.grid(axis="y", alpha=0.3)
    labels = [f"{r.period}\n{r.e_beam_mev:.1f}" for r in rows]
    step = max(1, len(rows) // 25)
    for a in (ax, ax2):
        a.set_xticks(x[::step], labels[::step], fontsize=8)
    ax2.set_xlabel("period / beam energy [MeV]")
    if not susp.any():
        ax2.text(
            0.5,
            0.5,
            "no suspension recorded",
            transform=ax2.transAxes,
            ha="center",
            va="center",
            color="0.4",
        )
    fig.tight_layout()
    return fig


def plot_progress(plan: Plan, progress: Sequence[PointProgress], path: Path) -> Path:
    """Write :func:`progress_figure` to ``path``."""
    return write_figure(progress_figure(plan, progress), path)


def store_progress(
    plan: Plan,
    recorded: Mapping[int, Mapping[str, float]],
    done: set[int],
    suspensions: Mapping[int, tuple[int, float | None]],
) -> list[PointProgress]:
    """Per-point rows from the store's sums: ``recorded`` period -> {"pot": ...},
    ``done`` periods, ``suspensions`` period -> (count, beam-off s or None)."""
    out = []
    for p in sorted(plan.points, key=lambda q: q.period):
        pot = recorded.get(p.period, {}).get("pot")
        n, off = suspensions.get(p.period, (0, None))
        out.append(
            PointProgress(
                period=p.period,
                e_beam_mev=p.e_beam_mev,
                planned_pot=p.target_pot,
                recorded_pot=None if pot is None else float(pot),
                done=p.period in done,
                suspensions=n,
                beam_off_s=off,
            )
        )
    return out
