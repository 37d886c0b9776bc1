"""The shared path of the spread engine (see :mod:`beamline.spread_engine`): one xtrack pass
to the Mylar window for all energies, the window-to-SLTB4 section per energy in NumPy, and
xtrack downstream of SLTB4 for the survivors only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import calibration
from .apertures import SlitClasses, SlitGrid
from .constants import momentum_mev_from_energy
from .energy_loss import delta_after
from .errors import BeamlineInputError
from .names import SLITS
from .source import BeamSource
from .spread_engine import (
    SELECTION_END,
    SPLIT_ELEMENT,
    Candidates,
    Event,
    ScanPoint,
    candidates_from,
    configure_point,
    dhstb01_field_ratio,
    events,
    injection_index,
    kick_deviates,
    kick_theta,
    make_particles,
    open_slits,
    point_currents_a,
    relative_energy,
    track_segments,
    upstream_classes,
)

if TYPE_CHECKING:  # pragma: no cover
    from .model import BeamLine

#: Field ratios equal to this many digits share one pass through the selection.
RATIO_DIGITS = 12


@dataclass(frozen=True)
class NumpyOp:
    """One element of the window-to-SLTB4 section: ``kind`` drift/rect/ellipse/none."""

    index: int
    kind: str
    params: tuple[float, ...] = ()


#: xtrack element types that are drifts (expanded model unless set otherwise).
DRIFT_TYPES = ("Drift", "Device")
PASSIVE_TYPES = ("Marker",)


def numpy_section(bl: BeamLine, first: int, last: int) -> list[NumpyOp]:
    """Elements ``first <= i < last`` as NumPy operations; refuses any element other than
    an expanded drift, a marker or a rectangular/elliptical aperture (a magnet there would
    break the energy independence of the section)."""
    ops = []
    for i in range(first, last):
        name = bl.line.element_names[i]
        el = bl.line.element_dict[name]
        kind = type(el).__name__
        if kind == "LimitRect":
            ops.append(NumpyOp(i, "rect", (el.min_x, el.max_x, el.min_y, el.max_y)))
        elif kind == "LimitEllipse":
            ops.append(NumpyOp(i, "ellipse", (el.a_squ, el.b_squ, el.a_b_squ)))
        elif kind in DRIFT_TYPES and str(el.model) in ("adaptive", "expanded"):
            ops.append(NumpyOp(i, "drift", (float(el.length),)))
        elif kind in PASSIVE_TYPES:
            ops.append(NumpyOp(i, "none"))
        else:
            raise BeamlineInputError(
                f"element {name} ({kind}) between {SPLIT_ELEMENT} and {SELECTION_END} is not "
                "an expanded drift, marker or aperture: the shared spread engine needs a "
                "field-free selection section; use engine='per_energy'"
            )
    return ops


def _numpy_pass(
    state: dict[str, np.ndarray],
    ops: list[NumpyOp],
    evts: list[Event],
    kicks: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ids: np.ndarray,
    planes: Mapping[str, str],
    p0c_mev: float,
    rec: dict[str, np.ndarray],
    losses: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> np.ndarray:
    """Window-to-SLTB4 section in place on ``state`` (x, px, y, py, delta, rpp); the same
    floating-point operations as xtrack's expanded drift, LimitRect/LimitEllipse and the
    engine's kicks. Records slit coordinates into ``rec`` (indexed like ``state``).
    Returns the alive mask."""
    x, px, y, py, rpp = state["x"], state["px"], state["y"], state["py"], state["rpp"]
    alive = np.ones(x.size, dtype=bool)
    by_index: dict[int, list[Event]] = {}
    for e in evts:
        by_index.setdefault(e[0], []).append(e)
    last = ops[-1].index + 1 if ops else (evts[-1][0] if evts else 0)
    op_at = {op.index: op for op in ops}
    first = min([*op_at, *by_index]) if (op_at or by_index) else last
    for i in range(first, last + 1):
        for _, _, kind, payload in by_index.get(i, []):
            if kind in ("entry", "exit"):
                u = x if planes[payload] == "x" else y
                rec[f"{payload.lower()}_{kind}_m"] = np.where(alive, u, np.nan)
            elif kind == "kick":
                ux, uy = kicks[payload.name]
                one_d, theta = kick_theta(payload, p0c_mev, state["delta"])
                px[:] = px + one_d * theta * ux[ids]
                py[:] = py + one_d * theta * uy[ids]
                if losses and payload.name in losses:
                    frac, ion = losses[payload.name]
                    state["delta"] = delta_after(state["delta"], frac[ids], ion[ids], p0c_mev)
                    rpp[:] = 1 / (1 + state["delta"])  # as xtrack's update_delta
        op = op_at.get(i)
        if op is None or op.kind == "none":
            continue
        if op.kind == "drift":
            (length,) = op.params
            xp = px * rpp
            yp = py * rpp
            x[:] = x + xp * length
            y[:] = y + yp * length
        elif op.kind == "rect":
            min_x, max_x, min_y, max_y = op.params
            alive &= (x >= min_x) & (x <= max_x) & (y >= min_y) & (y <= max_y)
        else:
            a_squ, b_squ, a_b_squ = op.params
            alive &= x * x * b_squ + y * y * a_squ <= a_b_squ
    return alive


def shared_chunk(
    bl: BeamLine,
    source: BeamSource,
    grid: SlitGrid,
    points: Sequence[ScanPoint],
    coords: Mapping[str, np.ndarray],
    dev: np.ndarray,
    currents_a: Mapping[str, float] | None,
    losses: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[Candidates]:
    """Candidates of one particle chunk for every scan point (module doc)."""
    names = bl.line.element_names
    split, end = names.index(SPLIT_ELEMENT), names.index(SELECTION_END)
    inj = injection_index(bl, source)
    if inj > split:
        raise BeamlineInputError(
            f"the shared spread engine needs the beam source defined at or before "
            f"{SPLIT_ELEMENT}; use engine='per_energy'"
        )
    evts = [e for e in events(bl, source) if e[0] >= inj]
    ev1 = [e for e in evts if e[0] < split]
    ev2 = [e for e in evts if split <= e[0] <= end]
    ev3 = [e for e in evts if e[0] > end]
    reached = {e[3] for e in evts if e[2] in ("entry", "exit")}
    classes = {s: SlitClasses(grid.settings[s]) for s in SLITS}
    kicks = kick_deviates(source, dev)
    start_name = names[inj] if inj else None
    # group the points by DHSTB01 field ratio: one pass to the window per group
    groups: dict[float, list[int]] = {}
    plans = []
    for k, pt in enumerate(points):
        currents = point_currents_a(bl, pt, currents_a)
        ratio = round(dhstb01_field_ratio(bl, pt, currents), RATIO_DIGITS)
        groups.setdefault(ratio, []).append(k)
        plans.append(currents)
    out: list[Candidates] = [Candidates() for _ in points]
    cache: dict[Any, Any] = {}
    for ratio, members in groups.items():
        ref = points[members[0]]
        bl.set_energy(ref.energy_mev)
        matched_g = calibration.field_g_from_momentum(momentum_mev_from_energy(ref.energy_mev))
        bl.set_current(
            "DHSTB01",
            calibration.dipole_current_for_field(
                "DHSTB01", ratio * matched_g, bl.settings.dipole_calibration
            ),
        )
        open_slits(bl)
        ops = numpy_section(bl, split, end)  # after opening: the slit apertures are read
        p = make_particles(bl, coords, cache)
        _, cls1 = track_segments(
            bl, p, ev1, kicks, grid.planes, classes, start=start_name, stop=SPLIT_ELEMENT,
            losses=losses,
        )  # fmt: skip
        pos = np.flatnonzero(p.state > 0)
        ids = np.asarray(p.particle_id[pos])
        window = {k: np.array(getattr(p, k)[pos]) for k in ("x", "px", "y", "py", "delta", "rpp")}
        for k in members:
            out[k].extend(
                _energy_part(
                    bl, grid, classes, points[k], plans[k], window, ids, cls1,
                    ops, ev2, ev3, kicks, reached, cache, losses or {},
                )
            )  # fmt: skip
    return out


def _prune_before_kick(
    window: Mapping[str, np.ndarray],
    ops: list[NumpyOp],
    ev2: list[Event],
    kicks: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ids: np.ndarray,
    grid: SlitGrid,
    p0c_mev: float,
    losses: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Particles that may still pass some SLTB4 setting: a conservative bound on x at the
    SLTB4 entry and exit (kick at most ``theta_max |u|`` over the drift length, the drift
    slope after the energy loss, margins far above rounding). Dropping the others changes
    no result, it only saves work."""
    lengths = {}
    run = 0.0
    for op in ops:
        if op.kind == "drift":
            run += op.params[0]
        lengths[op.index + 1] = run
    idx = {e[2]: e[0] for e in ev2 if e[3] == "SLTB4"}
    layers = [e[3] for e in ev2 if e[2] == "kick"]
    delta = window["delta"]
    for layer in layers:  # the slope after the window's energy loss
        if layer.name in losses:
            frac, ion = losses[layer.name]
            delta = delta_after(delta, frac[ids], ion[ids], p0c_mev)
    rpp = 1 / (1 + delta)
    gain = (1.0 + window["delta"]) * rpp  # kick x' = one_d theta u rpp after the loss
    x0, xp0 = window["x"], window["px"] * rpp
    lo = min(j.negative_mm for j in grid.settings["SLTB4"]) * 1e-3
    hi = max(j.positive_mm for j in grid.settings["SLTB4"]) * 1e-3
    keep = np.ones(x0.size, dtype=bool)
    spread = np.zeros(x0.size)
    for layer in layers:
        ux = kicks[layer.name][0][ids]
        theta_max = float(np.max(kick_theta(layer, p0c_mev, np.min(window["delta"]))[1]))
        spread = spread + theta_max * np.abs(ux) * gain * (1.0 + 1e-6)
    for kind in ("entry", "exit"):
        length = lengths.get(idx.get(kind, -1), run)
        x = x0 + xp0 * length
        reach = length * spread + 1e-9
        keep &= (x + reach >= lo) & (x - reach <= hi)
    return keep


