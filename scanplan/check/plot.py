"""``scanplan check --plot``: the measured and the predicted beam spot on the TimePix.

The detector outline comes from :class:`hw_interfaces.timepix.TimepixGeometry` (its one
home). Drawn: the measured centroid with its 1-sigma size ellipse, the model's centroid for
the measured currents (and for the plan's) with the tolerance ellipses of the check (WARN and
FAIL half-axes, as in :func:`scanplan.check.comparisons.model_comparisons`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .tolerances import CheckTolerances
from .verdict import SpotRecord, Verdict


def spot_figure(verdict: Verdict, tol: CheckTolerances) -> Any:
    """A matplotlib figure of the spots of ``verdict`` (mm, PADME frame)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse, Rectangle

    from hw_interfaces.timepix import TimepixGeometry

    g = TimepixGeometry()
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.add_patch(
        Rectangle(
            (g.offset_x_mm - g.width_mm / 2, g.offset_y_mm - g.height_mm / 2),
            g.width_mm,
            g.height_mm,
            fill=False,
            color="0.5",
            label="TimePix (2 x 6 chips)",
        )
    )
    spot = verdict.spot if isinstance(verdict.spot, SpotRecord) else None
    st = tol.spot
    pred = verdict.prediction
    if pred is not None:
        for label, p, colour in (
            ("model, measured currents", pred.measured_currents, "tab:blue"),
            ("model, plan currents", pred.plan, "tab:green"),
        ):
            if p is None:
                continue
            x = p.x_timepix_mm + pred.reference_x_mm
            y = p.y_timepix_mm + pred.reference_y_mm
            stat = 0.0 if spot is None else 1.0 / math.sqrt(max(spot.hits_used, 1))
            tx = math.hypot(
                st.alignment_mm,
                abs(p.dx_dcurrent_dhstb02_mm_per_a) * st.current_sigma_a,
                (spot.sigma_x_mm if spot else 0.0) * stat,
            )
            ty = math.hypot(st.alignment_mm, (spot.sigma_y_mm if spot else 0.0) * stat)
            ax.plot([x], [y], "+", color=colour, ms=12, label=label)
            for k, style in ((1.0, "-"), (st.fail_factor, "--")):
                ax.add_patch(
                    Ellipse(
                        (x, y), 2 * k * tx, 2 * k * ty, fill=False, color=colour, ls=style, lw=1
                    )
                )
    if spot is not None:
        ax.plot([spot.x_mm], [spot.y_mm], "o", color="tab:red", label="measured")
        ax.add_patch(
            Ellipse(
                (spot.x_mm, spot.y_mm),
                2 * spot.sigma_x_mm,
                2 * spot.sigma_y_mm,
                fill=False,
                color="tab:red",
                label="measured 1 sigma",
            )
        )
    else:
        ax.text(0, 0, "no TimePix spot", ha="center", va="center", color="tab:red")
    ax.set_xlim(-g.width_mm / 2 - 2, g.width_mm / 2 + 2)
    ax.set_ylim(-g.height_mm / 2 - 2, g.height_mm / 2 + 2)
    ax.set_aspect("equal")
    ax.set_xlabel("x [mm]")
    ax.set_ylabel("y [mm]")
    ax.set_title(
        f"point {verdict.period}: {verdict.level} - tolerance ellipses: WARN solid, FAIL dashed",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def write_spot_plot(verdict: Verdict, tol: CheckTolerances, path: Path) -> Path:
    from ..figures import write_figure

    return write_figure(spot_figure(verdict, tol), path)
