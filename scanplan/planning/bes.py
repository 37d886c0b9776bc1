"""The beam-energy spread of the plan: given, or from the spread engine (tracking through
the settings' slits), linear in beam energy between the energies tracked."""

from __future__ import annotations

from ..errors import ScanplanError
from ..records import SpreadEngineInfo
from .grid import BesOf
from .request import PlanRequest


def constant_bes(bes: float) -> BesOf:
    """The same relative spread at every beam energy."""

    def bes_of(e_mev: float) -> float:
        return bes

    return bes_of


def bes_from_spread(
    req: PlanRequest, e_range_mev: tuple[float, float], controls_mev: list[float]
) -> tuple[BesOf, SpreadEngineInfo]:
    """Relative rms spread of the transmitted beam from the spread engine at the range ends,
    its centre and the control-block centre; linear in beam energy in between and beyond
    (never below half the smallest value tracked)."""
    import numpy as np

    from beamline.spread import compute_spread

    energies = {e_range_mev[0], 0.5 * (e_range_mev[0] + e_range_mev[1]), e_range_mev[1]}
    if controls_mev:
        energies.add(0.5 * (min(controls_mev) + max(controls_mev)))
    result = compute_spread(
        sorted(energies),
        settings=req.settings,
        n_particles=req.spread_particles,
        seed=req.spread_seed,
        scheduler=req.spread_scheduler or "local",
    )
    table = result.table.groupby("energy_mev", sort=True).first()
    rel = table["rel_spread_rms"].to_numpy(dtype=float)
    if not np.all(np.isfinite(rel)) or np.any(rel <= 0):
        raise ScanplanError(
            "spread engine: no beam transmitted at some energy with these slits; "
            "give --bes instead or more --spread-particles"
        )
    xs = table.index.to_numpy(dtype=float)

    def bes_of(e: float) -> float:
        if xs.size == 1:
            return float(rel[0])
        i = 0 if e < xs[0] else xs.size - 2 if e > xs[-1] else None
        if i is None:
            return float(np.interp(e, xs, rel))
        value = rel[i] + (e - xs[i]) * (rel[i + 1] - rel[i]) / (xs[i + 1] - xs[i])
        return float(max(value, 0.5 * rel.min()))

    info = SpreadEngineInfo(
        energies_mev=xs.tolist(),
        rel_spread_rms=rel.tolist(),
        n_transmitted=[int(x) for x in table["n_transmitted"]],
        positrons_per_bunch=[float(x) for x in table["positrons_per_bunch"]],
        particles=req.spread_particles,
        seed=req.spread_seed,
    )
    return bes_of, info
