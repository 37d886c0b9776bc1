"""Energy loss of the positrons in the thin layers (Mylar window, diamond target): mean and
fluctuating, bremsstrahlung and ionisation.

Model (per layer of thickness ``t = x/X0`` radiation lengths, ultra-relativistic e+):

* **bremsstrahlung**: photons with energy fraction ``y`` of the particle's energy, number
  density ``dN/dy = t (4/3 (1 - y) + y^2) / y`` (complete-screening spectrum, PDG Review
  "Passage of particles through matter", eq. 34.29, thin-target limit). Photons with
  ``y >= Y_MIN`` are sampled (Poisson count, ``y`` from ``1/y`` by inversion, then accepted
  with ``(4/3 (1 - y) + y^2) / (4/3)``); the softer ones carry their mean,
  ``t (4/3 Y_MIN - 2/3 Y_MIN^2 + Y_MIN^3 / 3)``. The mean fractional loss is ``t``:
  ``E x / X0`` (0.12 MeV at 282 MeV in 125 um of Mylar).
* **ionisation**: mean ``dE/dx rho x`` (``dedx_mev_cm2_g``, ASSUMED restricted-free PDG
  values for fast e+ in the layer's material), fluctuating as a Moyal distribution (Landau
  approximation) of width ``xi = 0.1535 MeV cm^2/g (Z/A) rho x``.

Both the sampled fraction ``f`` (bremsstrahlung) and the loss ``dE`` [MeV] (ionisation) do
not depend on the beam energy at these energies, so each particle gets them once from its
own random stream (common random numbers across energies, like :mod:`beamline.source`):
the momentum after the layer is ``p (1 - f) - dE``. ``mode`` "full" (default), "mean" (no
fluctuations) or "off".
"""

from __future__ import annotations

import math

import numpy as np

from .errors import BeamlineInputError
from .scattering import ScatteringLayer

MODES = ("full", "mean", "off")
#: Smallest sampled photon energy fraction (softer photons contribute their mean).
Y_MIN = 1e-4
#: Landau/Moyal width constant K/2 [MeV cm^2/g] (PDG: K = 0.307075 MeV cm^2/mol).
XI_CONSTANT_MEV_CM2_G = 0.1535
#: Mean of the standard Moyal distribution: Euler's gamma + ln 2.
MOYAL_MEAN = 0.5772156649015329 + math.log(2.0)
#: Random stream offset of the energy-loss samples (apart from beamline.source's deviates).
STREAM = 7919


def _spectrum_integral(y_min: float) -> float:
    """Integral of (4/3 (1 - y) + y^2) / y from y_min to 1."""
    return 4.0 / 3.0 * (-math.log(y_min)) - 4.0 / 3.0 * (1.0 - y_min) + 0.5 * (1.0 - y_min**2)


def _soft_mean(y_min: float) -> float:
    """Mean energy fraction carried by photons below y_min (per radiation length)."""
    return 4.0 / 3.0 * y_min - 2.0 / 3.0 * y_min**2 + y_min**3 / 3.0


def layer_rng(seed: int, layer_index: int, block: int) -> np.random.Generator:
    """Generator of the energy-loss samples of block ``block`` (``BLOCK`` particles, as in
    :mod:`beamline.source`) of one layer: a particle's samples do not depend on chunking."""
    return np.random.Generator(
        np.random.PCG64(
            np.random.SeedSequence(entropy=int(seed), spawn_key=(STREAM, layer_index, block))
        )
    )


def sample_losses(
    layer: ScatteringLayer, n: int, rng: np.random.Generator, mode: str = "full"
) -> tuple[np.ndarray, np.ndarray]:
    """Per particle: bremsstrahlung energy fraction and ionisation loss [MeV] in ``layer``."""
    if mode not in MODES:
        raise BeamlineInputError(f"energy-loss mode must be one of {MODES}, got {mode!r}")
    if mode == "off" or layer.dedx_mev_cm2_g is None:
        return np.zeros(n), np.zeros(n)
    t = layer.x_over_x0
    rho_x = layer.density_g_cm3 * layer.thickness_m * 100.0  # g/cm^2
    mean_ion = layer.dedx_mev_cm2_g * rho_x
    if mode == "mean":
        return np.full(n, t), np.full(n, mean_ion)
    frac = np.full(n, t * _soft_mean(Y_MIN))
    counts = rng.poisson(t * _spectrum_integral(Y_MIN), n)
    for k in np.flatnonzero(counts):
        for _ in range(int(counts[k])):
            while True:
                y = Y_MIN ** (1.0 - rng.random())
                if rng.random() * 4.0 / 3.0 <= 4.0 / 3.0 * (1.0 - y) + y * y:
                    break
            frac[k] += y
    np.clip(frac, 0.0, 1.0, out=frac)
    xi = XI_CONSTANT_MEV_CM2_G * layer.z_over_a * rho_x
    z = rng.standard_normal(n)
    moyal = -np.log(np.maximum(z * z, 1e-300))
    ion = mean_ion + xi * (moyal - MOYAL_MEAN)
    return frac, ion


def losses_for(
    layers: tuple[ScatteringLayer, ...], seed: int, start: int, stop: int, mode: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Samples of every layer for particles ``start <= i < stop`` (by layer name)."""
    from .source import BLOCK

    out = {}
    for j, la in enumerate(layers):
        frac, ion = np.empty(stop - start), np.empty(stop - start)
        for b in range(start // BLOCK, (stop - 1) // BLOCK + 1 if stop > start else 0):
            f, e = sample_losses(la, BLOCK, layer_rng(seed, j, b), mode)
            lo, hi = max(start, b * BLOCK), min(stop, (b + 1) * BLOCK)
            frac[lo - start : hi - start] = f[lo - b * BLOCK : hi - b * BLOCK]
            ion[lo - start : hi - start] = e[lo - b * BLOCK : hi - b * BLOCK]
        out[la.name] = (frac, ion)
    return out


def delta_after(
    delta: np.ndarray, frac: np.ndarray, ion_mev: np.ndarray, p0c_mev: float
) -> np.ndarray:
    """Relative momentum deviation after a layer: ``p' = p (1 - f) - dE``."""
    return (1.0 + delta) * (1.0 - frac) - ion_mev / p0c_mev - 1.0
