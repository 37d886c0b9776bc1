"""Energy spread and transmission against slit settings and magnet currents, for every energy.

Method (one tracking pass per scan point, every slit setting evaluated afterwards):

* For a scan point (beam energy ``E``, DHSTB01/DHSTB02 currents: matched to ``E`` by the
  settings' calibration unless given, so mis-set currents are supported) the xtrack model
  (:class:`beamline.model.BeamLine`, exact fast bends) is set to reference energy ``E`` and
  the four slits are opened to the chamber (their ``max_gap_mm``). The fixed apertures
  (chamber, pipes, splitter, window flange) stay active.
* Particles from the :class:`beamline.source.BeamSource` are tracked once from the line
  start, segment by segment (``line.track(ele_start=..., ele_stop=...)``), recording the
  slit-plane coordinate at every slit entry and exit, x/y at the PADME target and at the
  TimePix. Highland scattering kicks (on by default) are applied at the Mylar window and at
  the target between segments. Particle identity is kept through ``particle_id``.
* The slit settings are then applied with NumPy (:mod:`beamline.apertures`): slit jaws are
  black absorbers (a particle touching a jaw is lost; no scattering or re-emission in the
  tungsten). A particle that fails every setting of a slit of the grid is dropped as soon as
  its exit is recorded ("pruning": it cannot be transmitted by any combination), so only
  candidates are tracked further; this does not change any result.
* Memory is bounded by chunking the particles (``chunk_particles``); per chunk only cell
  sums and a fine energy histogram are kept.

Energies do not share one tracking pass: the quadrupoles stay at fixed currents while the
dipoles follow the energy, so the optics differ per energy (a delta offset would be exact
only if every magnet scaled with the energy). They share the tracker (one ``BeamLine`` per
worker process, its knobs changed per point) and the normalised particles (common random
numbers, see :mod:`beamline.source`). Scan points run in parallel through
:func:`beamline.parallel.map_ordered`, with identical results for a fixed seed whatever the
scheduler.

Results per (scan point, slit combination): transmission (fraction of the generated
particles), positrons per bunch, mean energy, rms and FWHM relative energy spread
(``sigma_E / <E>``) of the transmitted beam, centroid and rms size at the target and at the
TimePix. No transmitted particle: transmission 0 and NaN (JSON null) statistics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import calibration
from .apertures import (
    MOMENTS,
    SLITS,
    CellAccumulator,
    Jaws,
    SlitClasses,
    SlitGrid,
    fwhm_from_histogram,
)
from .constants import ELECTRON_MASS_MEV, momentum_mev_from_energy
from .errors import BeamlineInputError
from .lattice import line_spec, load_settings, read_strength_values
from .parallel import map_ordered
from .source import BeamSource, draw_deviates, initial_coordinates, load_source

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xtrack as xt

    from .model import BeamLine

#: Default particles per tracking chunk (bounds memory: ~0.5 kB per particle in flight).
DEFAULT_CHUNK_PARTICLES = 200_000
#: Fine bin [relative energy] of the histograms the FWHM is taken from.
DEFAULT_EPS_BIN = 2e-5
#: xtrack ``state`` given to particles that no setting of the grid can transmit.
PRUNED_STATE = -4000
#: TimePix active area (facts 1: 2 rows x 6 Timepix3 chips of 256 x 256 pixels of 55 um).
TIMEPIX_HALF_WIDTH_MM = 0.5 * 6 * 256 * 0.055
TIMEPIX_HALF_HEIGHT_MM = 0.5 * 2 * 256 * 0.055
#: Beam-spot histogram bin at the TimePix [mm] (8 pixels).
TIMEPIX_SPOT_BIN_MM = 8 * 0.055
#: Black-absorber statement carried in result metadata.
SLIT_MODEL = (
    "slit jaws are black absorbers: a particle outside the jaws at the slit entry or exit "
    "is lost; no scattering or re-emission in the jaws"
)


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
class _Job:
    point: ScanPoint
    settings: str | None
    source: BeamSource
    grid: SlitGrid
    n_particles: int
    chunk_particles: int
    seed: int
    eps_bin: float
    spot: tuple[int, ...] | None
    currents_a: Mapping[str, float] | None


@dataclass
class _PointResult:
    currents_a: dict[str, float]
    sums: np.ndarray  # (len(MOMENTS), n_combinations)
    fwhm_eps: np.ndarray  # (n_combinations,)
    spot: np.ndarray | None
    seconds: float
    tracked_fraction_after_sltb4: float


@dataclass
class SpreadResult:
    """Table (one row per scan point and slit combination), metadata and TimePix spots.

    ``spots[i]`` is the 2D histogram (x by y, counts) at the TimePix of scan point ``i`` for
    the spot combination, with edges ``spot_edges_mm``.
    """

    table: pd.DataFrame
    metadata: dict[str, Any]
    spots: dict[int, np.ndarray] = field(default_factory=dict)
    spot_edges_mm: tuple[np.ndarray, np.ndarray] | None = None

    def write(self, path: str | Any) -> Any:
        """Write the table as CSV (``.csv``) or Parquet (``.parquet``/``.pq``), atomically."""
        import os
        import tempfile
        from pathlib import Path

        out = Path(path)
        suffix = out.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise BeamlineInputError(f"output file {out} must end in .csv or .parquet")
        if not out.parent.exists():
            raise BeamlineInputError(f"output folder {out.parent} does not exist")
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=suffix)
        os.close(fd)
        try:
            if suffix == ".csv":
                self.table.to_csv(tmp, index=False)
            else:
                meta = {k: str(v) for k, v in self.metadata.items()}
                table = self.table.copy()
                table.attrs = meta
                table.to_parquet(tmp, index=False)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return out


# ---- model set-up ----------------------------------------------------------------------
_LINES: dict[str, BeamLine] = {}


def _line_for(settings: str | None) -> BeamLine:
    """One BeamLine per settings entry and process (built once, knobs changed per point)."""
    from .model import BeamLine

    key = load_settings(settings).name
    if key not in _LINES:
        _LINES[key] = BeamLine(key)
    return _LINES[key]


def settings_jaws(settings: str | None = None) -> dict[str, Jaws]:
    """Slit settings of a settings entry (its .str file): ``{slit: Jaws}``."""
    values = read_strength_values(load_settings(settings).strength_file)
    out = {}
    for slit in SLITS:
        key = slit.lower()
        try:
            gap = values[f"{key}_gap_mm"]
        except KeyError:
            raise BeamlineInputError(f"settings {settings}: no {key}_gap_mm") from None
        out[slit] = Jaws.centred(gap, values.get(f"{key}_center_mm", 0.0))
    return out


def make_grid(
    settings: str | None = None,
    *,
    gaps_mm: Mapping[str, Sequence[float]] | None = None,
    jaws_mm: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    centers_mm: Mapping[str, float] | None = None,
) -> SlitGrid:
    """Slit grid: given gaps [mm] (centred) or jaw pairs [mm] per slit, the settings'
    values for the others. See :meth:`beamline.apertures.SlitGrid.build`."""
    return SlitGrid.build(line_spec(), settings_jaws(settings), gaps_mm, jaws_mm, centers_mm)


def _check_current(magnet: str, value: float) -> float:
    if not math.isfinite(value):
        raise BeamlineInputError(f"{magnet} current must be a finite number of A")
    calibration.magnet_spec(magnet).check_current(value)
    return float(value)


def configure_point(
    bl: BeamLine, point: ScanPoint, currents_a: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Set energy, dipole currents (matched unless given), extra currents; open the slits.

    Returns the currents [A] in use.
    """
    bl.set_energy(point.energy_mev)
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
    bl.set_currents(wanted)
    for slit in SLITS:
        bl.set_gap(slit, float(bl.spec.slits[slit.lower()]["max_gap_mm"]), 0.0)
    return bl.currents_a()


