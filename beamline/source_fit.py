"""Beam-based source fit: the source size and divergence, its momentum spread and the absolute
beam-energy offset, from measured beam centroids and widths at the PADME target and the
TimePix (the step checks) against the magnet currents.

Model (linear optics from the source's injection point, PADME's definition: a Gaussian
waist of rms size ``s0`` and divergence ``d0`` in both planes, momentum spread ``sigma_delta``,
no dispersion at injection, :mod:`beamline.source`): for an observation at point P with the
line set to the observation's energy and currents, ``R`` the 6x6 map injection -> P,

* centroid ``x_P = x_orbit,P + R16 * delta0``, ``delta0 = dE / E`` (the beam's energy above
  the one the dipoles are set for: the absolute energy offset on DHSTB02's calibration,
  which has no readback, facts 3);
* widths ``sigma_x,P^2 = R11^2 s0^2 + R12^2 d0^2 + R16^2 sigma_delta^2 + K_x`` and
  ``sigma_y,P^2 = R33^2 s0^2 + R34^2 d0^2 + K_y``, where ``K`` adds the Highland kicks of
  the source's thin layers between injection and P (``(R12(layer -> P) theta0)^2``; the
  Mylar window at injection, the diamond target before the TimePix).

The fit is generalised least squares (``scipy.optimize.least_squares`` on residuals whitened
by the data's covariance, :mod:`beamline.source_fit_errors`: width / sqrt(hits) for a
centroid, width / sqrt(2 hits) for a width, a floor ``sigma_floor_mm``, and the target and
TimePix spots of one setting correlated since they are the same particles); parameter
covariance from the Gauss-Newton Jacobian, scaled by chi2/dof when that exceeds 1, plus the
tracked model's own Monte Carlo noise; the correlation matrix is reported. Coverage (pull
widths of an ensemble of fits) is tested in ``tests/test_source_fit_coverage.py``. Size and divergence separate only with two points of
different optics (target and TimePix): with TimePix data alone the fit fixes ``s0`` at its
starting value and says so. The slits truncate the beam, which this Gaussian model ignores:
:func:`fit_source` reports the fit, the tests measure the bias against tracking.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .apertures import SlitGrid
from .constants import momentum_mev_from_energy
from .errors import BeamlineInputError
from .model import BeamLine
from .scattering import ScatteringLayer
from .source import BeamSource
from .source_fit_errors import measurement_covariance, model_noise_parameter_cov, whitener

POINTS = {"target": "padme_target", "timepix": "timepix"}
PARAMETERS = ("size_mm", "divergence_mrad", "sigma_delta", "energy_offset_mev")
#: Measurement-sigma floor [mm] added in quadrature (alignment, pixel size).
DEFAULT_SIGMA_FLOOR_MM = 0.02


@dataclass(frozen=True)
class SpotObservation:
    """One measured beam spot: ``point`` "target" or "timepix"; ``energy_mev`` the energy the
    dipoles are set for [MeV]; currents [A] (read back); centroid and rms widths [mm] in the
    PADME frame with the reference offset removed; ``hits`` particles in the estimate."""

    point: str
    energy_mev: float
    dhstb01_current_a: float
    dhstb02_current_a: float
    x_mm: float
    y_mm: float
    sigma_x_mm: float
    sigma_y_mm: float
    hits: int


@dataclass(frozen=True)
class _Optics:
    r: np.ndarray  # 6x6 injection -> point
    x_orbit_mm: float
    energy_mev: float
    # per layer: R12/R34 (layer -> point) x theta0 [mm], the kick's rms at the point
    kicks_x: dict[str, float] = field(default_factory=dict)
    kicks_y: dict[str, float] = field(default_factory=dict)

    @property
    def kick_x_mm2(self) -> float:
        """Variance the layers' scattering adds in x [mm^2]."""
        return sum(k**2 for k in self.kicks_x.values())

    @property
    def kick_y_mm2(self) -> float:
        """Variance the layers' scattering adds in y [mm^2]."""
        return sum(k**2 for k in self.kicks_y.values())


