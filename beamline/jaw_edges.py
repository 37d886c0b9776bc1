"""Particles that touch a slit jaw: a simple physical model of the jaw-edge tail.

The engine treats jaws as black absorbers. Here a particle that a setting stops at one slit
only by entering a jaw (its straight path through the slit reaches a depth ``d`` [m] beyond
the jaw edge, the other slits passed) is followed into the tungsten:

* it random-walks laterally by multiple scattering; over a path ``l`` its rms lateral
  displacement is ``l theta0(l) / sqrt(3)`` (PDG Review, "Passage of particles through
  matter", plane projection), ``theta0`` the Highland angle for ``l / X0``;
* it escapes back into the gap after the path ``l_esc`` at which that displacement equals
  ``d``, with probability 1/2 (it is as likely to go deeper); if ``l_esc`` exceeds the slit
  length it is absorbed;
* on the way it loses energy: bremsstrahlung photons sampled for ``t = l_esc / X0``
  (:mod:`beamline.energy_loss`) and the mean ionisation ``dE/dx rho l_esc``.

The escaped particle is counted as transmitted with its degraded energy if that energy is
inside the momentum acceptance of the line downstream (:func:`downstream_acceptance`: the
smallest aperture half-width over |D_x| after the slit); its path is otherwise taken
unchanged (the escape angle is not propagated: ASSUMED, the apertures downstream are
wider than the slit). Material: tungsten, ``X0 = 3.50 mm``, ``rho = 19.3 g/cm^3``, ``dE/dx = 1.145
MeV cm^2/g`` (PDG). The model is switched on by calling :func:`jaw_edge_tail`; the spread
engine itself keeps black-absorber jaws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .apertures import Jaws, passes
from .energy_loss import Y_MIN, _soft_mean, _spectrum_integral
from .model import BeamLine

#: Tungsten (PDG): radiation length [m], density [g/cm^3], mean ionisation loss [MeV cm^2/g].
TUNGSTEN_X0_M = 3.50e-3
TUNGSTEN_DENSITY_G_CM3 = 19.3
TUNGSTEN_DEDX_MEV_CM2_G = 1.145
#: Slit length [m] (facts 1: SLTB2 35 mm; ASSUMED the same for SLTB3-5).
SLIT_LENGTH_M = 0.035


@dataclass(frozen=True)
class JawTail:
    """Particles escaping a jaw: indices into the records, their momentum deviation after
    the jaw, the escape path [m]; ``n_touching`` particles that entered a jaw."""

    index: np.ndarray
    delta: np.ndarray
    path_m: np.ndarray
    n_touching: int


def escape_length_m(depth_m: np.ndarray, momentum_mev: float) -> np.ndarray:
    """Path [m] after which the multiple-scattering displacement ``l theta0(l)/sqrt(3)``
    reaches ``depth_m`` (bisection in log l between 1e-9 m and 1 m)."""
    d = np.asarray(depth_m, dtype=float)
    lo, hi = np.full(d.shape, -9.0), np.full(d.shape, 0.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        ell = 10.0**mid
        disp = ell * _theta0(momentum_mev, ell / TUNGSTEN_X0_M) / math.sqrt(3.0)
        below = disp < d
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 10.0 ** (0.5 * (lo + hi))


def _theta0(momentum_mev: float, t: np.ndarray) -> np.ndarray:
    """Highland angle [rad] (beta = 1) for thickness ``t`` [X0]; the log term is clipped at
    zero below ~1e-11 X0, where the formula no longer applies."""
    t = np.maximum(t, 1e-12)
    return 13.6 / momentum_mev * np.sqrt(t) * np.maximum(1.0 + 0.088 * np.log10(t), 0.0)


def brems_fraction(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sampled bremsstrahlung energy fraction per particle for thicknesses ``t`` [X0]."""
    frac = t * _soft_mean(Y_MIN)
    counts = rng.poisson(t * _spectrum_integral(Y_MIN))
    for k in np.flatnonzero(counts):
        for _ in range(int(counts[k])):
            while True:
                y = Y_MIN ** (1.0 - rng.random())
                if rng.random() * 4.0 / 3.0 <= 4.0 / 3.0 * (1.0 - y) + y * y:
                    break
            frac[k] += y
    return np.clip(frac, 0.0, 1.0)


def downstream_acceptance(bl: BeamLine, after: str = "sltb4_exit") -> float:
    """Relative momentum acceptance downstream of ``after``: min over the line's apertures
    of half-width / |D_x| (slits at their present gaps)."""
    from .optics import twiss
    from .plots import apertures

    tw = twiss(bl).set_index("name")
    s_after = float(tw.loc[after, "s_m"])
    best = math.inf
    for ap in apertures(bl):
        # the slit's own exit aperture sits at the same s (up to round-off)
        if ap.s_m <= s_after + 1e-9 or ap.name not in tw.index:
            continue
        half_x_m = 1e-3 * min(abs(ap.x_lo_mm), abs(ap.x_hi_mm))
        d = abs(float(tw.loc[ap.name, "dx_m"]))
        if d > 1e-6 and math.isfinite(half_x_m):  # nan: the open plane of a vertical slit
            best = min(best, half_x_m / d)
    return best