# ---- tracking with records -------------------------------------------------------------
def _events(bl: BeamLine, source: BeamSource) -> list[tuple[str, str, Any]]:
    """Stops of the segmented pass, in line order: (element, kind, payload)."""
    names = bl.line.element_names
    index = {n: i for i, n in enumerate(names)}
    events: list[tuple[int, int, str, str, Any]] = []
    for slit in SLITS:
        key = slit.lower()
        events.append((index[key], 0, key, "entry", slit))
        events.append((index[f"{key}_exit"], 0, f"{key}_exit", "exit", slit))
    events.append((index["padme_target"], 0, "padme_target", "target", None))
    for layer in source.active_layers:
        if layer.element not in index:
            raise BeamlineInputError(
                f"scattering layer {layer.name}: element '{layer.element}' not in the line"
            )
        events.append((index[layer.element], 1, layer.element, "kick", layer))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(e[2], e[3], e[4]) for e in events]


def _particles(bl: BeamLine, coords: Mapping[str, np.ndarray], cache: dict) -> xt.Particles:
    """xtrack particles at the line start.

    One object per (size, reference momentum) is built and then reset in place for each
    chunk: every per-particle variable that tracking through this line changes is
    rewritten (coordinates, energy deviations, state, ids, position counters); the others
    (reference quantities, charge and mass ratios, weights) are equal for all particles,
    so the reordering of lost particles leaves them unchanged.
    """
    import xtrack as xt

    n = coords["x"].size
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


