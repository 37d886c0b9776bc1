"""Fixed-target e+ e- kinematics: beam energy <-> centre-of-mass energy, resonance energy.

Pure functions, no data files. Energies are TOTAL energies [MeV] (rest energy included);
the target electron is at rest (facts file section 5):

* ``sqrt_s = sqrt(2 m_e^2 + 2 m_e E_beam)``
* resonance of mass ``M``: ``E_res = (M^2 - 2 m_e^2) / (2 m_e)``  (M = 17.0 MeV -> 282.27 MeV)
"""

from __future__ import annotations

import math

from .constants import ELECTRON_MASS_MEV
from .errors import BeamlineInputError


def _check_finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise BeamlineInputError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def sqrt_s_mev(e_beam_mev: float) -> float:
    """Centre-of-mass energy sqrt(s) [MeV] of a positron of total energy ``e_beam_mev`` [MeV]
    on an electron at rest."""
    e = _check_finite(e_beam_mev, "beam energy in MeV")
    if e < ELECTRON_MASS_MEV:
        raise BeamlineInputError(
            f"beam energy {e:g} MeV is below the positron rest energy {ELECTRON_MASS_MEV:.6f} MeV"
        )
    m = ELECTRON_MASS_MEV
    return math.sqrt(2.0 * m * m + 2.0 * m * e)


def e_beam_for_sqrt_s_mev(sqrt_s_mev: float) -> float:
    """Total beam energy [MeV] giving the centre-of-mass energy ``sqrt_s_mev`` [MeV]
    (exact inverse of :func:`sqrt_s_mev`)."""
    w = _check_finite(sqrt_s_mev, "sqrt(s) in MeV")
    m = ELECTRON_MASS_MEV
    if w < 2.0 * m:
        raise BeamlineInputError(f"sqrt(s) {w:g} MeV is below the e+e- threshold {2.0 * m:.6f} MeV")
    return (w * w - 2.0 * m * m) / (2.0 * m)


def resonance_energy_mev(mass_mev: float) -> float:
    """Total positron beam energy [MeV] at which sqrt(s) equals ``mass_mev`` [MeV]:
    ``E_res = (M^2 - 2 m_e^2) / (2 m_e)``."""
    return e_beam_for_sqrt_s_mev(_check_finite(mass_mev, "resonance mass in MeV"))


def dsqrt_s_de_beam(e_beam_mev: float) -> float:
    """Derivative d sqrt(s) / d E_beam (dimensionless) at ``e_beam_mev`` [MeV]:
    ``m_e / sqrt(s)`` (about 0.030 near 282 MeV: 1 MeV of beam energy ~ 30 keV of sqrt(s))."""
    return ELECTRON_MASS_MEV / sqrt_s_mev(e_beam_mev)
