"""Spread engine: tracking of the beam source through the line, with every slit opened, to
per-energy lists of transmitted candidates (their slit classes, energy and spot positions).

Two paths give the same candidates for the same particles (tested):

``"shared"`` (default): the energy selection is shared by every energy.
  The section from the source to the Mylar window (SLTB2, DHSTB01) holds no magnet but
  DHSTB01, whose field follows the energy: in coordinates normalised to the reference
  momentum (``x, px, y, py, delta``) its map is the same for every matched energy. So

  1. one xtrack pass per particle chunk, at one reference energy, carries the particles to
     the window (:data:`SPLIT_ELEMENT`), classifying them at SLTB2 and dropping those that no
     SLTB2 setting of the grid passes;
  2. per energy, the window's Highland kick (its width depends on the energy) and the drifts
     and apertures from the window to the SLTB4 exit are applied with NumPy, with the same
     operations as xtrack's expanded drift and ``LimitRect`` (the section is checked to hold
     only drifts, markers and rectangular/elliptical apertures); SLTB3/SLTB4 classes drop
     every particle that no SLTB3 or SLTB4 setting passes;
  3. only those survivors (1-2 % of the LINAC beam at the 2022 gaps) are tracked with xtrack
     from the SLTB4 exit through the quadrupoles, SLTB5, DHSTB02 and the target (kick) to the
     TimePix, with the optics of that energy.

  Points whose DHSTB01 current is not matched to their energy select another normalised
  momentum: points are grouped by the ratio of DHSTB01's field to the matched field, one
  step-1 pass per group.

``"per_energy"``: the reference path: one segmented xtrack pass per energy from the source
  to the TimePix (kicks between segments), as the engine of issue 5 did.

Particles come from :mod:`beamline.source` (common random numbers: particle ``i`` has the
same normalised deviates at every energy). A source injected after the window (none of the
named ones) is refused by the shared path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import calibration
from .apertures import SlitClasses, SlitGrid
from .constants import ELECTRON_MASS_MEV, momentum_mev_from_energy
from .energy_loss import delta_after, losses_for
from .errors import BeamlineInputError
from .lattice import load_settings
from .names import SLITS
from .source import BeamSource, draw_deviates, initial_coordinates

if TYPE_CHECKING:  # pragma: no cover
    import xtrack as xt

    from .model import BeamLine

ENGINES = ("shared", "per_energy")
#: End of the shared xtrack section and start of the per-energy NumPy section.
SPLIT_ELEMENT = "mylar_window"
#: End of the NumPy section: survivors are handed to xtrack here.
SELECTION_END = "sltb4_exit"
#: xtrack ``state`` given to particles that no setting of the grid can transmit.
PRUNED_STATE = -4000
#: Record keys of a candidate (besides the slit classes).
CANDIDATE_KEYS = ("eps", "x_target_m", "y_target_m", "x_timepix_m", "y_timepix_m")


@dataclass(frozen=True)
class ScanPoint:
    """One beam energy and magnet setting.

    ``energy_mev``: total beam energy [MeV] (reference of the line and centre of the LINAC
    beam, before its ``delta_offset``). ``dhstb01_current_a`` / ``dhstb02_current_a`` [A]:
    ``None`` = matched to ``energy_mev`` by the settings' calibration, DHSTB01 plus
    ``dhstb01_offset_a`` [A] (a mis-set current), DHSTB02 to ``(1 + dhstb02_relative_offset)``
    times the beam momentum.
    """

    energy_mev: float
    dhstb01_current_a: float | None = None
    dhstb02_current_a: float | None = None
    dhstb02_relative_offset: float = 0.0
    dhstb01_offset_a: float = 0.0


@dataclass(frozen=True)
class SpotGrid:
    """Bin edges [mm] (PADME frame) of the beam-spot histogram at the TimePix. The engine
    takes it as a parameter: the detector geometry lives with the detector's adapter."""

    x_edges_mm: tuple[float, ...]
    y_edges_mm: tuple[float, ...]

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.x_edges_mm), np.asarray(self.y_edges_mm)

    @classmethod
    def uniform(cls, half_width_mm: float, half_height_mm: float, bin_mm: float) -> SpotGrid:
        """Bins of ``bin_mm`` over ``+-half_width_mm`` x ``+-half_height_mm`` [mm]."""
        if not (half_width_mm > 0 and half_height_mm > 0 and bin_mm > 0):
            raise BeamlineInputError("spot grid: half sizes and bin must be > 0 mm")
        nx = max(1, round(2 * half_width_mm / bin_mm))
        ny = max(1, round(2 * half_height_mm / bin_mm))
        return cls(
            tuple(np.linspace(-half_width_mm, half_width_mm, nx + 1).tolist()),
            tuple(np.linspace(-half_height_mm, half_height_mm, ny + 1).tolist()),
        )


