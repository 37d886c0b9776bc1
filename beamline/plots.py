"""Plots of the model (matplotlib, Agg backend). Functions return the figure; the caller
(``scanplan``) writes it: ``beamline`` writes no files.

* :func:`optics_figure`: beta_x, beta_y and D_x sampled finely along s (inside drifts,
  quadrupoles and bends, by the hard-edge transfer maps from each element's entrance
  Twiss, :func:`fine_twiss`), the beam envelope (sigma_x with dispersion, sigma_y) against
  the apertures, element labels placed on rows so that they do not overlap;
* :func:`calibration_figure`: DHSTB01 Hall-probe field above the nominal excitation, the
  2022 pass fits over their own currents, and the hysteresis branches of the model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .model import BeamLine
from .names import SLITS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Points per element (magnet or drift) of the fine sampling.
SAMPLES_PER_ELEMENT = 24


def _plane_map(k: float, ds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Elements (C, S, C', S') of the linear map over ``ds`` [m] with focusing ``k`` [1/m^2]."""
    if abs(k) < 1e-12:
        return np.ones_like(ds), ds, np.zeros_like(ds), np.ones_like(ds)
    w = math.sqrt(abs(k))
    if k > 0:
        c, s = np.cos(w * ds), np.sin(w * ds) / w
        return c, s, -w * w * s, c
    c, s = np.cosh(w * ds), np.sinh(w * ds) / w
    return c, s, w * w * s, c


def transport_twiss(el: object, row: object, ds: np.ndarray) -> dict[str, np.ndarray]:
    """``betx_m, bety_m, dx_m`` at distances ``ds`` [m] inside element ``el`` from its
    entrance Twiss ``row`` (a row of :func:`beamline.optics.twiss`): hard-edge maps of a
    drift, a quadrupole (``k1``) or a sector bend (curvature ``h``, strength ``k0``:
    horizontal focusing ``h k0``, dispersion source ``k0``; exact for a pure dipole)."""
    kind = type(el).__name__
    kx = ky = k0 = 0.0
    if kind == "Quadrupole":
        kx, ky = float(el.k1), -float(el.k1)  # type: ignore[attr-defined]
    elif kind in ("Bend", "RBend"):
        k0 = float(el.k0)  # type: ignore[attr-defined]
        kx = float(el.h) * k0  # type: ignore[attr-defined]
    cx, sx, _, _ = _plane_map(kx, ds)
    cy, sy, _, _ = _plane_map(ky, ds)
    r = row
    gx = (1 + r.alfx**2) / r.betx_m  # type: ignore[attr-defined]
    gy = (1 + r.alfy**2) / r.bety_m  # type: ignore[attr-defined]
    betx = cx**2 * r.betx_m - 2 * cx * sx * r.alfx + sx**2 * gx  # type: ignore[attr-defined]
    bety = cy**2 * r.bety_m - 2 * cy * sy * r.alfy + sy**2 * gy  # type: ignore[attr-defined]
    d16 = k0 * (1 - cx) / kx if (kx != 0 and k0 != 0) else np.zeros_like(ds)
    dx = cx * r.dx_m + sx * r.dpx + d16  # type: ignore[attr-defined]
    return {"betx_m": betx, "bety_m": bety, "dx_m": dx}


def fine_twiss(bl: BeamLine, tw: pd.DataFrame, samples: int = SAMPLES_PER_ELEMENT) -> pd.DataFrame:
    """Twiss (``s_m, betx_m, bety_m, dx_m``) with ``samples`` points inside every element
    of length > 0 (:func:`transport_twiss`) besides the element edges of ``tw``."""
    import pandas as pd

    parts = [tw[["s_m", "betx_m", "bety_m", "dx_m"]]]
    for row in tw.itertuples():
        if row.name == "_end_point":
            continue
        el = bl.line.element_dict.get(row.name)
        length = float(getattr(el, "length", 0.0) or 0.0)
        if length <= 0:
            continue
        ds = np.linspace(0.0, length, samples)[1:-1]
        parts.append(pd.DataFrame({"s_m": row.s_m + ds, **transport_twiss(el, row, ds)}))
    return pd.concat(parts).sort_values("s_m", kind="stable").reset_index(drop=True)