def _energy_part(
    bl: BeamLine,
    grid: SlitGrid,
    classes: Mapping[str, SlitClasses],
    point: ScanPoint,
    currents: Mapping[str, float],
    window: Mapping[str, np.ndarray],
    ids: np.ndarray,
    cls1: Mapping[str, np.ndarray],
    ops: list[NumpyOp],
    ev2: list[Event],
    ev3: list[Event],
    kicks: Mapping[str, tuple[np.ndarray, np.ndarray]],
    reached: set[str],
    cache: dict[Any, Any],
    losses: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> Candidates:
    """One scan point of a chunk: NumPy window-to-SLTB4 on the particles that can still pass
    SLTB4, then xtrack from SLTB4 for the survivors. Works on subsets only (``ids``: chunk
    indices of the particles at the window)."""
    configure_point(bl, point, dict(currents))
    p0c_mev = float(bl.line.particle_ref.p0c[0]) * 1e-6
    near = _prune_before_kick(window, ops, ev2, kicks, ids, grid, p0c_mev, losses)
    ids1 = ids[near]
    state = {k: v[near] for k, v in window.items()}
    rec2: dict[str, np.ndarray] = {}
    alive = _numpy_pass(state, ops, ev2, kicks, ids1, grid.planes, p0c_mev, rec2, losses)
    sub_cls: dict[str, np.ndarray] = {}
    for s in ("SLTB2", "SLTB3", "SLTB4"):
        key = s.lower()
        if s not in reached:
            sub_cls[s] = upstream_classes(grid, classes, s, ids1.size)
        elif f"{key}_exit_m" in rec2:
            c = classes[s].classify(rec2[f"{key}_entry_m"], rec2[f"{key}_exit_m"])
            sub_cls[s] = np.where(alive, c, -1)
        else:
            sub_cls[s] = cls1[s][ids1]
    keep = alive.copy()
    for c in sub_cls.values():
        keep &= c >= 0
    sel = ids1[keep]
    out = Candidates(n_after_sltb4=int(sel.size))
    if not sel.size:
        return out
    sub = {k: state[k][keep] for k in ("x", "px", "y", "py", "delta")}
    sub_kicks = {name: (ux[sel], uy[sel]) for name, (ux, uy) in kicks.items()}
    sub_losses = {name: (f[sel], e[sel]) for name, (f, e) in losses.items()}
    p = make_particles(bl, sub, cache)
    rec3, cls3 = track_segments(
        bl, p, ev3, sub_kicks, grid.planes, classes, start=SELECTION_END, losses=sub_losses
    )
    cls_all = {s: c[keep] for s, c in sub_cls.items()}
    cls_all["SLTB5"] = (
        cls3["SLTB5"] if "SLTB5" in reached else upstream_classes(grid, classes, "SLTB5", sel.size)
    )
    eps = relative_energy(p0c_mev, point.energy_mev, rec3["delta_target"])
    cand = candidates_from(rec3, cls_all, eps)
    cand.n_after_sltb4 = out.n_after_sltb4
    return cand