@dataclass
class Candidates:
    """Per-energy transmitted candidates: slit class per slit (``classes[slit]``, all >= 0)
    and :data:`CANDIDATE_KEYS` arrays (relative energy deviation, positions [m])."""

    classes: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    n_after_sltb4: int = 0

    def extend(self, other: Candidates) -> None:
        for key, arr in other.classes.items():
            self.classes[key] = np.concatenate([self.classes.get(key, arr[:0]), arr])
        for key, arr in other.values.items():
            self.values[key] = np.concatenate([self.values.get(key, arr[:0]), arr])
        self.n_after_sltb4 += other.n_after_sltb4


# ---- model set-up ----------------------------------------------------------------------
_LINES: dict[str, BeamLine] = {}


def line_for(settings: str | None) -> BeamLine:
    """One BeamLine per settings entry and process (built once, knobs changed per point)."""
    from .model import BeamLine

    key = load_settings(settings).name
    if key not in _LINES:
        _LINES[key] = BeamLine(key)
    return _LINES[key]


def _check_current(magnet: str, value: float) -> float:
    if not math.isfinite(value):
        raise BeamlineInputError(f"{magnet} current must be a finite number of A")
    calibration.magnet_spec(magnet).check_current(value)
    return float(value)


def point_currents_a(
    bl: BeamLine, point: ScanPoint, currents_a: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Currents [A] of a scan point: dipoles (matched unless given) and extra currents."""
    p_mev = momentum_mev_from_energy(point.energy_mev)
    i1 = point.dhstb01_current_a
    if i1 is None:
        i1 = bl.matched_dipole_current_a("DHSTB01", point.energy_mev) + point.dhstb01_offset_a
    i2 = point.dhstb02_current_a
    if i2 is None:
        i2 = calibration.dipole_current_for_momentum(
            "DHSTB02",
            p_mev * (1.0 + point.dhstb02_relative_offset),
            bl.settings.dipole_calibration,
        )
    wanted = {"DHSTB01": _check_current("DHSTB01", i1), "DHSTB02": _check_current("DHSTB02", i2)}
    for magnet, value in (currents_a or {}).items():
        wanted[calibration.magnet_spec(magnet).name] = _check_current(magnet, float(value))
    return wanted


def configure_point(
    bl: BeamLine, point: ScanPoint, currents_a: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Set energy, dipole currents (matched unless given), extra currents; open the slits.

    Returns the currents [A] in use.
    """
    bl.set_energy(point.energy_mev)
    bl.set_currents(point_currents_a(bl, point, currents_a))
    open_slits(bl)
    return bl.currents_a()


def open_slits(bl: BeamLine) -> None:
    for slit in SLITS:
        bl.set_gap(slit, bl.spec.slit(slit).max_gap_mm, 0.0)


def dhstb01_field_ratio(bl: BeamLine, point: ScanPoint, currents: Mapping[str, float]) -> float:
    """DHSTB01 field over the field matched to the point's energy (1 for a matched point)."""
    curve = calibration.dipole_calibration("DHSTB01", bl.settings.dipole_calibration)
    matched = calibration.field_g_from_momentum(momentum_mev_from_energy(point.energy_mev))
    return curve.value(currents["DHSTB01"]) / matched


# ---- segmented xtrack passes -----------------------------------------------------------
Event = tuple[int, str, str, Any]  # (element index, element, kind, payload)


def events(bl: BeamLine, source: BeamSource) -> list[Event]:
    """Stops of a segmented pass, in line order: slit entries/exits, target record, kicks."""
    names = bl.line.element_names
    index = {n: i for i, n in enumerate(names)}
    out: list[tuple[int, int, str, str, Any]] = []
    for slit in SLITS:
        key = slit.lower()
        out.append((index[key], 0, key, "entry", slit))
        out.append((index[f"{key}_exit"], 0, f"{key}_exit", "exit", slit))
    out.append((index["padme_target"], 0, "padme_target", "target", None))
    for layer in source.active_layers:
        if layer.element not in index:
            raise BeamlineInputError(
                f"scattering layer {layer.name}: element '{layer.element}' not in the line"
            )
        out.append((index[layer.element], 1, layer.element, "kick", layer))
    out.sort(key=lambda e: (e[0], e[1]))
    return [(e[0], e[2], e[3], e[4]) for e in out]


def make_particles(bl: BeamLine, coords: Mapping[str, np.ndarray], cache: dict) -> xt.Particles:
    """xtrack particles with the given ``x, px, y, py, delta`` at the line's reference.

    One object per (size, reference momentum) is built and then reset in place: every
    per-particle variable that tracking through this line changes is rewritten.
    """
    import xtrack as xt

    n = np.asarray(coords["x"]).size
    ref = bl.line.particle_ref
    key = (n, float(ref.p0c[0]))
    if key not in cache:
        cache.clear()
        cache[key] = xt.Particles(
            p0c=ref.p0c[0], mass0=ref.mass0, q0=ref.q0, x=np.zeros(n), _context=bl.line._context
        )
    p = cache[key]
    ids = np.arange(n, dtype=np.int64)
    p.state[:] = 1
    p.particle_id[:] = ids
    p.parent_particle_id[:] = ids
    p.at_element[:] = 0
    p.at_turn[:] = 0
    p.s[:] = 0.0
    p.zeta[:] = 0.0
    p.ax[:] = 0.0
    p.ay[:] = 0.0
    for name in ("x", "px", "y", "py"):
        getattr(p, name)[:] = coords[name]
    p._num_active_particles = n
    p._num_lost_particles = 0
    p.update_delta(np.asarray(coords["delta"], dtype=float))
    return p


def record_keys() -> list[str]:
    keys = []
    for slit in SLITS:
        keys += [f"{slit.lower()}_entry_m", f"{slit.lower()}_exit_m"]
    return [*keys, "x_target_m", "y_target_m", "x_timepix_m", "y_timepix_m", "delta_target"]


def kick_theta(layer: Any, p0c_mev: float, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(1 + delta, theta0)`` of a layer's Highland kick for momenta ``p0c (1 + delta)``."""
    one_d = 1.0 + np.asarray(delta)
    return one_d, np.asarray(layer.theta0_rad(p0c_mev * one_d))


def track_segments(
    bl: BeamLine,
    p: xt.Particles,
    evts: list[Event],
    kicks: Mapping[str, tuple[np.ndarray, np.ndarray]],
    planes: Mapping[str, str],
    classes: Mapping[str, SlitClasses] | None,
    *,
    start: str | None = None,
    stop: str | None = None,
    losses: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Segmented pass from ``start`` (default: line start) to ``stop`` (default: the end,
    recording the TimePix). Returns per-particle records (NaN where not reached; ``alive``:
    reached ``stop``/the end) and, with ``classes``, the pass class per slit (-1 none).
    Particles failing every setting of a slit are pruned at its exit. ``kicks[layer]`` are
    the (x, y) standard normals indexed by ``particle_id``, ``losses[layer]`` the energy-loss
    samples (:mod:`beamline.energy_loss`) likewise; ``delta_target`` is recorded at the
    target entrance (the energy the table reports)."""
    n = p._capacity
    rec = {k: np.full(n, np.nan) for k in record_keys()}
    cls = {s: np.full(n, -1, dtype=np.int64) for s in SLITS} if classes is not None else {}
    p0c_mev = float(bl.line.particle_ref.p0c[0]) * 1e-6
    here = start
    for _, element, kind, payload in evts:
        if element != here:  # ele_stop == ele_start would track a whole extra turn
            bl.line.track(p, ele_start=here, ele_stop=element)
        here = element
        pos = np.flatnonzero(p.state > 0)
        ids = p.particle_id[pos]
        if kind in ("entry", "exit"):
            slit = payload
            coord = p.x if planes[slit] == "x" else p.y
            rec[f"{slit.lower()}_{kind}_m"][ids] = coord[pos]
            if kind == "exit" and classes is not None:
                key = slit.lower()
                c = classes[slit].classify(rec[f"{key}_entry_m"][ids], rec[f"{key}_exit_m"][ids])
                cls[slit][ids] = c
                dead = c < 0
                if dead.any():
                    p.state[pos[dead]] = PRUNED_STATE
        elif kind == "target":
            rec["x_target_m"][ids] = p.x[pos]
            rec["y_target_m"][ids] = p.y[pos]
            rec["delta_target"][ids] = p.delta[pos]
        elif kind == "kick":
            ux, uy = kicks[payload.name]
            one_d, theta = kick_theta(payload, p0c_mev, p.delta[pos])
            p.px[pos] = p.px[pos] + one_d * theta * ux[ids]
            p.py[pos] = p.py[pos] + one_d * theta * uy[ids]
            if losses and payload.name in losses and pos.size:
                frac, ion = losses[payload.name]
                p.delta[pos] = delta_after(np.asarray(p.delta[pos]), frac[ids], ion[ids], p0c_mev)
    if stop is None:
        bl.line.track(p, ele_start=here)
    elif stop != here:
        bl.line.track(p, ele_start=here, ele_stop=stop)
    pos = np.flatnonzero(p.state > 0)
    ids = p.particle_id[pos]
    if stop is None:
        rec["x_timepix_m"][ids] = p.x[pos]
        rec["y_timepix_m"][ids] = p.y[pos]
    alive = np.zeros(n, dtype=bool)
    alive[ids] = True
    rec["alive"] = alive
    return rec, cls


def kick_deviates(
    source: BeamSource, deviates: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(x, y) kick deviates per layer name (rows 5 + 2 j, 6 + 2 j)."""
    return {
        layer.name: (deviates[5 + 2 * j], deviates[6 + 2 * j])
        for j, layer in enumerate(source.layers)
    }


def relative_energy(p0c_mev: float, energy_mev: float, delta: np.ndarray) -> np.ndarray:
    """``E/E0 - 1`` of particles with momentum deviation ``delta``."""
    p = p0c_mev * (1.0 + delta)
    return np.sqrt(p * p + ELECTRON_MASS_MEV**2) / energy_mev - 1.0


def candidates_from(
    rec: Mapping[str, np.ndarray],
    cls: Mapping[str, np.ndarray],
    eps: np.ndarray,
    sel: np.ndarray | None = None,
) -> Candidates:
    """Candidates of a record set: alive and in a class of every slit (``sel`` indexes the
    particles the records belong to)."""
    ok = rec["alive"].copy()
    for s in SLITS:
        ok &= cls[s] >= 0
    idx = np.flatnonzero(ok)
    values = {"eps": eps[idx] if sel is None else eps[sel[idx]]}
    for key in CANDIDATE_KEYS[1:]:
        values[key] = rec[key][idx]
    return Candidates(classes={s: cls[s][idx] for s in SLITS}, values=values)


def injection_index(bl: BeamLine, source: BeamSource) -> int:
    """Index of the element where the source is defined (0: the line start)."""
    element = source.beam.injection_element
    return bl.line.element_names.index(bl.check_element(element)) if element else 0


def upstream_classes(
    grid: SlitGrid, classes: Mapping[str, SlitClasses], slit: str, n: int
) -> np.ndarray:
    """Class of a slit the source is injected downstream of (it acts on no particle): the
    class of a coordinate inside every setting; an error if the settings share none."""
    lo = max(j.negative_mm for j in grid.settings[slit]) * 1e-3
    hi = min(j.positive_mm for j in grid.settings[slit]) * 1e-3
    if lo > hi:
        raise BeamlineInputError(
            f"{slit} lies upstream of the beam source's injection point: its settings must "
            "overlap (it does not act on this source)"
        )
    mid = np.full(n, 0.5 * (lo + hi))
    return classes[slit].classify(mid, mid)


# ---- the reference path: one full pass per energy --------------------------------------
def per_energy_chunk(
    bl: BeamLine,
    source: BeamSource,
    grid: SlitGrid,
    coords: Mapping[str, np.ndarray],
    dev: np.ndarray,
    energy_mev: float,
    cache: dict,
    losses: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Candidates:
    """Candidates of one chunk at one (configured) scan point, tracked from the source's
    injection element (default the line start) to the TimePix."""
    classes = {s: SlitClasses(grid.settings[s]) for s in SLITS}
    inj = injection_index(bl, source)
    evts = [e for e in events(bl, source) if e[0] >= inj]
    p = make_particles(bl, coords, cache)
    rec, cls = track_segments(
        bl,
        p,
        evts,
        kick_deviates(source, dev),
        grid.planes,
        classes,
        start=bl.line.element_names[inj] if inj else None,
        losses=losses,
    )
    reached = {e[3] for e in evts if e[2] in ("entry", "exit")}
    for s in SLITS:
        if s not in reached:
            cls[s][:] = upstream_classes(grid, classes, s, cls[s].size)
    p0c_mev = float(bl.line.particle_ref.p0c[0]) * 1e-6
    out = candidates_from(rec, cls, relative_energy(p0c_mev, energy_mev, rec["delta_target"]))
    out.n_after_sltb4 = int((cls["SLTB4"] >= 0).sum())
    return out


def chunk_deviates(
    source: BeamSource, seed: int, start: int, stop: int
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Initial coordinates, all deviates and the energy-loss samples of particles
    ``start <= i < stop``."""
    dev = draw_deviates(seed, start, stop, len(source.layers))
    losses = {}
    if source.energy_loss != "off" and source.active_layers:
        losses = losses_for(source.layers, seed, start, stop, source.energy_loss)
    return initial_coordinates(source.beam, dev), dev, losses