def apertures(bl: BeamLine) -> pd.DataFrame:
    """Aperture half-widths [m] along s (``s_m, half_x_m, half_y_m``) of every LimitRect /
    LimitEllipse of the line (slits at their present gaps)."""
    import pandas as pd

    tab = bl.line.get_table()
    rows = []
    for name, s, etype in zip(tab.name, tab.s, tab.element_type, strict=False):
        el = bl.line.element_dict.get(name)
        if etype == "LimitRect":
            hx = min(abs(el.min_x), abs(el.max_x))
            hy = min(abs(el.min_y), abs(el.max_y))
        elif etype == "LimitEllipse":
            hx, hy = math.sqrt(el.a_squ), math.sqrt(el.b_squ)
        else:
            continue
        rows.append({"s_m": s - bl.s_frame_m, "half_x_m": hx, "half_y_m": hy, "name": name})
    return pd.DataFrame(rows)


def label_rows(positions: list[float], min_gap: float, n_rows: int = 3) -> list[int]:
    """Row (0..n_rows-1) per label so that labels on one row are at least ``min_gap`` apart
    (greedy, in order of position; labels that fit nowhere go to the emptiest row)."""
    last = [-math.inf] * n_rows
    rows = [0] * len(positions)
    for i in sorted(range(len(positions)), key=lambda k: positions[k]):
        x = positions[i]
        free = [r for r in range(n_rows) if x - last[r] >= min_gap]
        r = free[0] if free else min(range(n_rows), key=lambda q: last[q])
        rows[i] = r
        last[r] = x
    return rows


def _elements(ax: Axes, bl: BeamLine) -> None:
    import matplotlib.patches

    tab = bl.line.get_table()
    colours = {"Bend": "C0", "RBend": "C0", "Quadrupole": "C3"}
    slits = {s.lower() for s in SLITS}
    labels: list[tuple[float, str]] = []
    for name, s, etype in zip(tab.name, tab.s, tab.element_type, strict=False):
        s_f = s - bl.s_frame_m
        if etype in colours:
            length = bl.line[name].length
            sign = 1 if etype != "Quadrupole" else (1 if bl.line[name].k1 >= 0 else -1)
            ax.add_patch(
                matplotlib.patches.Rectangle((s_f, 0), length, 0.5 * sign, color=colours[etype])
            )
            labels.append((s_f + length / 2, name.upper()))
        elif name in slits:
            ax.axvline(s_f, color="k", lw=1.5, ymax=0.5)
            labels.append((s_f, name.upper()))
        elif name in ("padme_target", "timepix", "mylar_window"):
            ax.axvline(s_f, color="C1", lw=1.0, ymax=0.5)
            labels.append((s_f, name.split("_")[-1].upper()))
    span = float(tab.s[-1])
    rows = label_rows([x for x, _ in labels], min_gap=0.07 * span, n_rows=4)
    for (x, text), r in zip(labels, rows, strict=True):
        ax.text(x, 0.75 + 0.55 * r, text, ha="center", va="bottom", fontsize=6)
    ax.set_ylim(-0.7, 3.1)
    ax.axis("off")