@dataclass
class SourceFit:
    """Fitted parameters (``values``) with 1-sigma ``sigmas`` and ``correlation`` (rows in
    :data:`PARAMETERS` order), ``fixed`` parameter names, ``chi2``/``dof``, ``residuals``
    (pull per datum) and ``notes``."""

    values: dict[str, float]
    sigmas: dict[str, float]
    correlation: np.ndarray
    fixed: tuple[str, ...]
    chi2: float
    dof: int
    n_observations: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "values": self.values,
            "sigmas": self.sigmas,
            "fixed": list(self.fixed),
            "chi2": self.chi2,
            "dof": self.dof,
            "n_observations": self.n_observations,
            "correlation": self.correlation.tolist(),
            "notes": list(self.notes),
        }


def observation_optics(
    bl: BeamLine,
    obs: SpotObservation,
    injection: str,
    quads_a: dict[str, float] | None,
    layers: Sequence[ScatteringLayer] = (),
) -> _Optics:
    """R-matrix injection -> point, the orbit there and the variance the scattering layers
    add, for one observation's setting."""
    from .optics import r_between, twiss_table

    if obs.point not in POINTS:
        raise BeamlineInputError(f"observation point must be one of {sorted(POINTS)}")
    bl.set_energy(obs.energy_mev)
    # DHSTB01 matched: the source is defined after it (its current does not act on it)
    bl.set_current("DHSTB01", bl.matched_dipole_current_a("DHSTB01", obs.energy_mev))
    bl.set_current("DHSTB02", obs.dhstb02_current_a)
    for quad, current in (quads_a or {}).items():
        bl.set_current(quad, current)
    tw = twiss_table(bl)
    element = POINTS[obs.point]
    names = bl.line.element_names
    i_inj, i_p = names.index(injection), names.index(element)
    kx: dict[str, float] = {}
    ky: dict[str, float] = {}
    p_mev = momentum_mev_from_energy(obs.energy_mev)
    for layer in layers:
        i_l = names.index(layer.element)
        if i_inj <= i_l < i_p:  # a kick at P itself does not widen the beam at P
            m = r_between(tw, layer.element, element)
            theta_mrad = 1e3 * float(layer.theta0_rad(p_mev))
            kx[layer.element] = float(m[0, 1] * theta_mrad)
            ky[layer.element] = float(m[2, 3] * theta_mrad)
    return _Optics(
        r=r_between(tw, injection, element),
        x_orbit_mm=1e3 * float(tw.rows[element].x[0]),
        energy_mev=obs.energy_mev,
        kicks_x=kx,
        kicks_y=ky,
    )


def predict(params: np.ndarray, optics: Sequence[_Optics]) -> np.ndarray:
    """Model values (x, sigma_x, sigma_y per observation) [mm] for parameters in
    :data:`PARAMETERS` order."""
    s0, d0, sd, de = params
    out = np.empty(3 * len(optics))
    for i, o in enumerate(optics):
        r = o.r
        delta0 = de / o.energy_mev
        out[3 * i] = o.x_orbit_mm + 1e3 * r[0, 5] * delta0
        out[3 * i + 1] = math.sqrt(
            (r[0, 0] * s0) ** 2 + (r[0, 1] * d0) ** 2 + (1e3 * r[0, 5] * sd) ** 2 + o.kick_x_mm2
        )
        out[3 * i + 2] = math.sqrt((r[2, 2] * s0) ** 2 + (r[2, 3] * d0) ** 2 + o.kick_y_mm2)
    return out


