"""Energy spread and transmission against slit settings and magnet currents, for every energy.

Entry point :func:`compute_spread`; the work is split by job:

* :mod:`beamline.spread_engine`: scan points, the segmented xtrack passes, the reference
  per-energy path; :mod:`beamline.spread_shared`: the shared path (one pass through the
  energy selection for all energies, per-energy tracking of the survivors only);
* :mod:`beamline.spread_tables`: every slit combination from per-particle slit classes in
  O(N), FWHM, TimePix spot, result rows;
* :mod:`beamline.spread_advisor`: trade-off front, advice, source sensitivity.

Slit jaws are black absorbers: a particle outside the jaws at a slit's entry or exit is lost
(:data:`SLIT_MODEL`). Thin layers (Mylar window, diamond target) give Highland angle kicks.
Memory is bounded by chunking the particles (``chunk_particles``). Chunks run in parallel
through :func:`beamline.parallel.map_ordered`; results are identical for a fixed seed
whatever the scheduler (candidates are concatenated in chunk order).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .apertures import Jaws, SlitGrid, passes
from .errors import BeamlineInputError
from .lattice import line_spec, load_settings, read_strength_values
from .names import SLITS
from .parallel import map_ordered
from .source import BeamSource, spread_source
from .spread_advisor import SPREAD_MEASURES, advise, spread_sensitivity, tradeoff_curve
from .spread_engine import (
    ENGINES,
    Candidates,
    ScanPoint,
    SpotGrid,
    chunk_deviates,
    configure_point,
    events,
    line_for,
    make_particles,
    per_energy_chunk,
    track_segments,
)
from .spread_tables import (
    DEFAULT_EPS_BIN,
    SpreadResult,
    point_statistics,
    spot_setting_index,
    table_rows,
)

__all__ = [
    "DEFAULT_CHUNK_PARTICLES",
    "DEFAULT_EPS_BIN",
    "ENGINES",
    "SLIT_MODEL",
    "SPREAD_MEASURES",
    "ScanPoint",
    "SpotGrid",
    "SpreadResult",
    "advise",
    "compute_spread",
    "configure_point",
    "make_grid",
    "settings_jaws",
    "spread_sensitivity",
    "track_particles",
    "tradeoff_curve",
    "transmitted",
]

#: Default particles per tracking chunk (bounds memory: ~0.5 kB per particle in flight).
DEFAULT_CHUNK_PARTICLES = 200_000
#: Black-absorber statement carried in result metadata.
SLIT_MODEL = (
    "slit jaws are black absorbers: a particle outside the jaws at the slit entry or exit "
    "is lost; no scattering or re-emission in the jaws"
)


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


def track_particles(
    bl: Any,
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
    from . import spread_engine

    source = source or BeamSource(beam=bl.beam, layers=(), scattering=False)
    saved = {s: (bl.gap_mm(s), bl.center_mm(s)) for s in SLITS}
    try:
        spread_engine.open_slits(bl)
        n = np.asarray(coords["x"]).size
        kicks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if source.active_layers:
            if kick_deviates is None or kick_deviates.shape != (2 * len(source.layers), n):
                raise BeamlineInputError("kick_deviates must have 2 rows per layer and n columns")
            kicks = spread_engine.kick_deviates(
                source, np.vstack([np.zeros((5, n)), kick_deviates])
            )
        planes = {s: bl.spec.slit(s).plane for s in SLITS}
        p = make_particles(bl, {k: np.asarray(v, dtype=float) for k, v in coords.items()}, {})
        rec, _ = track_segments(bl, p, events(bl, source), kicks, planes, None)
        rec["delta"] = np.asarray(coords["delta"], dtype=float)
        return rec
    finally:
        for slit, (gap, center) in saved.items():
            bl.set_gap(slit, gap, center)


def transmitted(records: Mapping[str, np.ndarray], setting: Mapping[str, Jaws]) -> np.ndarray:
    """Particles of :func:`track_particles` records transmitted with ``setting``
    (``{slit: Jaws}``; slits not named stay open)."""
    ok = records["alive"].copy()
    for slit, jaws in setting.items():
        key = slit.lower()
        with np.errstate(invalid="ignore"):
            ok &= passes(records[f"{key}_entry_m"], records[f"{key}_exit_m"], jaws)
    return ok


# ---- jobs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    engine: str
    points: tuple[ScanPoint, ...]
    settings: str
    source: BeamSource
    grid: SlitGrid
    start: int
    stop: int
    chunk_particles: int
    seed: int
    currents_a: Mapping[str, float] | None


def _run_job(job: _Job) -> tuple[list[Candidates], float]:
    """Candidates of particles ``start..stop`` for every point of the job."""
    t0 = time.perf_counter()
    bl = line_for(job.settings)
    if job.engine == "shared":
        from .spread_shared import shared_chunk

        coords, dev, losses = chunk_deviates(job.source, job.seed, job.start, job.stop)
        out = shared_chunk(
            bl, job.source, job.grid, job.points, coords, dev, job.currents_a, losses
        )
        return out, time.perf_counter() - t0
    out = [Candidates() for _ in job.points]
    cache: dict[Any, Any] = {}
    for k, pt in enumerate(job.points):
        configure_point(bl, pt, job.currents_a)
        for a in range(job.start, job.stop, job.chunk_particles):
            b = min(job.stop, a + job.chunk_particles)
            coords, dev, losses = chunk_deviates(job.source, job.seed, a, b)
            out[k].extend(
                per_energy_chunk(
                    bl, job.source, job.grid, coords, dev, pt.energy_mev, cache, losses
                )
            )
    return out, time.perf_counter() - t0


def _jobs(engine: str, pts: list[ScanPoint], n: int, chunk: int, **common: Any) -> list[_Job]:
    if engine == "shared":  # particle chunks, every point in each
        return [
            _Job(engine, tuple(pts), start=a, stop=min(n, a + chunk), chunk_particles=chunk,
                 **common)
            for a in range(0, n, chunk)
        ]  # fmt: skip
    return [  # one job per point, all particles
        _Job(engine, (pt,), start=0, stop=n, chunk_particles=chunk, **common) for pt in pts
    ]


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
    spot_grid: SpotGrid | None = None,
    currents_a: Mapping[str, float] | None = None,
    eps_bin: float = DEFAULT_EPS_BIN,
    engine: str = "shared",
    progress: Callable[[int, int], None] | None = None,
) -> SpreadResult:
    """Energy spread and transmission table for every scan point and slit combination.

    ``energies_mev`` (matched dipoles) or ``points`` (:class:`ScanPoint`, currents may be
    mis-set); ``grid`` from :func:`make_grid` (default: the settings' slit gaps); ``source``
    (default: :func:`beamline.source.spread_source`, the settings' ``spread_beam``, for
    run3_2022 PADME's definition after the selection; scattering on);
    ``n_particles`` per scan point, in chunks of ``chunk_particles``; ``seed`` the base
    seed; ``scheduler``/``n_workers`` see :func:`beamline.parallel.map_ordered`; ``spot`` a
    slit combination (``{slit: Jaws}`` in the grid; default: the settings' slits where in
    the grid, else the middle setting) and ``spot_grid`` the TimePix bins (no spots without
    it); ``currents_a`` extra fixed currents (e.g. quadrupoles) [A]; ``engine`` "shared"
    (default) or "per_energy" (the reference path, same results); ``progress(done, total)``
    is called after each job.
    """
    if (energies_mev is None) == (points is None):
        raise BeamlineInputError("give either energies_mev or points")
    pts = list(points) if points is not None else [ScanPoint(float(e)) for e in energies_mev or ()]
    if not pts:
        raise BeamlineInputError("no scan points: the energy list is empty")
    if engine not in ENGINES:
        raise BeamlineInputError(f"engine must be one of {ENGINES}, got {engine!r}")
    spec = line_spec()
    for pt in pts:
        if not math.isfinite(pt.energy_mev):
            raise BeamlineInputError("beam energies must be finite numbers of MeV")
        spec.check_energy(pt.energy_mev)
    n, chunk = int(n_particles), int(chunk_particles)
    if n < 1 or chunk < 1:
        raise BeamlineInputError("particles per energy and per chunk must be >= 1")
    if not (eps_bin > 0):
        raise BeamlineInputError("eps_bin must be > 0")
    settings_name = load_settings(settings).name
    grid = grid or make_grid(settings_name)
    source = source or spread_source(settings_name)
    spot_index = (
        grid.index_of(spot) if spot is not None
        else spot_setting_index(grid, settings_jaws(settings_name))
    )  # fmt: skip
    jobs = _jobs(
        engine, pts, n, chunk, settings=settings_name, source=source, grid=grid,
        seed=int(seed), currents_a=dict(currents_a) if currents_a else None,
    )  # fmt: skip
    done = [0]

    def tick(_: int) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(jobs))

    t0 = time.perf_counter()
    results = map_ordered(_run_job, jobs, scheduler=scheduler, n_workers=n_workers, on_done=tick)
    per_point = [Candidates() for _ in pts]
    if engine == "shared":
        for cands, _ in results:
            for k, c in enumerate(cands):
                per_point[k].extend(c)
    else:
        per_point = [cands[0] for cands, _ in results]
    wall = time.perf_counter() - t0
    return _result(
        pts, per_point, grid, source, settings_name, spot_index, spot_grid,
        n=n, chunk=chunk, seed=int(seed), eps_bin=float(eps_bin), engine=engine, wall=wall,
        job_seconds=[s for _, s in results], currents_a=currents_a,
    )  # fmt: skip


def _result(
    pts: list[ScanPoint],
    per_point: list[Candidates],
    grid: SlitGrid,
    source: BeamSource,
    settings_name: str,
    spot_index: tuple[int, ...],
    spot_grid: SpotGrid | None,
    *,
    n: int,
    chunk: int,
    seed: int,
    eps_bin: float,
    engine: str,
    wall: float,
    job_seconds: list[float],
    currents_a: Mapping[str, float] | None,
) -> SpreadResult:
    import pandas as pd

    from .spread_engine import point_currents_a

    bl = line_for(settings_name)
    beam = source.beam
    rows: list[dict[str, Any]] = []
    spots: dict[int, np.ndarray] = {}
    for i, (pt, cand) in enumerate(zip(pts, per_point, strict=True)):
        stats = point_statistics(
            cand, grid, eps_center=beam.delta_offset,
            eps_half_width=6.0 * beam.sigma_delta + 1e-3, eps_bin=eps_bin,
            spot_index=spot_index, spot_grid=spot_grid,
        )  # fmt: skip
        if stats.spot is not None:
            spots[i] = stats.spot
        currents = point_currents_a(bl, pt, currents_a)
        rows += table_rows(pt, currents, stats, grid, n, beam.positrons_per_bunch)
    s = load_settings(settings_name)
    metadata: dict[str, Any] = {
        "settings": s.name,
        "settings_version": s.version,
        "lattice_version": line_spec().version,
        "n_particles": n,
        "chunk_particles": chunk,
        "seed": seed,
        "engine": engine,
        "engine_description": (
            "shared: one xtrack pass to the Mylar window for all energies, window-SLTB4 in "
            "NumPy per energy, xtrack downstream of SLTB4 for the survivors only"
            if engine == "shared"
            else "per_energy: one segmented xtrack pass per scan point"
        ),
        "source_definition": f"{beam.definition} ({beam.name}, defined at "
        f"{beam.injection_element or 'the line start'})",
        "slit_model": SLIT_MODEL,
        "scattering_model": (
            "Highland (PDG) Gaussian angle kicks at "
            + ", ".join(f"{la.name} ({la.material})" for la in source.active_layers)
            if source.active_layers
            else "off"
        ),
        "energy_loss": (
            f"{source.energy_loss}: bremsstrahlung (sampled photons, complete screening) and "
            "ionisation (Moyal) in " + ", ".join(la.name for la in source.active_layers)
            if source.active_layers and source.energy_loss != "off"
            else "off"
        ),
        "spread_definition": "sigma_E/<E> of the transmitted particles at the target "
        "entrance; FWHM from a histogram rebinned to ~rms/5, half-maximum crossings "
        "interpolated",
        "wall_s": wall,
        "job_seconds": job_seconds,
        "candidates_after_sltb4": [c.n_after_sltb4 / max(n, 1) for c in per_point],
        "spot_setting_mm": {
            sl: round(grid.settings[sl][k].gap_mm, 6)
            for sl, k in zip(SLITS, spot_index, strict=True)
        },
        "point_energies_mev": [pt.energy_mev for pt in pts],
    }
    metadata.update(source.metadata())
    edges = spot_grid.edges() if spot_grid is not None else None
    return SpreadResult(
        table=pd.DataFrame(rows), metadata=metadata, spots=spots, spot_edges_mm=edges
    )
