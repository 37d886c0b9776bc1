"""Plots of the model (matplotlib, Agg backend). Functions return the figure; the caller
(``scanplan``) writes it: ``beamline`` writes no files.

:func:`optics_figure` is the optics a physicist reads: the element layout with labels that
never overlap, beta_x/beta_y and D_x sampled every 2 cm inside every element
(:func:`beamline.optics.sampled_twiss`), and the rms beam envelope of the settings' beam,
sigma = sqrt(beta*emit + (D*sigma_delta)^2), against the apertures of the lattice (pipe and
chamber half-widths, slit jaws) in mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import LatticeDataError
from .model import BeamLine
from .names import SLITS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .beam import BeamParameters

#: Element colours of the layout bar.
_COLOURS = {"bend": "tab:blue", "quad": "tab:red", "slit": "0.15", "device": "tab:orange"}
#: Zero-length devices shown in the layout (lattice element -> label).
_DEVICES = {"padme_target": "target", "ecal": "ECAL", "timepix": "TimePix"}
#: Layout label rows [data units of the layout axes] and font size [pt].
_LABEL_ROW0, _LABEL_ROW_STEP, _LABEL_FONT_PT = 1.05, 0.85, 7.5
#: Narrowest slit jaw drawn [m] and the envelope axes' extent in units of the widest pipe.
_JAW_MIN_WIDTH_M, _ENVELOPE_AXIS_PIPES = 0.12, 1.25


@dataclass(frozen=True)
class Aperture:
    """One aperture element of the lattice at ``s_m`` [m, facts frame]: its limits [mm] in
    x and y (``nan`` where it does not limit, e.g. the open plane of a slit), ``slit`` the
    slit it belongs to ("" for a pipe, chamber or flange), ``name`` the lattice element."""

    name: str
    s_m: float
    slit: str
    x_lo_mm: float
    x_hi_mm: float
    y_lo_mm: float
    y_hi_mm: float

    def limits_mm(self, plane: str) -> tuple[float, float]:
        return (self.x_lo_mm, self.x_hi_mm) if plane == "x" else (self.y_lo_mm, self.y_hi_mm)


def apertures(bl: BeamLine) -> list[Aperture]:
    """The aperture elements of ``bl.line`` in s order, read from the elements themselves
    (``LimitRect`` with its ``shift_x``/``shift_y`` offset, ``LimitEllipse``)."""
    tab = bl.line.get_table()
    out = []
    slits = {s.lower(): s for s in SLITS}
    for name, s, etype in zip(tab.name, tab.s, tab.element_type, strict=True):
        if not str(etype).startswith("Limit"):
            continue
        el = bl.line[name]
        sx, sy = float(getattr(el, "shift_x", 0.0)), float(getattr(el, "shift_y", 0.0))
        if etype == "LimitRect":
            x = (sx + el.min_x, sx + el.max_x)
            y = (sy + el.min_y, sy + el.max_y)
        elif etype == "LimitEllipse":
            x = (sx - el.a, sx + el.a)
            y = (sy - el.b, sy + el.b)
        else:
            raise LatticeDataError(f"aperture {name}: type {etype} is not drawn (Rect, Ellipse)")
        slit = slits.get(str(name).split("_")[0], "")
        if slit:  # the other plane of a slit is open (slit_open_half_m), not an aperture
            if bl.spec.slit(slit).plane == "x":
                y = (math.nan, math.nan)
            else:
                x = (math.nan, math.nan)
        out.append(
            Aperture(
                name=str(name),
                s_m=float(s) - bl.s_frame_m,
                slit=slit,
                x_lo_mm=1e3 * float(x[0]),
                x_hi_mm=1e3 * float(x[1]),
                y_lo_mm=1e3 * float(y[0]),
                y_hi_mm=1e3 * float(y[1]),
            )
        )
    return out


@dataclass(frozen=True)
class _Item:
    kind: str
    label: str
    s0_m: float
    length_m: float
    sign: int = 1


def _layout_items(bl: BeamLine) -> list[_Item]:
    """Dipoles, quadrupoles (sign of k1: above/below the axis), slits and devices."""
    tab = bl.line.get_table()
    slits = {s.lower() for s in SLITS}
    items = []
    for name, s, etype in zip(tab.name, tab.s, tab.element_type, strict=True):
        s_f = float(s) - bl.s_frame_m
        if etype in ("Bend", "RBend"):
            items.append(_Item("bend", name.upper(), s_f, float(bl.line[name].length)))
        elif etype == "Quadrupole":
            sign = 1 if bl.line[name].k1 >= 0 else -1
            items.append(_Item("quad", name.upper(), s_f, float(bl.line[name].length), sign))
        elif name in slits:
            label = f"{name.upper()} {bl.gap_mm(name):.3g} mm"  # full gap in its plane
            items.append(_Item("slit", label, s_f, float(bl.line[name].length)))
        elif name in _DEVICES:
            items.append(_Item("device", _DEVICES[name], s_f, 0.0))
    return items


def _place_labels(ax: Axes, items: list[_Item], renderer: Any) -> list[Any]:
    """Labels centred on their elements, each in the lowest row where it overlaps no other
    (text extents measured with the renderer); a leader line joins a raised label."""
    texts = []
    rows: list[list[tuple[float, float]]] = []
    x_lo, x_hi = ax.get_xlim()
    inv = ax.transData.inverted()
    pad_px = 4.0
    for it in sorted(items, key=lambda i: i.s0_m + i.length_m / 2):
        x = it.s0_m + it.length_m / 2
        t = ax.text(x, _LABEL_ROW0, it.label, ha="center", va="bottom", fontsize=_LABEL_FONT_PT)
        box = t.get_window_extent(renderer)
        (a, _), (b, _) = inv.transform([(box.x0 - pad_px, 0), (box.x1 + pad_px, 0)])
        if b > x_hi:  # keep the last labels inside the axes
            t.set_horizontalalignment("right")
            a, b = a - (b - x_hi), x_hi
        elif a < x_lo:
            t.set_horizontalalignment("left")
            a, b = x_lo, b + (x_lo - a)
        row = next(
            (k for k, used in enumerate(rows) if all(b <= u0 or a >= u1 for u0, u1 in used)),
            len(rows),
        )
        if row == len(rows):
            rows.append([])
        rows[row].append((a, b))
        y = _LABEL_ROW0 + row * _LABEL_ROW_STEP
        t.set_y(y)
        if row:
            ax.plot([x, x], [0.85, y], color="0.6", lw=0.5)
        texts.append(t)
    ax.set_ylim(-1.0, _LABEL_ROW0 + len(rows) * _LABEL_ROW_STEP + 0.1)
    return texts


def _draw_layout(ax: Axes, bl: BeamLine, renderer: Any) -> list[Any]:
    import matplotlib.patches as mpatches

    items = _layout_items(bl)
    ax.axhline(0, color="0.5", lw=0.6)
    for it in items:
        colour = _COLOURS[it.kind]
        if it.kind == "bend":
            ax.add_patch(mpatches.Rectangle((it.s0_m, -0.45), it.length_m, 0.9, color=colour))
        elif it.kind == "quad":
            ax.add_patch(
                mpatches.Rectangle((it.s0_m, 0.0), it.length_m, 0.8 * it.sign, color=colour)
            )
        elif it.kind == "slit":
            ax.add_patch(
                mpatches.Rectangle((it.s0_m, -0.7), max(it.length_m, 0.04), 1.4, color=colour)
            )
        else:
            ax.plot([it.s0_m], [0], marker="D", color=colour, ms=5)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return _place_labels(ax, items, renderer)


def _draw_apertures(ax: Axes, aps: list[Aperture], plane: str, y_max_mm: float) -> None:
    """Pipe/chamber limits as lines between consecutive equal apertures (a tick where a
    limit stands alone), slit jaws as filled blocks from the jaw edge outwards."""
    pipes = [a for a in aps if not a.slit and math.isfinite(a.limits_mm(plane)[0])]
    for k, ap in enumerate(pipes):
        lo, hi = ap.limits_mm(plane)
        nxt = pipes[k + 1] if k + 1 < len(pipes) else None
        if nxt is not None and nxt.limits_mm(plane) == (lo, hi) and nxt.s_m > ap.s_m:
            for v in (lo, hi):
                ax.plot([ap.s_m, nxt.s_m], [v, v], color="k", lw=1.2)
        ax.plot([ap.s_m] * 2, [lo, hi], ls="none", marker="_", ms=6, mew=1.2, color="k")
    by_slit: dict[str, list[Aperture]] = {}
    for ap in aps:
        if ap.slit and math.isfinite(ap.limits_mm(plane)[0]):
            by_slit.setdefault(ap.slit, []).append(ap)
    for group in by_slit.values():
        s0, s1 = min(a.s_m for a in group), max(a.s_m for a in group)
        # drawn at least _JAW_MIN_WIDTH_M wide: the 35 mm jaws are a hairline on a 20 m axis
        mid, half = 0.5 * (s0 + s1), 0.5 * max(s1 - s0, _JAW_MIN_WIDTH_M)
        lo, hi = group[0].limits_mm(plane)
        ax.fill_between([mid - half, mid + half], hi, y_max_mm, color="0.25", lw=0)
        ax.fill_between([mid - half, mid + half], -y_max_mm, lo, color="0.25", lw=0)


def _envelope_panel(
    ax: Axes,
    env: pd.DataFrame,
    aps: list[Aperture],
    plane: str,
    n_sigma: float,
    selected: pd.DataFrame | None = None,
) -> None:
    import matplotlib.patches as mpatches
    import numpy as np

    s = env["s_m"].to_numpy()
    centre = 1e3 * env[f"{plane}_m"].to_numpy()
    sig = 1e3 * env[f"sigma_{plane}_m"].to_numpy()
    limits = [abs(v) for a in aps for v in a.limits_mm(plane) if math.isfinite(v) and not a.slit]
    # the axis shows the apertures; an envelope far beyond them leaves the axis
    big = float(np.nanmax(np.abs(centre) + n_sigma * sig))
    pipe = max(limits, default=big)
    y_max = 1.12 * min(max(pipe, big), _ENVELOPE_AXIS_PIPES * pipe)
    ax.fill_between(s, centre - sig, centre + sig, color="tab:green", alpha=0.35, lw=0)
    ax.plot(s, centre + sig, color="tab:green", lw=1.0, label=rf"$\pm\sigma_{plane}$")
    ax.plot(s, centre - sig, color="tab:green", lw=1.0)
    ax.plot(s, centre + n_sigma * sig, color="tab:green", lw=0.8, ls="--")
    ax.plot(
        s,
        centre - n_sigma * sig,
        color="tab:green",
        lw=0.8,
        ls="--",
        label=rf"$\pm{n_sigma:g}\sigma$",
    )
    if selected is not None:  # the beam after the selection, from its injection point
        s2 = selected["s_m"].to_numpy()
        c2 = 1e3 * selected[f"{plane}_m"].to_numpy()
        sig2 = 1e3 * selected[f"sigma_{plane}_m"].to_numpy()
        ax.plot(s2, c2 + sig2, color="tab:purple", lw=1.1, label=r"$\pm\sigma$ after selection")
        ax.plot(s2, c2 - sig2, color="tab:purple", lw=1.1)
    if np.nanmax(np.abs(centre)) > 1e-3:
        ax.plot(s, centre, color="tab:brown", lw=0.8, label="orbit")
    _draw_apertures(ax, aps, plane, y_max)
    ax.plot([], [], color="k", lw=1.2, label="pipe / chamber")
    if any(a.slit and math.isfinite(a.limits_mm(plane)[0]) for a in aps):
        ax.add_patch(mpatches.Rectangle((0, 0), 0, 0, color="0.25", label="slit jaws"))
    ax.set_ylim(-y_max, y_max)
    ax.set_ylabel(f"{plane} [mm]")
    ax.axhline(0, color="0.7", lw=0.5)


def _after_selection_beam(bl: BeamLine) -> tuple[BeamParameters, str] | None:
    """The settings' spread beam when it is defined after the selection (PadmeMC's beam),
    with its injection marker; None otherwise."""
    from .beam import load_beam, load_beam_file

    name = bl.settings.spread_beam
    if not name:
        return None
    entry = load_beam_file(name)
    if entry.definition != "after_selection" or not entry.injection_element:
        return None
    return load_beam(name), entry.injection_element


def optics_figure(bl: BeamLine, *, step_m: float | None = None, n_sigma: float = 3.0) -> Figure:
    """Layout, beta_x/beta_y [m], D_x [m] and the beam envelope in x and y [mm] against the
    apertures, along s [m] (facts frame), sampled every ``step_m`` [m] (default
    :data:`beamline.optics.SAMPLE_STEP_M`); ``n_sigma`` the outer (dashed) envelope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .optics import SAMPLE_STEP_M, beam_envelope

    step = SAMPLE_STEP_M if step_m is None else step_m
    env = beam_envelope(bl, step_m=step)
    after = _after_selection_beam(bl)
    selected = (
        None if after is None else beam_envelope(bl, step_m=step, beam=after[0], start=after[1])
    )
    aps = apertures(bl)
    fig, axes = plt.subplots(
        5,
        1,
        sharex=True,
        figsize=(11, 11),
        gridspec_kw={"height_ratios": [1.3, 3, 2, 3, 3], "hspace": 0.12},
    )
    ax_el, ax_b, ax_d, ax_x, ax_y = axes
    fig.subplots_adjust(left=0.08, right=0.80, top=0.91, bottom=0.06)
    s = env["s_m"].to_numpy()
    ax_b.plot(s, env["betx_m"], color="tab:blue", label=r"$\beta_x$")
    ax_b.plot(s, env["bety_m"], color="tab:red", label=r"$\beta_y$")
    ax_b.set_ylabel(r"$\beta$ [m]")
    ax_b.set_ylim(bottom=0)
    ax_d.plot(s, env["dx_m"], color="tab:green", label=r"$D_x$")
    if float(env["dy_m"].abs().max()) > 1e-9:
        ax_d.plot(s, env["dy_m"], color="tab:olive", label=r"$D_y$")
    ax_d.axhline(0, color="0.7", lw=0.5)
    ax_d.set_ylabel(r"$D$ [m]")
    _envelope_panel(ax_x, env, aps, "x", n_sigma, selected)
    _envelope_panel(ax_y, env, aps, "y", n_sigma, selected)
    ax_y.set_xlabel("s from the DHSTB01 entrance [m]")
    ax_el.set_xlim(s.min() - 0.1, s.max() + 0.1)
    for ax in (ax_b, ax_d, ax_x, ax_y):
        ax.grid(alpha=0.25)
        for it in _layout_items(bl):  # magnets as faint bands through every panel
            if it.kind in ("bend", "quad"):
                ax.axvspan(
                    it.s0_m, it.s0_m + it.length_m, color=_COLOURS[it.kind], alpha=0.07, lw=0
                )
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.canvas.draw()
    _draw_layout(ax_el, bl, fig.canvas.get_renderer())  # type: ignore[attr-defined]
    b = bl.beam
    fig.suptitle(
        f"BTF→PADME optics, settings {bl.settings.name}, E = {bl.energy_mev:.2f} MeV, "
        f"DHSTB01 {bl.current_a('DHSTB01'):.3f} A\n"
        f"envelope of beam {b.name}: εx = {b.emit_x_m * 1e6:.3g} µm, "
        f"εy = {b.emit_y_m * 1e6:.3g} µm, σδ = {100 * b.sigma_delta:.3g} % "
        "(linear optics, slits not applied)"
        + (
            ""
            if after is None
            else f"\nafter selection: beam {after[0].name} from {after[1].upper()}, "
            f"σδ = {100 * after[0].sigma_delta:.3g} %"
        ),
        fontsize=10,
    )
    return fig
