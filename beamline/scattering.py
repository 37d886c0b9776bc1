"""Multiple Coulomb scattering in thin material: Highland (PDG) Gaussian angle kicks.

xtrack has no material model: thin layers (the Mylar vacuum window, the PADME diamond) are
applied by :mod:`beamline.spread` as independent Gaussian angle kicks in x and y at the
layer's element, between tracking segments. Width (PDG Review, "Passage of particles
through matter", eq. 34.15)::

    theta0 = 13.6 MeV / (beta c p) * |z| * sqrt(x/X0) * (1 + 0.088 log10(x z^2 / (X0 beta^2)))

Energy loss in the same layers: :mod:`beamline.energy_loss` (125 um of Mylar: ~0.03 MeV
ionisation, 4.4e-4 X0, i.e. 0.12 MeV mean bremsstrahlung loss at 282 MeV).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from .constants import ELECTRON_MASS_MEV
from .datafiles import DataModel
from .errors import BeamlineInputError

#: Highland constant [MeV] and logarithmic correction coefficient (PDG)
HIGHLAND_SCALE_MEV = 13.6
HIGHLAND_LOG_COEFF = 0.088


class ScatteringLayer(DataModel):
    """A thin layer of material at an element of the line (``[[scattering.layers]]`` of a
    beam file).

    ``thickness_m`` and ``radiation_length_m`` [m] (both > 0) set ``x/X0``; ``element`` is
    the lattice element (marker) the kick is applied at.
    """

    name: str
    element: str
    material: str
    thickness_m: float = Field(gt=0)
    radiation_length_m: float = Field(gt=0)
    #: energy loss (beamline.energy_loss): density [g/cm^3], Z/A, mean ionisation loss
    #: [MeV cm^2/g]; without dedx_mev_cm2_g the layer loses no energy
    density_g_cm3: float = Field(default=1.0, gt=0)
    z_over_a: float = Field(default=0.5, gt=0)
    dedx_mev_cm2_g: float | None = Field(default=None, gt=0)

    @property
    def x_over_x0(self) -> float:
        """Thickness in radiation lengths."""
        return self.thickness_m / self.radiation_length_m

    def theta0_rad(
        self, momentum_mev: ArrayLike, mass_mev: float = ELECTRON_MASS_MEV
    ) -> NDArray[np.float64] | float:
        """Highland rms projected angle [rad] for particles of ``momentum_mev`` [MeV/c]."""
        return highland_theta0_rad(momentum_mev, self.x_over_x0, mass_mev=mass_mev)


def highland_theta0_rad(
    momentum_mev: ArrayLike,
    x_over_x0: float,
    *,
    mass_mev: float = ELECTRON_MASS_MEV,
    charge: int = 1,
) -> NDArray[np.float64] | float:
    """Highland/PDG rms projected scattering angle [rad].

    ``momentum_mev`` [MeV/c] (scalar or array), ``x_over_x0`` thickness in radiation
    lengths, ``mass_mev`` [MeV] the particle mass, ``charge`` in units of e.
    """
    p = np.asarray(momentum_mev, dtype=float)
    if np.any(p <= 0) or not x_over_x0 > 0:
        raise BeamlineInputError("Highland formula needs momentum > 0 and thickness > 0")
    energy = np.hypot(p, mass_mev)
    beta = p / energy
    z2 = float(charge) ** 2
    log_term = 1.0 + HIGHLAND_LOG_COEFF * np.log10(x_over_x0 * z2 / beta**2)
    theta = HIGHLAND_SCALE_MEV / (beta * p) * abs(charge) * np.sqrt(x_over_x0) * log_term
    return theta if theta.ndim else float(theta)
