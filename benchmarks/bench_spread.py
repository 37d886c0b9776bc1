"""Energy-spread engine: full scan table, against the naive way and a NumPy lower bound.

Measured in one run:

* ``full_table``: 41 energies (260..300 MeV) x 19 SLTB4 gaps x 5 SLTB2 gaps, 1e6 particles
  per energy, local Dask cluster of 2 worker processes; baseline: the naive way (one xtrack
  tracking run per configuration with xtrack's default bend model, slits set in the model),
  timed on a few configurations with fewer particles and extrapolated per
  particle-configuration to the full table.
* ``per_energy_vs_numpy``: one scan point in one process (same grid, same particles)
  against a pure-NumPy linear transfer-matrix propagation of the same particles to every
  aperture, recording point and scattering layer (R-matrices computed beforehand, not
  timed), the same apertures and the same aperture evaluation: the practical lower bound.
  Target: within 3x (ratio >= 1/3).
* ``peak_memory_1e7``: peak resident memory of one scan point with 1e7 particles, in a
  fresh process, against the 4 GiB limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from benchmarks.common import Result

ENERGIES_FULL = [260.0 + i for i in range(41)]
SLTB4_GAPS = [0.5 + 0.25 * i for i in range(19)]
SLTB2_GAPS = [1.0, 1.5, 2.0, 2.5, 3.0]


def _grid():
    from beamline import spread

    return spread.make_grid(gaps_mm={"SLTB4": SLTB4_GAPS, "SLTB2": SLTB2_GAPS})


def _job(energy: float, n: int, grid, source):
    from beamline import spread

    return spread._Job(
        point=spread.ScanPoint(energy),
        settings=None,
        source=source,
        grid=grid,
        n_particles=n,
        chunk_particles=spread.DEFAULT_CHUNK_PARTICLES,
        seed=1,
        eps_bin=spread.DEFAULT_EPS_BIN,
        spot=None,
        currents_a=None,
    )


# ---- NumPy linear lower bound ------------------------------------------------------------
class LinearModel:
    """First-order maps from the line start to every aperture/recording point of one
    scan point (computed with xtrack twiss beforehand, not timed)."""

    def __init__(self, energy: float) -> None:
        from beamline import optics, spread

        bl = spread._line_for(None)
        spread.configure_point(bl, spread.ScanPoint(energy))
        tw = optics.twiss_table(bl)
        first = bl.line.element_names[0]
        self.bl = bl
        self.steps = []  # (element, kind, payload, R from start)
        source_layers = {la.element: la for la in spread.load_source().active_layers}
        planes = {s: str(bl.spec.slits[s.lower()]["plane"]) for s in spread.SLITS}
        slit_elems = {}
        for s in spread.SLITS:
            slit_elems[s.lower()] = ("entry", s)
            slit_elems[f"{s.lower()}_exit"] = ("exit", s)
        seg = first  # maps start at the line start or at the last scattering layer
        tab = bl.line.get_table()
        types = dict(zip(tab.name, tab.element_type, strict=False))
        for name in bl.line.element_names:
            if types[name] in ("LimitRect", "LimitEllipse"):
                el = bl.line[name].to_dict()  # snapshot of the aperture parameters
                self.steps.append((name, "aper", el, optics.r_between(tw, seg, name)))
            if name in slit_elems:
                kind, s = slit_elems[name]
                self.steps.append((name, kind, (s, planes[s]), optics.r_between(tw, seg, name)))
            if name == "padme_target":
                self.steps.append((name, "target", None, optics.r_between(tw, seg, name)))
            if name in source_layers:
                r = optics.r_between(tw, seg, name)
                self.steps.append((name, "kick", source_layers[name], r))
                seg = name
        self.r_end = optics.r_between(tw, seg, "_end_point")
        self.p0c_mev = float(bl.line.particle_ref.p0c[0]) * 1e-6
        self.beta0 = float(bl.line.particle_ref.beta0[0])


def numpy_point(model: LinearModel, job) -> np.ndarray:
    """The same table for one scan point with linear maps (returns per-combination sums)."""
    from beamline import apertures, spread
    from beamline.source import draw_deviates, initial_coordinates

    grid, source = job.grid, job.source
    classes = {s: apertures.SlitClasses(grid.settings[s]) for s in spread.SLITS}
    beam = source.beam
    acc = apertures.CellAccumulator(
        [classes[s] for s in spread.SLITS],
        beam.delta_offset,
        6.0 * beam.sigma_delta + 1e-3,
        job.eps_bin,
    )
    kick_rows = {la.name: 5 + 2 * j for j, la in enumerate(source.layers)}
    for start in range(0, job.n_particles, job.chunk_particles):
        stop = min(job.n_particles, start + job.chunk_particles)
        dev = draw_deviates(job.seed, start, stop, len(source.layers))
        c = initial_coordinates(beam, dev)
        d = c["delta"]
        b0 = model.beta0
        pzeta = (np.sqrt(d * d + 2 * d + 1 / b0**2) - 1 / b0) / b0
        x0 = np.vstack([c["x"], c["px"], c["y"], c["py"], np.zeros_like(d), pzeta])
        n = d.size
        alive = np.ones(n, dtype=bool)
        rec = {}
        base = x0  # coordinates at the start of the present segment
        for _name, kind, payload, m in model.steps:
            if kind == "aper":
                xy = m[[0, 2]] @ base
                x, y = xy[0], xy[1]
                if payload["__class__"] == "LimitRect":
                    alive &= (
                        (x >= payload["min_x"])
                        & (x <= payload["max_x"])
                        & (y >= payload["min_y"])
                        & (y <= payload["max_y"])
                    )
                else:
                    alive &= x * x / payload["a_squ"] + y * y / payload["b_squ"] <= 1.0
            elif kind in ("entry", "exit"):
                slit, plane = payload
                rec[f"{slit}_{kind}"] = m[0 if plane == "x" else 2] @ base
            elif kind == "target":
                rec["target"] = m[[0, 2]] @ base
            elif kind == "kick":
                full = m @ base
                full[4], full[5] = 0.0, pzeta  # no longitudinal change in the line
                one_d = 1.0 + d
                th = payload.theta0_rad(model.p0c_mev * one_d)
                row = kick_rows[payload.name]
                full[1] += one_d * th * dev[row]
                full[3] += one_d * th * dev[row + 1]
                base = full
        tp = model.r_end[[0, 2]] @ base
        ok = alive.copy()
        cls = {}
        for s in spread.SLITS:
            cls[s] = classes[s].classify(rec[f"{s}_entry"], rec[f"{s}_exit"])
            ok &= cls[s] >= 0
        cells = acc.cell_index([cls[s][ok] for s in spread.SLITS])
        eps = spread._relative_energy(model.p0c_mev, job.point.energy_mev, d[ok])
        acc.add(cells, eps, (rec["target"][0][ok], rec["target"][1][ok]), (tp[0][ok], tp[1][ok]))
    sums, hist = acc.combinations()
    k = grid.n_combinations
    sums = sums.reshape(len(apertures.MOMENTS), k)
    hist = hist.reshape(k, -1)
    nn = sums[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.sqrt(np.clip(sums[2] / nn - (sums[1] / nn) ** 2, 0, None))
    for i in range(k):
        if nn[i] > 0:
            apertures.fwhm_from_histogram(hist[i, 1:-1], acc.eps_bin, sigma[i])
    return sums


# ---- naive: one xtrack run per configuration, default bends --------------------------------
def naive_seconds_per_particle_config(n: int, configs: list[tuple[float, float, float]]) -> float:
    """Wall time per (particle x configuration) of the naive way."""
    from beamline.model import BeamLine
    from beamline.source import draw_deviates, initial_coordinates, load_source

    source = load_source()
    bl = BeamLine(None, configs[0][0], match_dipoles=True, fast_bends=False)
    t0 = time.perf_counter()
    for energy, g4, g2 in configs:
        bl.set_energy(energy, match_dipoles=True)
        bl.set_gap("SLTB4", g4)
        bl.set_gap("SLTB2", g2)
        dev = draw_deviates(1, 0, n, len(source.layers))
        c = initial_coordinates(source.beam, dev)
        p = bl.build_particles(**c)
        bl.track(p)
        alive = p.state > 0
        d = np.asarray(p.delta[alive])
        _ = (d.mean(), d.std()) if d.size else None
    return (time.perf_counter() - t0) / (n * len(configs))


# ---- peak memory ---------------------------------------------------------------------------
_MEMORY_SNIPPET = """
import json, resource, sys, time
from beamline import spread
grid = spread.make_grid(gaps_mm={'SLTB4': %r, 'SLTB2': %r})
t0 = time.perf_counter()
res = spread.compute_spread([282.0], grid=grid, n_particles=%d, scheduler='sync')
print(json.dumps({'peak_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  'seconds': time.perf_counter() - t0}))
"""


def peak_memory_gib(n: int) -> tuple[float, float]:
    code = _MEMORY_SNIPPET % (SLTB4_GAPS, SLTB2_GAPS, n)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, check=True
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["peak_kib"] / 2**20, out["seconds"]


def run(quick: bool = False) -> list[Result]:
    from beamline import spread
    from beamline.source import load_source

    energies = ENERGIES_FULL[::20] if quick else ENERGIES_FULL
    n = 20_000 if quick else 1_000_000
    n_subset = 20_000 if quick else 1_000_000
    n_naive = 2_000 if quick else 20_000
    n_memory = 200_000 if quick else 10_000_000
    grid = _grid()
    source = load_source()
    results: list[Result] = []

    # NumPy lower bound vs engine, one process, same particles
    spread._line_for(None)
    subset = [262.0, 282.0, 298.0][: 1 if quick else 3]
    t_engine = t_numpy = 0.0
    for e in subset:
        job = _job(e, n_subset, grid, source)
        t0 = time.perf_counter()
        spread._run_point(job)
        t_engine += time.perf_counter() - t0
        model = LinearModel(e)
        t0 = time.perf_counter()
        numpy_point(model, job)
        t_numpy += time.perf_counter() - t0
    results.append(
        Result(
            name="per_energy_vs_numpy",
            measured=t_engine / len(subset),
            unit="s per energy",
            baseline_name="NumPy linear transfer matrices (lower bound)",
            baseline=t_numpy / len(subset),
            target_ratio=1.0 / 3.0,
            notes={"particles": n_subset, "combinations": grid.n_combinations},
        )
    )

    # naive way, extrapolated
    configs = [(282.0, 1.9, 1.74), (262.0, 1.0, 2.0), (298.0, 3.0, 1.0)][: 1 if quick else 3]
    per = naive_seconds_per_particle_config(n_naive, configs)
    naive_total = per * n * len(energies) * grid.n_combinations

    # full table
    t0 = time.perf_counter()
    res = spread.compute_spread(
        energies, grid=grid, n_particles=n, scheduler="local", n_workers=2, seed=1
    )
    wall = time.perf_counter() - t0
    results.append(
        Result(
            name="full_table",
            measured=wall,
            unit="s",
            baseline_name="naive (xtrack run per configuration, default bends), extrapolated",
            baseline=naive_total,
            target_ratio=50.0,
            notes={
                "energies": len(energies),
                "combinations_per_energy": grid.n_combinations,
                "rows": len(res.table),
                "particles_per_energy": n,
                "workers": 2,
                "naive_us_per_particle_config": per * 1e6,
            },
        )
    )

    gib, secs = peak_memory_gib(n_memory)
    results.append(
        Result(
            name="peak_memory",
            measured=gib,
            unit="GiB",
            baseline_name="limit",
            baseline=4.0,
            target_ratio=1.0,
            notes={"particles": n_memory, "seconds": secs},
        )
    )
    return results
