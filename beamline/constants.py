"""Physical constants (CODATA, via scipy.constants). The only module that owns them."""

from __future__ import annotations

import math

import scipy.constants as _sc

#: speed of light in vacuum [m/s]
C_LIGHT_M_PER_S: float = _sc.c
#: electron (positron) rest energy [MeV]
ELECTRON_MASS_MEV: float = _sc.physical_constants["electron mass energy equivalent in MeV"][0]
#: electron (positron) rest energy [eV] (xtrack's unit for mass0)
ELECTRON_MASS_EV: float = ELECTRON_MASS_MEV * 1e6
#: reduced Planck constant times c [MeV fm]
HBAR_C_MEV_FM: float = _sc.physical_constants["reduced Planck constant times c in MeV fm"][0]
#: classical electron radius [m]
ELECTRON_RADIUS_M: float = _sc.physical_constants["classical electron radius"][0]
#: fine-structure constant
ALPHA_EM: float = _sc.fine_structure
#: momentum [MeV/c] bent on a 1 T m rigidity: p = c * B * rho (unit charge)
MEV_PER_TESLA_METRE: float = C_LIGHT_M_PER_S * 1e-6
#: gauss per tesla
GAUSS_PER_TESLA: float = 1e4
PI: float = math.pi


def momentum_mev_from_energy(energy_mev: float, mass_mev: float = ELECTRON_MASS_MEV) -> float:
    """Momentum [MeV/c] of a particle with total energy ``energy_mev`` [MeV]."""
    return math.sqrt(energy_mev * energy_mev - mass_mev * mass_mev)


def energy_mev_from_momentum(momentum_mev: float, mass_mev: float = ELECTRON_MASS_MEV) -> float:
    """Total energy [MeV] of a particle with momentum ``momentum_mev`` [MeV/c]."""
    return math.hypot(momentum_mev, mass_mev)


def rigidity_tm_from_momentum(momentum_mev: float) -> float:
    """Magnetic rigidity B*rho [T m] of a unit-charge particle of momentum [MeV/c]."""
    return momentum_mev / MEV_PER_TESLA_METRE