def fit_source(
    observations: Sequence[SpotObservation],
    bl: BeamLine,
    *,
    injection: str = "mylar_window",
    start: Sequence[float] = (1.0, 1.0, 0.0025, 0.0),
    fix: Sequence[str] = (),
    sigma_floor_mm: float = DEFAULT_SIGMA_FLOOR_MM,
    quads_a: dict[str, float] | None = None,
    layers: Sequence[ScatteringLayer] = (),
) -> SourceFit:
    """Fit the source to ``observations`` (see module doc). ``start`` in :data:`PARAMETERS`
    order (mm, mrad, relative, MeV); ``fix`` names parameters held at their start value
    (``size_mm`` is fixed automatically without target data); ``layers`` the source's
    scattering layers (``BeamSource.active_layers``)."""
    from scipy.optimize import least_squares

    if len(observations) < 2:
        raise BeamlineInputError("a source fit needs at least two measured spots")
    bad = sorted(set(fix) - set(PARAMETERS))
    if bad:
        raise BeamlineInputError(f"unknown parameter(s) {bad}; parameters: {PARAMETERS}")
    notes = []
    fixed = list(fix)
    if "size_mm" not in fixed and len({o.point for o in observations}) < 2:
        fixed.append("size_mm")
        notes.append(
            "size and divergence separate only with target and TimePix data: size fixed at "
            f"{start[0]:g} mm"
        )
    bl.check_element(injection)
    optics = [observation_optics(bl, o, injection, quads_a, layers) for o in observations]
    data = _data(observations, sigma_floor_mm)
    free = [k for k, name in enumerate(PARAMETERS) if name not in fixed]
    p0 = np.array(start, dtype=float)
    full = _embedding(p0, free)
    scale = np.array([1.0, 1.0, 1e-3, 1.0])[free]
    q = p0[free]
    # the correlation of a setting's target and TimePix spots depends on the parameters:
    # taken at the start, then again at the first solution (on the coverage test's data the
    # second pass moves the energy-offset sigma by ~10 % from the start values)
    for _ in range(2):
        white = whitener(measurement_covariance(observations, optics, full(q), sigma_floor_mm))

        def resid(q: np.ndarray, white: np.ndarray = white) -> np.ndarray:
            return white @ (predict(full(q), optics) - data)

        res = least_squares(resid, q, x_scale=scale, method="trf")
        q = np.asarray(res.x)
    return _summary(res, full, free, fixed, data.size, len(observations), notes)


def beam_changes(fit: SourceFit) -> dict[str, float]:
    """Beam-file parameters (:class:`beamline.beam.BeamParameters`) of a waist source with
    the fitted size, divergence and spread (for ``BeamSource.with_beam``)."""
    s0, d0 = fit.values["size_mm"] * 1e-3, fit.values["divergence_mrad"] * 1e-3
    if not (s0 > 0 and d0 > 0):
        raise BeamlineInputError("fitted size and divergence must be > 0")
    return {
        "betx_m": s0 / d0,
        "bety_m": s0 / d0,
        "alfx": 0.0,
        "alfy": 0.0,
        "emit_x_m": s0 * d0,
        "emit_y_m": s0 * d0,
        "sigma_delta": fit.values["sigma_delta"],
    }


# ---- the tracked model -----------------------------------------------------------------
def _source_with(source: BeamSource, params: np.ndarray, energy_mev: float) -> BeamSource:
    s0, d0, sd, de = (float(v) for v in params)
    s0, d0 = abs(s0) * 1e-3, abs(d0) * 1e-3
    return source.with_beam(
        betx_m=s0 / d0, bety_m=s0 / d0, alfx=0.0, alfy=0.0,
        emit_x_m=s0 * d0, emit_y_m=s0 * d0, sigma_delta=abs(sd),
        delta_offset=de / energy_mev,
    )  # fmt: skip