def _record_keys() -> list[str]:
    keys = []
    for slit in SLITS:
        keys += [f"{slit.lower()}_entry_m", f"{slit.lower()}_exit_m"]
    return [*keys, "x_target_m", "y_target_m", "x_timepix_m", "y_timepix_m"]


def _track_chunk(
    bl: BeamLine,
    particles: xt.Particles,
    events: list[tuple[str, str, Any]],
    kick_deviates: Mapping[str, tuple[np.ndarray, np.ndarray]],
    planes: Mapping[str, str],
    classes: Mapping[str, SlitClasses] | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One segmented pass. Returns per-particle records (NaN where not reached; ``alive``:
    reached the end) and, with ``classes``, the pass class per slit (-1: pruned/none)."""
    p = particles
    n = p._capacity
    rec = {k: np.full(n, np.nan) for k in _record_keys()}
    cls = {s: np.full(n, -1, dtype=np.int64) for s in SLITS} if classes is not None else {}
    p0c_mev = float(bl.line.particle_ref.p0c[0]) * 1e-6
    start: str | None = None
    for element, kind, payload in events:
        if element != start:  # ele_stop == ele_start would track a whole extra turn
            bl.line.track(p, ele_start=start, ele_stop=element)
        start = element
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
        elif kind == "kick":
            layer = payload
            ux, uy = kick_deviates[layer.name]
            one_d = 1.0 + np.asarray(p.delta[pos])
            theta = layer.theta0_rad(p0c_mev * one_d)
            p.px[pos] = p.px[pos] + one_d * theta * ux[ids]
            p.py[pos] = p.py[pos] + one_d * theta * uy[ids]
    bl.line.track(p, ele_start=start)
    pos = np.flatnonzero(p.state > 0)
    ids = p.particle_id[pos]
    rec["x_timepix_m"][ids] = p.x[pos]
    rec["y_timepix_m"][ids] = p.y[pos]
    alive = np.zeros(n, dtype=bool)
    alive[ids] = True
    rec["alive"] = alive
    return rec, cls


def _kicks(source: BeamSource, deviates: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for j, layer in enumerate(source.layers):
        out[layer.name] = (deviates[5 + 2 * j], deviates[6 + 2 * j])
    return out


def track_particles(
    bl: BeamLine,
    coords: Mapping[str, np.ndarray],
    *,
    source: BeamSource | None = None,
    kick_deviates: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One pass of given particles with the slits open; per-particle records.

    ``coords``: ``x, px, y, py, delta`` at the line start (arrays, same length). With a
    ``source`` whose scattering is on, ``kick_deviates`` (``2 x n_layers`` rows of standard
    normals, see :func:`beamline.source.draw_deviates`) give the kicks. The slits of ``bl``
    are opened for the pass and restored afterwards. Keys: ``sltbN_entry_m``,
    ``sltbN_exit_m`` (coordinate in the slit plane), ``x/y_target_m``, ``x/y_timepix_m``
    (NaN where a particle did not arrive), ``alive`` (reached the TimePix), ``delta``.
    """
    source = source or BeamSource(beam=bl.beam, layers=(), scattering=False)
    saved = {s: (bl.gap_mm(s), bl.center_mm(s)) for s in SLITS}
    try:
        for slit in SLITS:
            bl.set_gap(slit, float(bl.spec.slits[slit.lower()]["max_gap_mm"]), 0.0)
        n = np.asarray(coords["x"]).size
        kicks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if source.active_layers:
            if kick_deviates is None or kick_deviates.shape != (2 * len(source.layers), n):
                raise BeamlineInputError("kick_deviates must have 2 rows per layer and n columns")
            kicks = _kicks(source, np.vstack([np.zeros((5, n)), kick_deviates]))
        planes = {s: str(bl.spec.slits[s.lower()]["plane"]) for s in SLITS}
        p = _particles(bl, {k: np.asarray(v, dtype=float) for k, v in coords.items()}, {})
        rec, _ = _track_chunk(bl, p, _events(bl, source), kicks, planes, None)
        rec["delta"] = np.asarray(coords["delta"], dtype=float)
        return rec
    finally:
        for slit, (gap, center) in saved.items():
            bl.set_gap(slit, gap, center)


def transmitted(records: Mapping[str, np.ndarray], setting: Mapping[str, Jaws]) -> np.ndarray:
    """Particles of :func:`track_particles` records transmitted with ``setting``
    (``{slit: Jaws}``; slits not named stay open)."""
    from .apertures import passes

    ok = records["alive"].copy()
    for slit, jaws in setting.items():
        key = slit.lower()
        with np.errstate(invalid="ignore"):
            ok &= passes(records[f"{key}_entry_m"], records[f"{key}_exit_m"], jaws)
    return ok


# ---- one scan point --------------------------------------------------------------------
def _relative_energy(p0c_mev: float, energy_mev: float, delta: np.ndarray) -> np.ndarray:
    """``E/E0 - 1`` of particles with momentum deviation ``delta``."""
    p = p0c_mev * (1.0 + delta)
    return np.sqrt(p * p + ELECTRON_MASS_MEV**2) / energy_mev - 1.0


def _spot_edges() -> tuple[np.ndarray, np.ndarray]:
    nx = round(2 * TIMEPIX_HALF_WIDTH_MM / TIMEPIX_SPOT_BIN_MM)
    ny = round(2 * TIMEPIX_HALF_HEIGHT_MM / TIMEPIX_SPOT_BIN_MM)
    return (
        np.linspace(-TIMEPIX_HALF_WIDTH_MM, TIMEPIX_HALF_WIDTH_MM, nx + 1),
        np.linspace(-TIMEPIX_HALF_HEIGHT_MM, TIMEPIX_HALF_HEIGHT_MM, ny + 1),
    )


def _run_point(job: _Job) -> _PointResult:
    t0 = time.perf_counter()
    bl = _line_for(job.settings)
    currents = configure_point(bl, job.point, job.currents_a)
    source, grid = job.source, job.grid
    events = _events(bl, source)
    classes = {s: SlitClasses(grid.settings[s]) for s in SLITS}
    beam = source.beam
    acc = CellAccumulator(
        [classes[s] for s in SLITS],
        eps_center=beam.delta_offset,
        eps_half_width=6.0 * beam.sigma_delta + 1e-3,
        eps_bin=job.eps_bin,
    )
    p0c_mev = float(bl.line.particle_ref.p0c[0]) * 1e-6
    edges = _spot_edges()
    spot = np.zeros((edges[0].size - 1, edges[1].size - 1)) if job.spot is not None else None
    cache: dict = {}
    n_candidates = 0
    for start in range(0, job.n_particles, job.chunk_particles):
        stop = min(job.n_particles, start + job.chunk_particles)
        dev = draw_deviates(job.seed, start, stop, len(source.layers))
        coords = initial_coordinates(beam, dev)
        p = _particles(bl, coords, cache)
        rec, cls = _track_chunk(bl, p, events, _kicks(source, dev), grid.planes, classes)
        ok = rec["alive"].copy()
        for s in SLITS:
            ok &= cls[s] >= 0
        n_candidates += int((cls["SLTB4"] >= 0).sum())
        cells = acc.cell_index([cls[s][ok] for s in SLITS])
        eps = _relative_energy(p0c_mev, job.point.energy_mev, coords["delta"][ok])
        acc.add(
            cells,
            eps,
            (rec["x_target_m"][ok], rec["y_target_m"][ok]),
            (rec["x_timepix_m"][ok], rec["y_timepix_m"][ok]),
        )
        if spot is not None:
            sel = np.ones(int(ok.sum()), dtype=bool)
            for s, k in zip(SLITS, job.spot, strict=True):
                sel &= classes[s].table[cls[s][ok], k] > 0
            h, _, _ = np.histogram2d(
                1e3 * rec["x_timepix_m"][ok][sel], 1e3 * rec["y_timepix_m"][ok][sel], bins=edges
            )
            spot += h
    sums, hist = acc.combinations()
    n_comb = grid.n_combinations
    sums = sums.reshape(len(MOMENTS), n_comb)
    hist = hist.reshape(n_comb, -1)
    n = sums[0]
    mean = np.divide(sums[1], n, out=np.full(n_comb, np.nan), where=n > 0)
    var = np.divide(sums[2], n, out=np.full(n_comb, np.nan), where=n > 0) - mean * mean
    sigma = np.sqrt(np.clip(var, 0.0, None, where=n > 0, out=np.full(n_comb, np.nan)))
    fwhm = np.array(
        [
            fwhm_from_histogram(hist[i, 1:-1], acc.eps_bin, sigma[i]) if n[i] > 0 else math.nan
            for i in range(n_comb)
        ]
    )
    return _PointResult(
        currents_a=currents,
        sums=sums,
        fwhm_eps=fwhm,
        spot=spot,
        seconds=time.perf_counter() - t0,
        tracked_fraction_after_sltb4=n_candidates / max(job.n_particles, 1),
    )


# ---- public entry ----------------------------------------------------------------------
def _table_rows(
    point: ScanPoint, res: _PointResult, grid: SlitGrid, n_particles: int, intensity: float
) -> list[dict[str, Any]]:
    s = res.sums
    n = s[0]
    safe = np.where(n > 0, n, 1.0)

    def mean(i: int) -> np.ndarray:
        return np.where(n > 0, s[i] / safe, np.nan)

    def rms(i: int) -> np.ndarray:
        m = s[i] / safe
        return np.where(n > 0, np.sqrt(np.clip(s[i + 1] / safe - m * m, 0.0, None)), np.nan)

    e0 = point.energy_mev
    eps_mean = mean(1)
    mean_energy = e0 * (1.0 + eps_mean)
    sigma_eps = rms(1)
    scale = np.where(n > 0, e0 / np.where(n > 0, mean_energy, 1.0), np.nan)
    rows = []
    stats = {
        "n_transmitted": n.astype(np.int64),
        "transmission": n / n_particles,
        "positrons_per_bunch": n / n_particles * intensity,
        "mean_energy_mev": mean_energy,
        "rel_spread_rms": sigma_eps * scale,
        "rel_spread_fwhm": res.fwhm_eps * scale,
        "x_target_mm": mean(3),
        "y_target_mm": mean(5),
        "sigma_x_target_mm": rms(3),
        "sigma_y_target_mm": rms(5),
        "x_timepix_mm": mean(7),
        "y_timepix_mm": mean(9),
        "sigma_x_timepix_mm": rms(7),
        "sigma_y_timepix_mm": rms(9),
    }
    for i, combo in enumerate(grid.combinations()):
        row: dict[str, Any] = {
            "energy_mev": e0,
            "dhstb01_current_a": res.currents_a["DHSTB01"],
            "dhstb02_current_a": res.currents_a["DHSTB02"],
        }
        row.update(combo)
        for k, v in stats.items():
            row[k] = v[i].item()
        rows.append(row)
    return rows


def compute_spread(
    energies_mev: Sequence[float] | None = None,
    *,
    points: Sequence[ScanPoint] | None = None,
    grid: SlitGrid | None = None,
    settings: str | None = None,
    source: BeamSource | None = None,
    n_particles: int = 1_000_000,
    chunk_particles: int = DEFAULT_CHUNK_PARTICLES,
    seed: int = 0,
    scheduler: str | None = "local",
    n_workers: int | None = None,
    spot: Mapping[str, Jaws] | None = None,
    currents_a: Mapping[str, float] | None = None,
    eps_bin: float = DEFAULT_EPS_BIN,
    progress: Callable[[int, int], None] | None = None,
) -> SpreadResult:
    """Energy spread and transmission table for every scan point and slit combination.

    ``energies_mev`` (matched dipoles) or ``points`` (:class:`ScanPoint`, currents may be
    mis-set); ``grid`` from :func:`make_grid` (default: the settings' slit gaps); ``source``
    from :func:`beamline.source.load_source` (default: the settings' beam, scattering on);
    ``n_particles`` per scan point, tracked in chunks of ``chunk_particles``; ``seed`` the
    base seed; ``scheduler``/``n_workers`` see :func:`beamline.parallel.map_ordered`;
    ``spot`` a slit combination (``{slit: Jaws}``, must be in the grid; default: the
    settings' slits where in the grid, else the middle setting) for the TimePix beam-spot
    histograms; ``currents_a`` extra fixed currents
    (e.g. quadrupoles) [A]; ``progress(done, total)`` is called after each scan point.
    """
    if (energies_mev is None) == (points is None):
        raise BeamlineInputError("give either energies_mev or points")
    pts = list(points) if points is not None else [ScanPoint(float(e)) for e in energies_mev]
    if not pts:
        raise BeamlineInputError("no scan points: the energy list is empty")
    spec = line_spec()
    for pt in pts:
        if not math.isfinite(pt.energy_mev):
            raise BeamlineInputError("beam energies must be finite numbers of MeV")
        spec.check_energy(pt.energy_mev)
    if int(n_particles) < 1 or int(chunk_particles) < 1:
        raise BeamlineInputError("particles per energy and per chunk must be >= 1")
    if not (eps_bin > 0):
        raise BeamlineInputError("eps_bin must be > 0")
    settings_name = load_settings(settings).name
    grid = grid or make_grid(settings_name)
    source = source or load_source(settings=settings_name)
    if spot is not None:
        spot_index = grid.index_of(spot)
    else:  # the settings' slits if they are in the grid, else the middle setting of each
        defaults = settings_jaws(settings_name)
        spot_index = tuple(
            grid.settings[s].index(defaults[s])
            if defaults[s] in grid.settings[s]
            else len(grid.settings[s]) // 2
            for s in SLITS
        )
    jobs = [
        _Job(
            point=pt,
            settings=settings_name,
            source=source,
            grid=grid,
            n_particles=int(n_particles),
            chunk_particles=int(chunk_particles),
            seed=int(seed),
            eps_bin=float(eps_bin),
            spot=spot_index,
            currents_a=dict(currents_a) if currents_a else None,
        )
        for pt in pts
    ]
    done = [0]

    def tick(_: int) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(jobs))

    t0 = time.perf_counter()
    results = map_ordered(_run_point, jobs, scheduler=scheduler, n_workers=n_workers, on_done=tick)
    wall = time.perf_counter() - t0
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for pt, res in zip(pts, results, strict=True):
        rows += _table_rows(pt, res, grid, int(n_particles), source.beam.positrons_per_bunch)
    table = pd.DataFrame(rows)
    s = load_settings(settings_name)
    metadata: dict[str, Any] = {
        "settings": s.name,
        "settings_version": s.version,
        "lattice_version": spec.version,
        "n_particles": int(n_particles),
        "chunk_particles": int(chunk_particles),
        "seed": int(seed),
        "slit_model": SLIT_MODEL,
        "scattering_model": (
            "Highland (PDG) Gaussian angle kicks at "
            + ", ".join(f"{la.name} ({la.material})" for la in source.active_layers)
            if source.active_layers
            else "off"
        ),
        "energy_loss": "not modelled",
        "spread_definition": "sigma_E/<E> of the transmitted particles; FWHM from a histogram "
        "rebinned to ~rms/5, half-maximum crossings interpolated",
        "engine": "xtrack, one pass per scan point with slits open, slit settings applied "
        "with NumPy at slit entry and exit",
        "wall_s": wall,
        "point_seconds": [r.seconds for r in results],
        "candidates_after_sltb4": [r.tracked_fraction_after_sltb4 for r in results],
        "spot_setting_mm": {
            s: round(grid.settings[s][k].gap_mm, 6) for s, k in zip(SLITS, spot_index, strict=True)
        },
        "point_energies_mev": [pt.energy_mev for pt in pts],
    }
    metadata.update(source.metadata())
    spots = {i: r.spot for i, r in enumerate(results) if r.spot is not None}
    return SpreadResult(table=table, metadata=metadata, spots=spots, spot_edges_mm=_spot_edges())