def jaw_edge_tail(
    records: Mapping[str, np.ndarray],
    setting: Mapping[str, Jaws],
    p0c_mev: float,
    *,
    acceptance: float = math.inf,
    slit: str = "SLTB4",
    seed: int = 0,
) -> JawTail:
    """Particles of :func:`beamline.spread.track_particles` records that ``setting`` stops
    only in ``slit``'s jaws and that escape them (module doc)."""
    rng = np.random.default_rng(seed)
    alive = records["alive"].copy()
    for s, j in setting.items():
        if s != slit:
            with np.errstate(invalid="ignore"):
                alive &= passes(records[f"{s.lower()}_entry_m"], records[f"{s.lower()}_exit_m"], j)
    u_in, u_out = records[f"{slit.lower()}_entry_m"], records[f"{slit.lower()}_exit_m"]
    lo, hi = setting[slit].bounds_m()
    with np.errstate(invalid="ignore"):
        stopped = alive & ~passes(u_in, u_out, setting[slit])
    depth = np.maximum(np.maximum(u_in, u_out) - hi, lo - np.minimum(u_in, u_out))
    idx = np.flatnonzero(stopped)
    p = p0c_mev * (1.0 + records["delta"][idx])
    ell = escape_length_m(depth[idx], float(np.mean(p)) if idx.size else p0c_mev)
    ok = (ell < SLIT_LENGTH_M) & (rng.random(idx.size) < 0.5)
    idx, ell, p = idx[ok], ell[ok], p[ok]
    frac = brems_fraction(ell / TUNGSTEN_X0_M, rng)
    ion = TUNGSTEN_DEDX_MEV_CM2_G * TUNGSTEN_DENSITY_G_CM3 * ell * 100.0
    p_after = p * (1.0 - frac) - ion
    keep = (p_after > 0) & (np.abs(p_after / p - 1.0) <= acceptance)
    return JawTail(
        index=idx[keep],
        delta=p_after[keep] / p0c_mev - 1.0,
        path_m=ell[keep],
        n_touching=int(stopped.sum()),
    )


__all__ = ["JawTail", "downstream_acceptance", "escape_length_m", "jaw_edge_tail"]


def jaw_edge_effect(
    energy_mev: float,
    setting: Mapping[str, Jaws] | None = None,
    *,
    settings: str | None = None,
    n_particles: int = 200_000,
    seed: int = 0,
    slit: str = "SLTB4",
) -> dict[str, float]:
    """Spread and line shape at one setting (default: the settings' slits) with black
    jaws and with the jaw-edge tail of ``slit`` (LINAC source, energy loss off, the
    per-energy tracking path): transmitted counts, rms relative momentum spread, fraction
    below the black-jaw mean - 3 rms, escaped particles and the downstream acceptance."""
    from .source import draw_deviates, initial_coordinates, load_source
    from .spread import configure_point, line_for, settings_jaws, track_particles, transmitted
    from .spread_engine import ScanPoint

    bl = line_for(settings)
    jaws = dict(setting or settings_jaws(settings))
    src = load_source(settings=settings).with_energy_loss("off")
    dev = draw_deviates(seed, 0, int(n_particles), len(src.layers))
    configure_point(bl, ScanPoint(energy_mev))
    rec = track_particles(bl, initial_coordinates(src.beam, dev), source=src, kick_deviates=dev[5:])
    try:
        for s, j in jaws.items():
            bl.set_jaws(s, j.negative_mm, j.positive_mm)
        acc = downstream_acceptance(bl, after=f"{slit.lower()}_exit")
    finally:
        configure_point(bl, ScanPoint(energy_mev))
    p0 = float(bl.line.particle_ref.p0c[0]) * 1e-6
    ok = transmitted(rec, jaws)
    tail = jaw_edge_tail(rec, jaws, p0, acceptance=acc, slit=slit, seed=seed)
    d0 = rec["delta"][ok]
    d1 = np.concatenate([d0, tail.delta])
    cut = float(d0.mean() - 3 * d0.std()) if d0.size else math.nan
    return {
        "n_black": float(d0.size),
        "n_with_edges": float(d1.size),
        "rms_black": float(d0.std()) if d0.size else math.nan,
        "rms_with_edges": float(d1.std()) if d1.size else math.nan,
        "low_tail_black": float(np.mean(d0 < cut)) if d0.size else math.nan,
        "low_tail_with_edges": float(np.mean(d1 < cut)) if d1.size else math.nan,
        "touching": float(tail.n_touching),
        "escaped_in_acceptance": float(tail.index.size),
        "downstream_acceptance": acc,
    }
