"""Plots of a spread table (matplotlib, Agg backend). The function returns the figure; the
caller (``scanplan``) writes it: ``beamline`` writes no files.

One figure with three panels: relative energy spread against the SLTB4 gap per energy,
transmission against spread (every row, with the front of the best settings), and the beam
spot at the TimePix for one scan point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import BeamlineInputError
from .names import SLITS
from .spread import SpreadResult, tradeoff_curve

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: the slit whose gap is the abscissa of panel (a)
SCANNED_SLIT = "SLTB4"


def spread_figure(
    result: SpreadResult,
    *,
    measure: str = "rms",
    target_rel_spread: float | None = None,
    spot_point: int | None = None,
) -> Figure:
    """The three-panel figure; ``spot_point`` selects the scan point of the TimePix spot
    (default: the middle one); ``target_rel_spread`` (fraction) is drawn when given."""
    import matplotlib
    import matplotlib.cm
    import matplotlib.colors

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = result.table
    scanned = f"{SCANNED_SLIT.lower()}_mm"
    others = [f"{s.lower()}_mm" for s in SLITS if s != SCANNED_SLIT]
    col = f"rel_spread_{measure}"
    fig, (ax_a, ax_t, ax_s) = plt.subplots(1, 3, figsize=(17, 5))

    # (a) spread vs SLTB4 gap, one curve per energy (other slits at their first setting)
    first = table.iloc[0]
    sel = table
    for other in others:
        sel = sel[sel[other] == first[other]]
    energies = np.unique(sel["energy_mev"])
    cmap = plt.get_cmap("viridis")
    norm = matplotlib.colors.Normalize(energies.min(), max(energies.max(), energies.min() + 1e-9))
    for e in energies:
        g = sel[sel["energy_mev"] == e].sort_values(scanned)
        ax_a.plot(g[scanned], 100 * g[col], ".-", color=cmap(norm(e)), lw=1, ms=3)
    if len(energies) > 1:
        fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax_a, label="E [MeV]")
    ax_a.set_xlabel(f"{SCANNED_SLIT} gap [mm]")
    ax_a.set_ylabel(f"relative energy spread ({measure}) [%]")
    ax_a.set_title(
        ", ".join(f"{c.removesuffix('_mm').upper()} {first[c]:g} mm" for c in others), fontsize=9
    )
    if target_rel_spread is not None:
        ax_a.axhline(100 * target_rel_spread, color="C3", ls="--", lw=1)

    # (b) transmission vs spread
    ax_t.scatter(100 * table[col], table["transmission"], s=4, c="0.6", label="all settings")
    front = tradeoff_curve(table, measure)
    for i, (_, g) in enumerate(front.groupby("energy_mev")):
        ax_t.plot(
            100 * g[col], g["transmission"], "-", lw=0.8, color=cmap(norm(g.iloc[0].energy_mev))
        )
        if i == 0:
            ax_t.plot([], [], "-", color="k", lw=0.8, label="best settings per energy")
    if target_rel_spread is not None:
        ax_t.axvline(100 * target_rel_spread, color="C3", ls="--", lw=1, label="target")
    ax_t.set_xlabel(f"relative energy spread ({measure}) [%]")
    ax_t.set_ylabel("transmission")
    ax_t.set_yscale("log")
    ax_t.legend(fontsize=8)

    # (c) beam spot at the TimePix
    if result.spots and result.spot_edges_mm is not None:
        keys = sorted(result.spots)
        k = keys[len(keys) // 2] if spot_point is None else spot_point
        if k not in result.spots:
            raise BeamlineInputError(f"no beam spot for scan point {k}")
        xe, ye = result.spot_edges_mm
        h = result.spots[k]
        mesh = ax_s.pcolormesh(xe, ye, h.T, cmap="magma", shading="flat")
        fig.colorbar(mesh, ax=ax_s, label="particles per bin")
        e = result.metadata["point_energies_mev"][k]
        gaps = ", ".join(f"{s} {g:g}" for s, g in result.metadata["spot_setting_mm"].items())
        ax_s.set_title(f"TimePix spot, E = {e:g} MeV\ngaps [mm]: {gaps}", fontsize=8)
        ax_s.set_aspect("equal")
    ax_s.set_xlabel("x [mm]")
    ax_s.set_ylabel("y [mm]")
    fig.tight_layout()
    return fig