# ---- advisor ---------------------------------------------------------------------------
SPREAD_MEASURES = ("rms", "fwhm")


def tradeoff_curve(table: pd.DataFrame, measure: str = "rms") -> pd.DataFrame:
    """Transmission-versus-spread front per scan point: sorted by spread, the rows whose
    transmission beats every row of smaller (or equal) spread."""
    import pandas as pd

    col = _measure_column(measure)
    keys = ["energy_mev", "dhstb01_current_a", "dhstb02_current_a"]
    parts = []
    for _, group in table.dropna(subset=[col]).groupby(keys, sort=True):
        g = group.sort_values([col, "transmission"], ascending=[True, False])
        previous_best = g["transmission"].cummax().shift(fill_value=-1.0)
        parts.append(g[g["transmission"] > previous_best])
    if not parts:
        return table.iloc[0:0].copy()
    return pd.concat(parts, ignore_index=True)


def _measure_column(measure: str) -> str:
    if measure not in SPREAD_MEASURES:
        raise BeamlineInputError(f"spread measure must be one of {SPREAD_MEASURES}")
    return f"rel_spread_{measure}"


def advise(
    table: pd.DataFrame,
    target_rel_spread: float,
    *,
    measure: str = "rms",
    min_transmitted: int = 100,
) -> pd.DataFrame:
    """Per energy (and currents), the slit setting with the highest transmission whose
    relative spread is at most ``target_rel_spread`` (e.g. 0.0025 for 0.25 %).

    Rows with fewer than ``min_transmitted`` particles are not trusted. Energies with no
    qualifying row are absent from the result.
    """
    if not (math.isfinite(target_rel_spread) and target_rel_spread > 0):
        raise BeamlineInputError("target relative spread must be > 0 (e.g. 0.0025)")
    col = _measure_column(measure)
    ok = table[(table["n_transmitted"] >= min_transmitted) & (table[col] <= target_rel_spread)]
    if ok.empty:
        return ok.copy()
    keys = ["energy_mev", "dhstb01_current_a", "dhstb02_current_a"]
    idx = ok.groupby(keys, sort=True)["transmission"].idxmax()
    return table.loc[idx.to_numpy()].reset_index(drop=True)


