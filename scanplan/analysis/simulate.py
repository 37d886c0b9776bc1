"""Simulated observed scans: what PADME would record at given points for a hypothetical X17.

The counts are drawn from the physics model of :mod:`scanplan.physics` (facts 5: Voigt line
shape, efficiency and background per POT), not from the likelihood code, so a fit of them is
a test of the likelihood. Optional data/MC background bias (the published curve's P0, P1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..physics.lineshape import line_shape_per_mev
from ..physics.params import PhysicsModel, load_physics
from ..physics.yields import (
    background_per_pot,
    resonance_energy_array_mev,
    signal_efficiency,
)
from .observed import ObservedRow, ObservedScan, sqrt_s_from_energy_mev


def simulate_scan(
    e_beam_mev: ArrayLike,
    scan_part: Sequence[int],
    pot: ArrayLike,
    rng: np.random.Generator,
    *,
    g: float = 0.0,
    mass_mev: float = 17.0,
    periods: Sequence[int] | None = None,
    bes: float | None = None,
    bias: tuple[float, float, float] = (1.0, 0.0, 16.92),
    pot_rel: float | None = None,
    bkg_rel: float | None = None,
    physics: PhysicsModel | None = None,
    source: str = "simulated",
) -> ObservedScan:
    """Poisson counts at beam energies ``e_beam_mev`` [MeV] with ``pot`` each, for an X17 of
    coupling ``g`` and mass ``mass_mev`` [MeV] (g = 0: background only).

    ``bias = (P0, P1 per MeV, pivot sqrt(s) MeV)`` multiplies the background; ``bes`` the
    relative beam spread (default the model's); ``pot_rel`` / ``bkg_rel`` the per-point
    relative uncertainties written to the table (default the model's 0.3 % each, facts 5).
    The recorded POT and background are the true ones (the table's errors describe them).
    """
    m = physics or load_physics()
    e = np.asarray(e_beam_mev, dtype=float)
    n_pot = np.broadcast_to(np.asarray(pot, dtype=float), e.shape)
    spread = m.signal.default_bes if bes is None else bes
    eff = signal_efficiency(e, m)
    bkg = background_per_pot(e, m)
    rs = sqrt_s_from_energy_mev(e)
    p0, p1, pivot = bias
    mean = n_pot * bkg * (p0 + p1 * (rs - pivot))
    if g > 0:
        e_res = resonance_energy_array_mev(mass_mev)
        mean = mean + g * g * n_pot * eff * m.signal.yield_mev * line_shape_per_mev(
            e, e_res, spread, m
        )
    n = rng.poisson(mean)
    pr = m.systematics.pot_rel if pot_rel is None else pot_rel
    br = m.systematics.background_rel if bkg_rel is None else bkg_rel
    per = list(range(e.size)) if periods is None else list(periods)
    rows = [
        ObservedRow(
            period=int(per[i]),
            scan_part=int(scan_part[i]),
            sqrt_s_mev=float(rs[i]),
            pot=float(n_pot[i]),
            pot_err=float(pr * n_pot[i]),
            n_obs=float(n[i]),
            n_obs_err=float(np.sqrt(max(n[i], 1))),
            sig_eff=float(eff[i]),
            sig_eff_err=float(0.01 * eff[i]),
            bkg_per_pot=float(bkg[i]),
            bkg_per_pot_err=float(br * bkg[i]),
            energy_mev=float(e[i]),
        )
        for i in range(e.size)
    ]
    return ObservedScan(tuple(sorted(rows, key=lambda r: r.period)), source)


def run3_like_points() -> tuple[np.ndarray, list[int]]:
    """Beam energies [MeV] and scan parts of a 2022-like scan (facts 4, 5): a descending pass
    of 1.5 MeV steps from 296 MeV (part 0) and a second one interleaved half-way (part 1)."""
    e1 = np.arange(296.0, 262.0, -1.5)
    e2 = e1 - 0.75
    return np.concatenate([e1, e2]), [0] * e1.size + [1] * e2.size