def optics_figure(bl: BeamLine, *, rel_spread: float = 0.0025, n_sigma: float = 3.0) -> Figure:
    """Figure: elements, beta_x/beta_y [m], D_x [m], and the ``n_sigma`` beam envelope [mm]
    (``sigma_x = sqrt(beta_x eps_x + (D_x rel_spread)^2)``, ``sigma_y = sqrt(beta_y eps_y)``,
    emittances of the model's beam) against the aperture half-widths, along s [m]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .optics import twiss

    tw = fine_twiss(bl, twiss(bl))
    fig, (ax_el, ax_b, ax_d, ax_env) = plt.subplots(
        4, 1, sharex=True, figsize=(11, 9), gridspec_kw={"height_ratios": [1.2, 3, 2, 3]}
    )
    _elements(ax_el, bl)
    ax_b.plot(tw.s_m, tw.betx_m, label=r"$\beta_x$")
    ax_b.plot(tw.s_m, tw.bety_m, label=r"$\beta_y$")
    ax_b.set_ylabel(r"$\beta$ [m]")
    ax_b.legend(loc="upper left", fontsize=8)
    ax_d.plot(tw.s_m, tw.dx_m, color="C2", label=r"$D_x$")
    ax_d.set_ylabel(r"$D_x$ [m]")
    ax_d.axhline(0, color="0.7", lw=0.5)
    b = bl.beam
    sx = 1e3 * np.sqrt(tw.betx_m * b.emit_x_m + (tw.dx_m * rel_spread) ** 2)
    sy = 1e3 * np.sqrt(tw.bety_m * b.emit_y_m)
    ax_env.plot(tw.s_m, n_sigma * sx, color="C0", label=rf"{n_sigma:g}$\sigma_x$")
    ax_env.plot(tw.s_m, n_sigma * sy, color="C1", label=rf"{n_sigma:g}$\sigma_y$")
    ap = apertures(bl)
    if not ap.empty:
        ax_env.step(ap.s_m, 1e3 * ap.half_x_m, where="post", color="C0", ls=":", lw=1,
                    label="aperture x")  # fmt: skip
        ax_env.step(ap.s_m, 1e3 * ap.half_y_m, where="post", color="C1", ls=":", lw=1,
                    label="aperture y")  # fmt: skip
    ax_env.set_ylim(0, max(40.0, float(np.nanmax(n_sigma * np.maximum(sx, sy))) * 1.1))
    ax_env.set_ylabel("half-size [mm]")
    ax_env.set_xlabel("s from DHSTB01 entrance [m]")
    ax_env.legend(loc="upper left", fontsize=7, ncol=2)
    fig.suptitle(
        f"BTF→PADME optics, settings {bl.settings.name}, E = {bl.energy_mev:.2f} MeV, "
        f"envelope for σδ = {100 * rel_spread:.3g} %"
    )
    fig.tight_layout()
    return fig


def calibration_figure() -> Figure:
    """DHSTB01: Hall-probe field minus the nominal excitation [G] against the current [A]:
    the 2022 pass fits over the currents they were fitted on (points) and extrapolated
    (thin), and the branch curves of the hysteresis model (descending above ascending) with
    the known-branch sigma band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import calibration as cal
    from .hysteresis import hysteresis_model, parameters

    model = hysteresis_model()
    nominal = cal.dipole_calibration("DHSTB01", model.base_calibration)
    lo, hi = cal.branch_calibration("DHSTB01", None).valid_current_a  # type: ignore[union-attr]
    currents = np.linspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(9, 5))

    def offset_g(c: cal.LinearExcitation, i_a: np.ndarray) -> np.ndarray:
        return (c.offset - nominal.offset) + (c.slope - nominal.slope) * i_a

    for k, p in enumerate(model.passes):
        curve = cal.dipole_calibration("DHSTB01", p.calibration)
        colour = f"C{k}"
        ax.plot(currents, offset_g(curve, currents), color=colour, lw=0.6, alpha=0.5)
        own = np.linspace(*p.current_range_a, 8)
        ax.plot(own, offset_g(curve, own), "o", ms=3, color=colour,
                label=f"{p.calibration} ({p.branch}, pass {p.cycle:g}): {p.offset_g:.1f} G")  # fmt: skip
    sigma = parameters().sigma_known_branch_g
    for branch, style in (("descending", "-"), ("ascending", "--"), (None, ":")):
        branch_curve = cal.branch_calibration("DHSTB01", branch)
        if branch_curve is None:
            continue
        off = offset_g(branch_curve, currents)
        ax.plot(currents, off, style, color="k", lw=1.5, label=f"model {branch or 'unknown'}")
        if branch is not None:
            ax.fill_between(currents, off - sigma, off + sigma, color="0.85", alpha=0.4, lw=0)
    ax.set_xlabel("DHSTB01 current [A]")
    ax.set_ylabel("B_Hall − B_nominal [G]")
    ax.set_title(
        f"DHSTB01 hysteresis: branch {model.branch_g:+.1f} ± {model.branch_sigma_g:.1f} G "
        f"(descending − ascending), drift {model.drift_g_per_cycle:+.1f} ± "
        f"{model.drift_sigma_g_per_cycle:.1f} G per pass"
    )
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