# ---- sensitivity -----------------------------------------------------------------------
def spread_sensitivity(
    energy_mev: float,
    setting: Mapping[str, Jaws] | None = None,
    *,
    settings: str | None = None,
    source: BeamSource | None = None,
    divergence_scales: Sequence[float] = (0.5, 1.0, 1.5, 2.0),
    window_thickness_scales: Sequence[float] = (0.0, 1.0, 2.0),
    window_layer: str = "mylar_window",
    n_particles: int = 200_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Spread of one slit setting (default: the settings' gaps) against the assumed input
    divergence (waist divergence scaled, waist size kept) and the window scattering
    (window thickness scaled; 0 = no window scattering). One row per variant:
    ``variant, divergence_scale, window_thickness_scale, transmission, rel_spread_rms,
    rel_spread_fwhm, mean_energy_mev``.
    """
    import pandas as pd

    settings_name = load_settings(settings).name
    setting = dict(setting or settings_jaws(settings_name))
    base = source or load_source(settings=settings_name)
    grid = make_grid(
        settings_name, jaws_mm={s: [(j.negative_mm, j.positive_mm)] for s, j in setting.items()}
    )
    rows = []
    variants: list[tuple[str, float, float]] = [
        ("divergence", f, 1.0) for f in divergence_scales
    ] + [("window", 1.0, w) for w in window_thickness_scales]
    for kind, fdiv, fwin in variants:
        src = base.with_divergence_scale(fdiv)
        if fwin == 0:
            src = src.without_layer(window_layer)
        else:
            thick = {la.name: la.thickness_m for la in base.layers}[window_layer]
            src = src.with_layer(window_layer, thickness_m=thick * fwin)
        res = compute_spread(
            [energy_mev],
            grid=grid,
            settings=settings_name,
            source=src,
            n_particles=n_particles,
            seed=seed,
            scheduler="sync",
        )
        r = res.table.iloc[0]
        rows.append(
            {
                "variant": kind,
                "divergence_scale": fdiv,
                "window_thickness_scale": fwin,
                "transmission": r["transmission"],
                "rel_spread_rms": r["rel_spread_rms"],
                "rel_spread_fwhm": r["rel_spread_fwhm"],
                "mean_energy_mev": r["mean_energy_mev"],
            }
        )
    return pd.DataFrame(rows)
