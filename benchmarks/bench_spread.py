"""Energy-spread engine (issue 14): the full scan table, against today's per-energy engine
and a bare NumPy linear propagation, all measured in the same run.

* ``full_table``: 41 energies (260..300 MeV) x 19 SLTB4 gaps x 5 SLTB2 gaps, 1e6 particles
  per energy, LINAC source (the selection is the work), the shared engine in this process
  (one core: the machine's 2 cores are shared, and every engine scales the same way over
  Dask workers, see tests/test_parallel.py).
* baseline ``per_energy`` (the engine of issue 5, kept as the engine's reference path): one
  segmented xtrack pass per energy, timed in this process on ``N_SUBSET`` energies with the
  same grid and particles, scaled linearly to 41 energies (its cost is per energy).
  Target: the shared table at least 5x faster.
* baseline ``numpy_linear``: pure-NumPy first-order transfer matrices from the line start
  to every aperture, recording point and scattering layer (R-matrices computed beforehand,
  not timed), the same apertures, kicks and aperture evaluation, on the same particles;
  timed and scaled the same way. Target: the shared table within 2x (ratio >= 0.5).
* ``peak_memory``: peak resident memory of one scan point with 1e7 particles, in a fresh
  process, against the 4 GiB limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from beamline.names import SLITS
from benchmarks.common import Result

ENERGIES_FULL = [260.0 + i for i in range(41)]
SLTB4_GAPS = [0.5 + 0.25 * i for i in range(19)]
SLTB2_GAPS = [1.0, 1.5, 2.0, 2.5, 3.0]
#: Energies on which the per-energy baselines are timed (then scaled to the full table).
N_SUBSET = 2
SEED = 1


def _grid():
    from beamline import spread

    return spread.make_grid(gaps_mm={"SLTB4": SLTB4_GAPS, "SLTB2": SLTB2_GAPS})


# ---- NumPy linear lower bound ------------------------------------------------------------
class LinearModel:
    """First-order maps from the line start to every aperture/recording point of one
    scan point (computed with xtrack twiss beforehand, not timed)."""

    def __init__(self, energy: float) -> None:
        from beamline import optics, spread
        from beamline.source import load_source

        bl = spread.line_for(None)
        spread.configure_point(bl, spread.ScanPoint(energy))
        tw = optics.twiss_table(bl)
        first = bl.line.element_names[0]
        self.bl = bl
        self.steps = []  # (element, kind, payload, R from start)
        source_layers = {la.element: la for la in load_source().active_layers}
        planes = {s: bl.spec.slit(s).plane for s in SLITS}
        slit_elems = {}
        for s in SLITS:
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


def numpy_point(model: LinearModel, energy: float, n_particles: int, grid, source) -> np.ndarray:
    """The same table for one scan point with linear maps (returns per-combination sums)."""
    from beamline import apertures
    from beamline.source import draw_deviates, initial_coordinates
    from beamline.spread import DEFAULT_CHUNK_PARTICLES, DEFAULT_EPS_BIN
    from beamline.spread_engine import relative_energy

    classes = {s: apertures.SlitClasses(grid.settings[s]) for s in SLITS}
    beam = source.beam
    acc = apertures.CellAccumulator(
        [classes[s] for s in SLITS],
        beam.delta_offset,
        6.0 * beam.sigma_delta + 1e-3,
        DEFAULT_EPS_BIN,
    )
    kick_rows = {la.name: 5 + 2 * j for j, la in enumerate(source.layers)}
    for start in range(0, n_particles, DEFAULT_CHUNK_PARTICLES):
        stop = min(n_particles, start + DEFAULT_CHUNK_PARTICLES)
        dev = draw_deviates(SEED, start, stop, len(source.layers))
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
        for s in SLITS:
            cls[s] = classes[s].classify(rec[f"{s}_entry"], rec[f"{s}_exit"])
            ok &= cls[s] >= 0
        cells = acc.cell_index([cls[s][ok] for s in SLITS])
        eps = relative_energy(model.p0c_mev, energy, d[ok])
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


# ---- peak memory ---------------------------------------------------------------------------
_MEMORY_SNIPPET = """
import json, resource, sys, time
from beamline import spread
from beamline.source import load_source
grid = spread.make_grid(gaps_mm={'SLTB4': %r, 'SLTB2': %r})
t0 = time.perf_counter()
res = spread.compute_spread([282.0], grid=grid, source=load_source(), n_particles=%d,
                           scheduler='sync')
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
    n_memory = 200_000 if quick else 10_000_000
    grid = _grid()
    source = load_source()
    results: list[Result] = []

    # per-energy baselines, timed in this process on a subset and scaled
    spread.line_for(None)
    subset = [262.0, 298.0][:N_SUBSET]
    t_per_energy = t_numpy = 0.0
    for e in subset:
        t0 = time.perf_counter()
        spread.compute_spread(
            [e], grid=grid, source=source, n_particles=n, seed=SEED, scheduler="sync",
            engine="per_energy",
        )  # fmt: skip
        t_per_energy += time.perf_counter() - t0
        model = LinearModel(e)
        t0 = time.perf_counter()
        numpy_point(model, e, n, grid, source)
        t_numpy += time.perf_counter() - t0
    scale = len(energies) / len(subset)

    # the full table, shared engine
    t0 = time.perf_counter()
    res = spread.compute_spread(
        energies, grid=grid, source=source, n_particles=n, scheduler="sync", seed=SEED
    )
    wall = time.perf_counter() - t0
    notes = {
        "energies": len(energies),
        "combinations_per_energy": grid.n_combinations,
        "rows": len(res.table),
        "particles_per_energy": n,
        "processes": 1,
        "baselines_timed_on_energies": subset,
        "candidates_after_sltb4_max": max(res.metadata["candidates_after_sltb4"]),
    }
    for name, label, baseline, target in (
        ("per_energy_engine", "per-energy engine (issue 5)", t_per_energy, 5.0),
        ("numpy_linear", "bare NumPy linear propagation, same particles", t_numpy, 0.5),
    ):
        results.append(
            Result(
                name=f"full_table_vs_{name}",
                measured=wall,
                unit="s",
                baseline_name=f"{label}, scaled from the subset",
                baseline=baseline * scale,
                target_ratio=target,
                notes=notes,
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
