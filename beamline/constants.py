"""Physical constants: the only module that owns them.

Literal CODATA 2022 values (NIST, https://physics.nist.gov/cuu/Constants/, the set
``scipy.constants`` carries since SciPy 1.15), written out rather than imported because
``import scipy.constants`` costs about 0.2-0.5 s of every command's start-up.
``tests/test_constants.py`` checks each against ``scipy.constants``.
"""

from __future__ import annotations

import math

#: speed of light in vacuum [m/s] (exact by definition of the metre)
C_LIGHT_M_PER_S: float = 299792458.0
#: electron (positron) rest energy [MeV] (CODATA 2022: 0.510 998 950 69(16) MeV)
ELECTRON_MASS_MEV: float = 0.51099895069
#: electron (positron) rest energy [eV] (xtrack's unit for mass0)
ELECTRON_MASS_EV: float = ELECTRON_MASS_MEV * 1e6
#: reduced Planck constant times c [MeV fm] (exact since the 2019 SI: 197.326 980 4... MeV fm)
HBAR_C_MEV_FM: float = 197.3269804593025
#: classical electron radius [m] (CODATA 2022: 2.817 940 3205(13) e-15 m)
ELECTRON_RADIUS_M: float = 2.8179403205e-15
#: fine-structure constant (CODATA 2022: 7.297 352 5643(11) e-3)
ALPHA_EM: float = 0.0072973525643
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