def tracked_prediction(
    params: np.ndarray,
    observations: Sequence[SpotObservation],
    source: BeamSource,
    *,
    settings: str | None = None,
    grid: SlitGrid | None = None,
    n_particles: int = 20_000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Model values (x, sigma_x, sigma_y per observation) [mm] from the spread engine: the
    source with ``params`` tracked through the line with its slits and apertures (common
    random numbers: the same particles for every parameter set); and the transmitted
    particles per observation (the model's own statistics)."""
    from .spread import compute_spread
    from .spread_engine import ScanPoint

    out = np.empty(3 * len(observations))
    hits = np.zeros(len(observations))
    by_energy: dict[float, list[int]] = {}
    for i, o in enumerate(observations):
        by_energy.setdefault(o.energy_mev, []).append(i)
    for energy, idx in by_energy.items():
        pts = [
            ScanPoint(energy, dhstb01_current_a=observations[i].dhstb01_current_a,
                      dhstb02_current_a=observations[i].dhstb02_current_a)
            for i in idx
        ]  # fmt: skip
        table = compute_spread(
            points=pts, grid=grid, settings=settings,
            source=_source_with(source, params, energy), n_particles=n_particles,
            seed=seed, scheduler="sync",
        ).table  # fmt: skip
        for row, i in zip(table.itertuples(), idx, strict=True):
            p = observations[i].point
            out[3 * i] = getattr(row, f"x_{p}_mm")
            out[3 * i + 1] = getattr(row, f"sigma_x_{p}_mm")
            out[3 * i + 2] = getattr(row, f"sigma_y_{p}_mm")
            hits[i] = row.n_transmitted
    return out, hits


def fit_source_tracked(
    observations: Sequence[SpotObservation],
    source: BeamSource,
    *,
    start: Sequence[float] | None = None,
    settings: str | None = None,
    grid: SlitGrid | None = None,
    n_particles: int = 20_000,
    seed: int = 0,
    sigma_floor_mm: float = DEFAULT_SIGMA_FLOOR_MM,
    max_evaluations: int = 60,
    noise_seeds: int = 7,
) -> SourceFit:
    """Fit with the tracked model (:func:`tracked_prediction`): the slits and apertures
    truncate the beam as on the machine. ``start`` (default: the source's own parameters).
    Finite-difference steps of 3 % (the model is smooth only above its particle noise).
    Errors: :mod:`beamline.source_fit_errors` (the data's covariance with a setting's
    target and TimePix spots correlated; the model's own noise from ``noise_seeds`` extra
    model evaluations at the solution, added to the parameter covariance). Known limit: the
    size-divergence valley is shallow and the noisy model rugged, so the local curvature
    understates the size's (and divergence's) uncertainty; the energy offset and spread
    cover (tests/test_source_fit.py, the tracked test's docstring)."""
    from scipy.optimize import least_squares

    if len(observations) < 2:
        raise BeamlineInputError("a source fit needs at least two measured spots")
    b = source.beam
    if start is None:
        start = (
            1e3 * math.sqrt(b.emit_x_m * b.betx_m),
            1e3 * math.sqrt(b.emit_x_m / b.betx_m),
            b.sigma_delta,
            0.0,
        )
    data = _data(observations, sigma_floor_mm)
    notes = []
    fixed: list[str] = []
    free = list(range(len(PARAMETERS)))
    if len({o.point for o in observations}) < 2:
        fixed.append("size_mm")
        free.remove(0)
        notes.append("size fixed: it separates from the divergence only with two points")
    p0 = np.array(start, dtype=float)
    full = _embedding(p0, free)
    from .spread import line_for

    # the linear optics give the correlation of a setting's target and TimePix spots
    bl = line_for(settings)
    injection = source.beam.injection_element or "mylar_window"
    optics = [
        observation_optics(bl, o, injection, None, source.active_layers) for o in observations
    ]
    white = whitener(measurement_covariance(observations, optics, p0, sigma_floor_mm))

    def model(p: np.ndarray, model_seed: int) -> np.ndarray:
        return tracked_prediction(
            p, observations, source, settings=settings, grid=grid,
            n_particles=n_particles, seed=model_seed,
        )[0]  # fmt: skip

    def resid(q: np.ndarray) -> np.ndarray:
        return white @ (model(full(q), seed) - data)

    res = least_squares(
        resid, p0[free], x_scale=np.array([1.0, 1.0, 1e-3, 1.0])[free], diff_step=0.03,
        max_nfev=max_evaluations, method="trf",
    )  # fmt: skip
    # the model's noise is one realisation shared by every point (common random numbers):
    # its effect on the parameters measured by re-seeding the model at the solution
    samples = np.array(
        [model(full(res.x), seed + 1 + k) for k in range(noise_seeds)] + [model(full(res.x), seed)]
    )
    model_cov = model_noise_parameter_cov(np.asarray(res.jac), white, samples)
    notes.append(
        f"tracked model, {n_particles} particles per point, {res.nfev} evaluations; its Monte "
        f"Carlo noise from {noise_seeds + 1} seeds added to the parameter covariance"
    )
    return _summary(
        res, full, free, fixed, data.size, len(observations), notes, model_cov=model_cov,
        model_samples=samples, white=white,
    )  # fmt: skip


def _embedding(p0: np.ndarray, free: list[int]) -> Callable[[np.ndarray], np.ndarray]:
    """Full parameter vector from the free ones (the fixed ones at ``p0``)."""

    def full(q: np.ndarray) -> np.ndarray:
        p = p0.copy()
        p[free] = q
        return p

    return full


def _data(observations: Sequence[SpotObservation], floor_mm: float) -> np.ndarray:
    """Data vector (x, sigma_x, sigma_y per observation) [mm], checked finite with positive
    widths (their errors: :func:`beamline.source_fit_errors.measurement_covariance`)."""
    data = np.array([v for o in observations for v in (o.x_mm, o.sigma_x_mm, o.sigma_y_mm)])
    widths = data.reshape(-1, 3)[:, 1:]
    if not (np.all(np.isfinite(data)) and np.all(widths > 0) and floor_mm >= 0):
        raise BeamlineInputError("measured spots must be finite with positive widths")
    return data


def _summary(
    res: Any,
    full: Callable[[np.ndarray], np.ndarray],
    free: list[int],
    fixed: list[str],
    n_data: int,
    n_obs: int,
    notes: list[str],
    *,
    model_cov: np.ndarray | None = None,
    model_samples: np.ndarray | None = None,
    white: np.ndarray | None = None,
) -> SourceFit:
    """Parameter covariance: the Gauss-Newton ``(J^T J)^-1`` of the whitened residuals,
    scaled by chi2/dof when that exceeds 1 (a model short of the data), plus the model's
    noise ``model_cov``; chi2 counts the model's noise (``model_samples``, whitened by
    ``white``) in the residuals' covariance."""
    fun = np.asarray(res.fun)
    jac = np.asarray(res.jac)
    x = np.asarray(res.x)
    dof = n_data - len(free)
    chi2 = float(np.sum(fun**2))
    if model_samples is not None and white is not None:
        wm = (model_samples - model_samples.mean(axis=0)) @ white.T
        total = np.eye(fun.size) + np.cov(wm, rowvar=False, ddof=1)
        chi2 = float(fun @ np.linalg.solve(total, fun))
    # from the SVD of J, not pinv(J^T J): that squares the condition number and pinv then
    # drops an unconstrained direction, quoting a zero sigma for a parameter the data do not
    # fix (a size at its boundary 0, where the widths depend on it only as size^2)
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    sv = np.maximum(sv, 1e-300 + 1e-12 * (sv.max() if sv.size else 0.0))
    cov = (vt.T / sv**2) @ vt
    if dof > 0 and chi2 / dof > 1.0:
        cov *= chi2 / dof
    if model_cov is not None:
        cov = cov + model_cov
    err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    values = dict(zip(PARAMETERS, full(x).tolist(), strict=True))
    sigmas = dict.fromkeys(PARAMETERS, 0.0)
    corr = np.eye(len(PARAMETERS))
    for a, ka in enumerate(free):
        sigmas[PARAMETERS[ka]] = float(err[a])
        for bb, kb in enumerate(free):
            if err[a] > 0 and err[bb] > 0:
                corr[ka, kb] = cov[a, bb] / (err[a] * err[bb])
    for key in ("size_mm", "divergence_mrad", "sigma_delta"):  # widths are squares
        values[key] = abs(values[key])
    loose = [k for k in PARAMETERS if k not in fixed and sigmas[k] > abs(values[k]) > 0]
    if loose:
        notes.append(f"not determined by these data (sigma above the value): {', '.join(loose)}")
    return SourceFit(
        values=values, sigmas=sigmas, correlation=corr, fixed=tuple(fixed), chi2=chi2,
        dof=dof, n_observations=n_obs, notes=notes,
    )  # fmt: skip
