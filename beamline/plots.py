"""Plots of the model (matplotlib, Agg backend). Functions return the figure; the caller
(``scanplan``) writes it: ``beamline`` writes no files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import BeamLine
from .names import SLITS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


def _with_drift_interiors(bl: BeamLine, tw: pd.DataFrame) -> pd.DataFrame:
    """Add points inside drifts, where beta is a parabola and D a straight line (exact)."""
    import numpy as np
    import pandas as pd

    lengths = {n: getattr(bl.line[n], "length", 0.0) for n in tw.name if n != "_end_point"}
    extra = []
    for row in tw.itertuples():
        if not row.name.startswith("||drift") or lengths.get(row.name, 0.0) <= 0:
            continue
        ds = np.linspace(0, lengths[row.name], 12)[1:-1]
        gx = (1 + row.alfx**2) / row.betx_m
        gy = (1 + row.alfy**2) / row.bety_m
        extra.append(
            pd.DataFrame(
                {
                    "s_m": row.s_m + ds,
                    "betx_m": row.betx_m - 2 * row.alfx * ds + gx * ds**2,
                    "bety_m": row.bety_m - 2 * row.alfy * ds + gy * ds**2,
                    "dx_m": row.dx_m + row.dpx * ds,
                }
            )
        )
    cols = ["s_m", "betx_m", "bety_m", "dx_m"]
    return pd.concat([tw[cols], *extra]).sort_values("s_m", kind="stable")


def optics_figure(bl: BeamLine) -> Figure:
    """Figure of beta_x, beta_y [m] and D_x [m] along s [m], with the elements drawn."""
    import matplotlib
    import matplotlib.patches

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .optics import twiss

    tw = _with_drift_interiors(bl, twiss(bl))
    fig, (ax_el, ax_b, ax_d) = plt.subplots(
        3, 1, sharex=True, figsize=(10, 7), gridspec_kw={"height_ratios": [1, 4, 3]}
    )
    ax_b.plot(tw.s_m, tw.betx_m, label=r"$\beta_x$")
    ax_b.plot(tw.s_m, tw.bety_m, label=r"$\beta_y$")
    ax_b.set_ylabel(r"$\beta$ [m]")
    ax_b.legend(loc="upper left")
    ax_d.plot(tw.s_m, tw.dx_m, color="C2", label=r"$D_x$")
    ax_d.set_ylabel(r"$D_x$ [m]")
    ax_d.set_xlabel("s from DHSTB01 entrance [m]")
    ax_d.axhline(0, color="0.7", lw=0.5)
    tab = bl.line.get_table()
    colours = {"Bend": "C0", "RBend": "C0", "Quadrupole": "C3"}
    slits = {s.lower() for s in SLITS}
    for name, s, etype in zip(tab.name, tab.s, tab.element_type, strict=False):
        s_f = s - bl.s_frame_m
        if etype in colours:
            length = bl.line[name].length
            sign = 1 if etype != "Quadrupole" else (1 if bl.line[name].k1 >= 0 else -1)
            ax_el.add_patch(
                matplotlib.patches.Rectangle((s_f, 0), length, 0.8 * sign, color=colours[etype])
            )
            ax_el.text(
                s_f + length / 2,
                0.9 if sign > 0 else -0.9,
                name.upper(),
                ha="center",
                va="bottom" if sign > 0 else "top",
                fontsize=6,
            )
        elif name in slits:
            ax_el.axvline(s_f, color="k", lw=1.5)
            ax_el.text(s_f, 0.9, name.upper(), ha="center", va="bottom", fontsize=6)
        elif name in ("padme_target", "timepix"):
            ax_el.axvline(s_f, color="C1", lw=1.0)
            ax_el.text(s_f, -0.9, name.upper(), ha="center", va="top", fontsize=6)
    ax_el.set_ylim(-1.6, 1.6)
    ax_el.axis("off")
    fig.suptitle(f"BTF→PADME optics, settings {bl.settings.name}, E = {bl.energy_mev:.2f} MeV")
    fig.tight_layout()
    return fig
