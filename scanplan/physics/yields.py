"""Signal yield, selection efficiency and background per POT (facts 5 model).

Expected selected signal at one scan point:

    N_S = g^2 * N_POT * eff(E_beam) * Y * V(E_beam - E_res; sigma = BES * E_res, w_L)

* ``signal_yield_per_pot_g2`` = Y * V [per POT per g^2]: produced signal, before selection;
* ``selected_signal_per_pot_g2`` = eff * Y * V: what the selection keeps;
* ``background_per_pot``: selected background per POT (Bhabha + gamma gamma).

Efficiency and background are piecewise-linear in beam energy through the nodes of the
physics data file, extrapolated linearly outside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from beamline.constants import ELECTRON_MASS_MEV, HBAR_C_MEV_FM, PI
from beamline.kinematics import resonance_energy_mev, sqrt_s_mev

from ..errors import ScanplanError
from .lineshape import line_fwhm_mev, line_shape_per_mev, line_sigma_mev
from .params import PhysicsModel, load_physics

FM2_PER_CM2 = 1e26
CM_PER_UM = 1e-4


def _interp_extrap(x: ArrayLike, xp: tuple[float, ...], fp: tuple[float, ...]) -> NDArray:
    """Piecewise-linear interpolation, extended linearly by the end segments."""
    xa = np.asarray(x, dtype=float)
    xs, fs = np.asarray(xp), np.asarray(fp)
    y = np.interp(xa, xs, fs)
    lo_slope = (fs[1] - fs[0]) / (xs[1] - xs[0])
    hi_slope = (fs[-1] - fs[-2]) / (xs[-1] - xs[-2])
    y = np.where(xa < xs[0], fs[0] + lo_slope * (xa - xs[0]), y)
    return np.where(xa > xs[-1], fs[-1] + hi_slope * (xa - xs[-1]), y)


def in_table_range(e_beam_mev: float, model: PhysicsModel) -> bool:
    """True if ``e_beam_mev`` [MeV] lies within the efficiency/background nodes."""
    return model.selection.e_beam_nodes_mev[0] <= e_beam_mev <= model.selection.e_beam_nodes_mev[-1]


def signal_efficiency(e_beam_mev: ArrayLike, model: PhysicsModel | None = None) -> NDArray:
    """Selection efficiency of the signal at beam energy ``e_beam_mev`` [MeV] (clipped to [0, 1])."""
    m = model or load_physics()
    return np.clip(
        _interp_extrap(e_beam_mev, m.selection.e_beam_nodes_mev, m.selection.signal_efficiency),
        0.0,
        1.0,
    )


def background_per_pot(e_beam_mev: ArrayLike, model: PhysicsModel | None = None) -> NDArray:
    """Selected background events per POT at beam energy ``e_beam_mev`` [MeV] (>= 0)."""
    m = model or load_physics()
    return np.clip(
        _interp_extrap(e_beam_mev, m.selection.e_beam_nodes_mev, m.selection.background_per_pot),
        0.0,
        None,
    )


def signal_yield_per_pot_g2(
    mass_mev: ArrayLike, e_beam_mev: ArrayLike, bes: float, model: PhysicsModel | None = None
) -> NDArray:
    """Produced signal per POT per g^2: ``Y * V(E_beam - E_res(M))`` (no selection efficiency).

    ``mass_mev`` X17 mass [MeV], ``e_beam_mev`` total beam energy [MeV], ``bes`` relative
    Gaussian beam-energy spread. Broadcasts over arrays.
    """
    m = model or load_physics()
    e_res = resonance_energy_array_mev(mass_mev)
    return m.signal.yield_mev * line_shape_per_mev(e_beam_mev, e_res, bes, m)


def selected_signal_per_pot_g2(
    mass_mev: ArrayLike, e_beam_mev: ArrayLike, bes: float, model: PhysicsModel | None = None
) -> NDArray:
    """Selected signal per POT per g^2: ``eff(E_beam) * Y * V``."""
    m = model or load_physics()
    return signal_efficiency(e_beam_mev, m) * signal_yield_per_pot_g2(mass_mev, e_beam_mev, bes, m)


def resonance_energy_array_mev(mass_mev: ArrayLike) -> NDArray:
    """Vectorised ``E_res = (M^2 - 2 m_e^2) / (2 m_e)`` [MeV] (same formula as
    :func:`beamline.kinematics.resonance_energy_mev`)."""
    m = np.asarray(mass_mev, dtype=float)
    if np.any(~np.isfinite(m)) or np.any(m < 2.0 * ELECTRON_MASS_MEV):
        raise ScanplanError("mass must be finite and above the e+e- threshold 1.022 MeV")
    return (m * m - 2.0 * ELECTRON_MASS_MEV**2) / (2.0 * ELECTRON_MASS_MEV)


def sqrt_s_array_mev(e_beam_mev: ArrayLike) -> NDArray:
    """Vectorised ``sqrt(s) = sqrt(2 m_e^2 + 2 m_e E_beam)`` [MeV]."""
    e = np.asarray(e_beam_mev, dtype=float)
    return np.sqrt(2.0 * ELECTRON_MASS_MEV**2 + 2.0 * ELECTRON_MASS_MEV * e)


def narrow_width_integral_mev(model: PhysicsModel | None = None) -> float:
    """Narrow-width check of Y [MeV]: ``pi (hbar c)^2 / (2 m_e) * n_e * L`` per g^2 (facts 5).

    ``integral sigma dE_beam`` per target electron is ``pi g^2 (hbar c)^2 / (2 m_e)``; times the
    electrons per area of the target it is the signal per POT integrated over beam energy.
    """
    m = model or load_physics()
    sigma_int_mev_fm2 = PI * HBAR_C_MEV_FM**2 / (2.0 * ELECTRON_MASS_MEV)  # MeV fm^2
    electrons_per_fm2 = (
        m.target.electron_density_per_cm3 * m.target.thickness_um * CM_PER_UM / FM2_PER_CM2
    )
    return sigma_int_mev_fm2 * electrons_per_fm2


@dataclass(frozen=True)
class YieldReport:
    """Yield at one (mass, beam energy): energies [MeV], widths [MeV], per-POT numbers."""

    mass_mev: float
    e_beam_mev: float
    sqrt_s_mev: float
    resonance_energy_mev: float
    bes: float
    line_sigma_mev: float
    lorentz_gamma_mev: float
    line_fwhm_mev: float
    signal_efficiency: float
    signal_yield_per_pot_g2: float
    selected_signal_per_pot_g2: float
    background_per_pot: float
    in_table_range: bool
    physics: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def yield_report(
    mass_mev: float, e_beam_mev: float, bes: float | None = None, model: PhysicsModel | None = None
) -> YieldReport:
    """Everything the planner needs about one (mass [MeV], beam energy [MeV]) pair."""
    m = model or load_physics()
    b = m.signal.default_bes if bes is None else float(bes)
    if not (math.isfinite(b) and 0 <= b < 0.1):
        raise ScanplanError(f"--bes must be a relative spread in [0, 0.1), got {bes!r}")
    if b == 0 and m.lorentz_gamma_mev == 0:
        raise ScanplanError("BES and the Lorentz width are both zero: the line shape is a delta")
    if not (math.isfinite(mass_mev) and math.isfinite(e_beam_mev)):
        raise ScanplanError("mass and beam energy must be finite numbers of MeV")
    e_res = resonance_energy_mev(mass_mev)
    return YieldReport(
        mass_mev=float(mass_mev),
        e_beam_mev=float(e_beam_mev),
        sqrt_s_mev=sqrt_s_mev(e_beam_mev),
        resonance_energy_mev=e_res,
        bes=b,
        line_sigma_mev=float(line_sigma_mev(e_res, b)),
        lorentz_gamma_mev=m.lorentz_gamma_mev,
        line_fwhm_mev=line_fwhm_mev(e_res, b, m),
        signal_efficiency=float(signal_efficiency(e_beam_mev, m)),
        signal_yield_per_pot_g2=float(signal_yield_per_pot_g2(mass_mev, e_beam_mev, b, m)),
        selected_signal_per_pot_g2=float(selected_signal_per_pot_g2(mass_mev, e_beam_mev, b, m)),
        background_per_pot=float(background_per_pot(e_beam_mev, m)),
        in_table_range=in_table_range(e_beam_mev, m),
        physics=m.label,
    )
