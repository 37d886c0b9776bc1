"""Expected sensitivity of a plan: upper limit on the coupling g versus the X17 mass.

Statistical model (one counting experiment per scan point i, mu = g^2):

    n_i ~ Poisson(mu * s_i(M) + b_i * (1 + theta_i)),   theta0_i ~ Normal(theta_i, sigma_rel)

* ``s_i(M) = POT_i * eff_i * Y * V(E_i - E_res(M))`` selected signal per g^2;
* ``b_i = POT_i * background_per_pot_i``;
* ``theta_i`` one nuisance per point on the expected count, constrained by an auxiliary
  measurement ``theta0_i`` with ``sigma_rel = hypot(pot_rel, background_rel)`` (facts 5:
  0.3 % on POT and 0.3 % on background per point). Simplification (documented): the POT
  uncertainty is put on the background only (its 0.3 % effect on the signal normalisation
  is far below the statistical error of any limit), and the global 1 % POT scale and the
  uncertainties of Y, w_L and BES are not part of the expected limit.

The nuisances are profiled analytically (per point the stationarity condition is a
quadratic in the expected count). Test statistic: the one-sided profile-likelihood ratio
q~_mu with mu_hat >= 0. Expected limits: the Asimov dataset (n = b, theta0 = 0) with the
asymptotic CLs formulae (Cowan, Cranmer, Gross, Vitells 2011): the median expected limit
solves ``q_mu,A = (Phi^-1(1 - alpha/2))^2``, bands from ``sigma^2 = mu^2 / q_mu,A``.
Toy Monte Carlo CLs on mass x coupling grids run through Dask (:func:`toy_cls_grid`), one
random stream per grid cell (``SeedSequence(seed, spawn_key=(cell,))``), so results do not
depend on the number of workers. With the published likelihood the toy grid is
:func:`scanplan.analysis.plan_toys.published_toy_grid`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri, xlogy

from .errors import ScanplanError
from .physics.lineshape import voigt_per_mev
from .physics.params import PhysicsModel, load_scan_defaults
from .physics.yields import resonance_energy_array_mev, sqrt_s_array_mev
from .records import Plan

#: points whose expected count is below this are dropped from the likelihood (no information)
MIN_EXPECTED = 1e-12


@dataclass(frozen=True)
class PlanArrays:
    """Per-point arrays of a plan: ``e_beam_mev`` [MeV], ``pot``, ``bes``, ``efficiency``,
    ``background_per_pot``, ``is_control`` (bool)."""

    e_beam_mev: NDArray
    pot: NDArray
    bes: NDArray
    efficiency: NDArray
    background_per_pot: NDArray
    is_control: NDArray

    @property
    def background(self) -> NDArray:
        """Expected background counts b_i."""
        return self.pot * self.background_per_pot

    def with_pot(self, pot: ArrayLike) -> PlanArrays:
        return PlanArrays(
            self.e_beam_mev,
            np.asarray(pot, dtype=float),
            self.bes,
            self.efficiency,
            self.background_per_pot,
            self.is_control,
        )


def plan_arrays(plan: Plan) -> PlanArrays:
    """Arrays of a plan's points (period order)."""
    pts = sorted(plan.points, key=lambda p: p.period)
    if not pts:
        raise ScanplanError("plan has no points")
    return PlanArrays(
        e_beam_mev=np.array([p.e_beam_mev for p in pts]),
        pot=np.array([p.target_pot for p in pts]),
        bes=np.array([p.rel_spread for p in pts]),
        efficiency=np.array([p.signal_efficiency for p in pts]),
        background_per_pot=np.array([p.background_per_pot for p in pts]),
        is_control=np.array([p.kind == "control" for p in pts]),
    )


def signal_per_g2(masses_mev: ArrayLike, arrays: PlanArrays, model: PhysicsModel) -> NDArray:
    """Selected signal per g^2, shape (n_mass, n_points): ``POT * eff * Y * V``."""
    m = np.atleast_1d(np.asarray(masses_mev, dtype=float))
    e_res = resonance_energy_array_mev(m)[:, None]
    sigma = arrays.bes[None, :] * e_res
    shape = voigt_per_mev(arrays.e_beam_mev[None, :] - e_res, sigma, model.lorentz_gamma_mev)
    return arrays.pot * arrays.efficiency * model.signal.yield_mev * shape


def sigma_rel(model: PhysicsModel) -> float:
    """Per-point relative uncertainty of the expected count: hypot(POT, background)."""
    return math.hypot(model.systematics.pot_rel, model.systematics.background_rel)


def profiled_nll(
    mu: ArrayLike, s: NDArray, b: NDArray, n: NDArray, theta0: NDArray, sig: float
) -> NDArray:
    """Negative log-likelihood profiled over the per-point nuisances, summed over points.

    ``mu`` broadcasts against the leading axes of ``s``/``b``/``n``/``theta0`` (last axis =
    points). Constant terms (``ln n!``) are dropped; the same constant for every ``mu``.
    """
    mu = np.asarray(mu, dtype=float)[..., None]
    base = b * (1.0 + theta0)
    if sig > 0:
        k = (b * sig) ** 2
        bb = k - mu * s - base
        t = 0.5 * (-bb + np.sqrt(bb * bb + 4.0 * k * n))
        theta = (t - mu * s - b) / b
        constraint = 0.5 * ((theta - theta0) / sig) ** 2
    else:
        t = mu * s + base
        constraint = 0.0
    t = np.maximum(t, 1e-300)
    return np.sum(t - xlogy(n, t) + constraint, axis=-1)


def q_asimov(mu: ArrayLike, s: NDArray, b: NDArray, sig: float) -> NDArray:
    """q_mu on the background-only Asimov data (n = b, theta0 = 0); mu_hat = 0."""
    zero = np.zeros_like(b)
    nll_mu = profiled_nll(mu, s, b, b, zero, sig)
    nll_0 = profiled_nll(np.zeros_like(np.asarray(mu, dtype=float)), s, b, b, zero, sig)
    return np.maximum(2.0 * (nll_mu - nll_0), 0.0)


def fisher_mu(s: NDArray, b: NDArray, sig: float) -> NDArray:
    """Gaussian-limit information on mu: ``sum s^2 / (b + sig^2 b^2)`` (last axis = points)."""
    return np.sum(s * s / (b + (sig * b) ** 2), axis=-1)


@dataclass(frozen=True)
class ExpectedLimits:
    """Expected CLs upper limits: ``masses_mev`` [MeV], ``g2_median``, ``g_median`` and the
    +-1 sigma band of g (``g_minus1``, ``g_plus1``), at confidence level ``cl``."""

    masses_mev: NDArray
    g2_median: NDArray
    g_median: NDArray
    g_minus1: NDArray
    g_plus1: NDArray
    cl: float
    #: +-2 sigma band and the likelihood used ("simple" here, "published": scanplan.analysis)
    g_minus2: NDArray | None = None
    g_plus2: NDArray | None = None
    likelihood: str = "simple"

    def rows(self) -> list[dict[str, float]]:
        rows = [
            {
                "mass_mev": float(m),
                "g2_upper_limit": float(g2),
                "g_upper_limit": float(g),
                "g_upper_limit_minus1sigma": float(lo),
                "g_upper_limit_plus1sigma": float(hi),
            }
            for m, g2, g, lo, hi in zip(
                self.masses_mev,
                self.g2_median,
                self.g_median,
                self.g_minus1,
                self.g_plus1,
                strict=True,
            )
        ]
        if self.g_minus2 is not None and self.g_plus2 is not None:
            for r, lo2, hi2 in zip(rows, self.g_minus2, self.g_plus2, strict=True):
                r["g_upper_limit_minus2sigma"] = float(lo2)
                r["g_upper_limit_plus2sigma"] = float(hi2)
        return rows


def expected_limits_from_arrays(
    masses_mev: ArrayLike,
    arrays: PlanArrays,
    model: PhysicsModel,
    *,
    cl: float | None = None,
    systematics: bool = True,
) -> ExpectedLimits:
    """Median expected CLs upper limit on g^2 and g per mass (Asimov, vectorised)."""
    masses = np.atleast_1d(np.asarray(masses_mev, dtype=float))
    level = model.statistics.cl if cl is None else cl
    alpha = 1.0 - level
    z = float(ndtri(1.0 - 0.5 * alpha))
    sig = sigma_rel(model) if systematics else 0.0
    s = signal_per_g2(masses, arrays, model)
    b = np.broadcast_to(arrays.background, s.shape)
    keep = b[0] > MIN_EXPECTED
    s, b = s[:, keep], b[:, keep]
    info = fisher_mu(s, b, sig)
    with np.errstate(divide="ignore"):
        guess = np.where(info > 0, z / np.sqrt(info), np.inf)
    finite = np.isfinite(guess)
    lo = np.where(finite, guess / 20.0, 1.0)
    hi = np.where(finite, guess * 20.0, 2.0)
    target = z * z
    for _ in range(80):  # bisection in log(mu): q_mu,A grows monotonically with mu
        mid = np.sqrt(lo * hi)
        q = q_asimov(mid, s, b, sig)
        up = q > target
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    mu_up = np.where(finite, np.sqrt(lo * hi), np.inf)
    from .analysis.limits import expected_band_mu  # the one home of the band formula

    band = expected_band_mu(mu_up, level)
    return ExpectedLimits(
        masses_mev=masses,
        g2_median=mu_up,
        g_median=np.sqrt(mu_up),
        g_minus1=np.sqrt(band[-1.0]),
        g_plus1=np.sqrt(band[1.0]),
        cl=level,
    )


def default_masses_mev(plan: Plan, n: int | None = None) -> NDArray:
    """``n`` masses [MeV] over the sqrt(s) span of the plan's on-resonance points (default:
    ``[sensitivity] masses`` of ``lattices/physics/scan_defaults.toml``)."""
    n = load_scan_defaults().sensitivity.masses if n is None else n
    arr = plan_arrays(plan)
    e = arr.e_beam_mev[~arr.is_control] if np.any(~arr.is_control) else arr.e_beam_mev
    rs = sqrt_s_array_mev(np.array([e.min(), e.max()]))
    return np.linspace(rs[0], rs[1], n) if rs[1] > rs[0] else rs[:1]


LIKELIHOODS = ("simple", "published")


def expected_limits(
    plan: Plan,
    masses_mev: ArrayLike | None = None,
    *,
    cl: float | None = None,
    likelihood: str = "simple",
) -> ExpectedLimits:
    """Expected CLs upper limits of ``plan`` (its own physics model) on a mass grid [MeV].

    ``likelihood``: "simple" (this module: per-point nuisances only) or "published" (the
    likelihood of PADME's published treatment, :mod:`scanplan.analysis.planning`, the one
    ``scanplan analyse`` uses; with +-2 sigma bands)."""
    model = plan.inputs.physics
    masses = default_masses_mev(plan) if masses_mev is None else masses_mev
    level = model.statistics.cl if cl is None else cl
    if likelihood == "published":
        from .analysis.planning import plan_expected_g

        masses_arr, g = plan_expected_g(plan, model, masses, level)
        return ExpectedLimits(
            masses_mev=masses_arr,
            g2_median=g[0.0] ** 2,
            g_median=g[0.0],
            g_minus1=g[-1.0],
            g_plus1=g[1.0],
            cl=level,
            g_minus2=g[-2.0],
            g_plus2=g[2.0],
            likelihood="published",
        )
    if likelihood != "simple":
        raise ScanplanError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return expected_limits_from_arrays(masses, plan_arrays(plan), model, cl=cl)


@dataclass(frozen=True)
class Coverage:
    """sqrt(s) coverage: ``masses_mev`` [MeV], ``exposure_per_g2`` (selected signal per g^2
    summed over points), and the mass interval where the exposure is at least
    ``threshold`` times its median over the on-resonance span (``covered_lo_mev``,
    ``covered_hi_mev``), with ``min_over_span`` / ``max_over_span`` of the exposure there."""

    masses_mev: NDArray
    exposure_per_g2: NDArray
    threshold: float
    covered_lo_mev: float
    covered_hi_mev: float
    min_over_span: float
    max_over_span: float


def coverage(plan: Plan, *, threshold: float = 0.5, n: int = 241) -> Coverage:
    """sqrt(s) coverage of a plan (signal exposure versus mass)."""
    model = plan.inputs.physics
    arr = plan_arrays(plan)
    span = default_masses_mev(plan, 2)
    width = float(span[-1] - span[0]) or 0.2
    masses = np.linspace(span[0] - 0.25 * width, span[-1] + 0.25 * width, n)
    exp = signal_per_g2(masses, arr, model)[:, ~arr.is_control].sum(axis=1)
    inside = (masses >= span[0]) & (masses <= span[-1])
    ref = float(np.median(exp[inside])) if np.any(inside) else float(exp.max())
    ok = np.nonzero(exp >= threshold * ref)[0]
    return Coverage(
        masses_mev=masses,
        exposure_per_g2=exp,
        threshold=threshold,
        covered_lo_mev=float(masses[ok[0]]) if ok.size else math.nan,
        covered_hi_mev=float(masses[ok[-1]]) if ok.size else math.nan,
        min_over_span=float(exp[inside].min()) if np.any(inside) else math.nan,
        max_over_span=float(exp[inside].max()) if np.any(inside) else math.nan,
    )


# ---------------------------------------------------------------------------- toys


def _q_tilde(mu: float, s: NDArray, b: NDArray, n: NDArray, theta0: NDArray, sig: float) -> NDArray:
    """q~_mu for each toy (rows of ``n``/``theta0``): mu_hat fitted in [0, mu] by golden
    section (the profiled NLL is convex in mu); q = 0 when mu_hat >= mu."""
    lo = np.zeros(n.shape[0])
    hi = np.full(n.shape[0], mu)
    gr = (math.sqrt(5.0) - 1.0) / 2.0
    c = hi - gr * (hi - lo)
    d = lo + gr * (hi - lo)
    fc = profiled_nll(c, s, b, n, theta0, sig)
    fd = profiled_nll(d, s, b, n, theta0, sig)
    for _ in range(60):
        left = fc < fd
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        c_new = hi - gr * (hi - lo)
        d_new = lo + gr * (hi - lo)
        c, d = c_new, d_new
        fc = profiled_nll(c, s, b, n, theta0, sig)
        fd = profiled_nll(d, s, b, n, theta0, sig)
    best = np.minimum(
        np.minimum(fc, fd),
        np.minimum(
            profiled_nll(np.zeros_like(lo), s, b, n, theta0, sig),
            profiled_nll(np.full_like(lo, mu), s, b, n, theta0, sig),
        ),
    )
    q = 2.0 * (profiled_nll(np.full_like(lo, mu), s, b, n, theta0, sig) - best)
    return np.maximum(q, 0.0)


@dataclass(frozen=True)
class ToyCell:
    """One grid cell of a toy study: ``index`` (cell number), ``mass_index``,
    ``coupling_index``, the signal ``s`` and background ``b`` per point, ``mu`` = g^2,
    ``sig`` relative nuisance width, ``n_toys`` and the study ``seed``."""

    index: int
    mass_index: int
    coupling_index: int
    s: NDArray
    b: NDArray
    mu: float
    sig: float
    n_toys: int
    seed: int


def toy_cls_cell(cell: ToyCell) -> float:
    """Expected (median) CLs of one (mass, coupling) cell from toys.

    Background-only and signal-plus-background toys (Poisson counts and Gaussian auxiliary
    measurements of the nuisances) give the distributions of q~_mu; the "observed" value is
    the median of the background-only distribution; ``CLs = P_sb(q >= q_obs) / P_b(q >= q_obs)``.
    The random stream is ``SeedSequence(seed, spawn_key=(index,))``: independent of which
    worker runs the cell.
    """
    rng = np.random.default_rng(np.random.SeedSequence(cell.seed, spawn_key=(cell.index,)))
    shape = (cell.n_toys, cell.b.size)
    theta0_b = rng.normal(0.0, cell.sig, shape) if cell.sig > 0 else np.zeros(shape)
    n_b = rng.poisson(cell.b, shape).astype(float)
    theta0_sb = rng.normal(0.0, cell.sig, shape) if cell.sig > 0 else np.zeros(shape)
    n_sb = rng.poisson(cell.mu * cell.s + cell.b, shape).astype(float)
    q_b = _q_tilde(cell.mu, cell.s, cell.b, n_b, theta0_b, cell.sig)
    q_sb = _q_tilde(cell.mu, cell.s, cell.b, n_sb, theta0_sb, cell.sig)
    q_obs = float(np.median(q_b))
    p_sb = float(np.mean(q_sb >= q_obs))
    p_b = float(np.mean(q_b >= q_obs))
    return p_sb / p_b if p_b > 0 else 1.0


@dataclass(frozen=True)
class ToyGrid:
    """Toy CLs on a grid: ``masses_mev`` [MeV] x ``couplings`` (g), ``cls`` (n_mass, n_g),
    the expected limit ``g_limit`` per mass (log-interpolated crossing of 1 - cl, NaN if
    not crossed), ``n_toys``, ``seed``; ``n_clipped`` cells whose toy ratio
    ``P_sb / P_b`` fell outside [0, 1] (a statistical fluctuation of the toys, mostly where
    the signal is negligible) and was clipped to the interval."""

    masses_mev: NDArray
    couplings: NDArray
    cls: NDArray
    g_limit: NDArray
    cl: float
    n_toys: int
    seed: int
    n_clipped: int = 0


def clip_probabilities(values: NDArray) -> tuple[NDArray, int]:
    """``values`` clipped to [0, 1] and how many were outside (NaN stays NaN, not counted)."""
    arr = np.asarray(values, dtype=float)
    outside = int(np.count_nonzero((arr < 0.0) | (arr > 1.0)))
    return np.clip(arr, 0.0, 1.0), outside


def cls_crossing(couplings: NDArray, cls_row: NDArray, alpha: float) -> float:
    below = np.nonzero(cls_row < alpha)[0]
    if below.size == 0:
        return math.nan
    j = int(below[0])
    if j == 0:
        return float(couplings[0])
    x0, x1 = math.log(couplings[j - 1]), math.log(couplings[j])
    y0, y1 = cls_row[j - 1], cls_row[j]
    if y0 == y1:
        return float(couplings[j])
    return float(math.exp(x0 + (alpha - y0) * (x1 - x0) / (y1 - y0)))


def toy_cells(
    plan: Plan, masses_mev: Sequence[float], couplings: Sequence[float], n_toys: int, seed: int
) -> list[ToyCell]:
    """The cells of a toy study, numbered mass-major."""
    if n_toys < 10:
        raise ScanplanError(f"--toys must be >= 10, got {n_toys}")
    if any(not (g > 0 and math.isfinite(g)) for g in couplings):
        raise ScanplanError("couplings must be finite and > 0")
    model = plan.inputs.physics
    arr = plan_arrays(plan)
    s_all = signal_per_g2(np.asarray(masses_mev, dtype=float), arr, model)
    b = arr.background
    keep = b > MIN_EXPECTED
    sig = sigma_rel(model)
    cells = []
    for i, _m in enumerate(masses_mev):
        for j, g in enumerate(couplings):
            cells.append(
                ToyCell(
                    index=i * len(couplings) + j,
                    mass_index=i,
                    coupling_index=j,
                    s=s_all[i, keep],
                    b=b[keep],
                    mu=float(g) ** 2,
                    sig=sig,
                    n_toys=int(n_toys),
                    seed=int(seed),
                )
            )
    return cells


def toy_cls_grid(
    plan: Plan,
    masses_mev: Sequence[float],
    couplings: Sequence[float],
    *,
    n_toys: int = 500,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> ToyGrid:
    """Toy-MC expected CLs over mass x coupling, one Dask task per cell
    (:func:`beamline.parallel.map_ordered`).

    ``scheduler``: None or "local" for a local cluster of ``n_workers`` processes (or
    ``$DASK_SCHEDULER_ADDRESS`` if set), "sync" for no Dask, or the address of an existing
    Dask scheduler (``tcp://host:port`` or ``host:port``). CLs values are clipped to [0, 1]
    (``n_clipped`` counts them). ``on_done(i)`` is called as cell
    ``i`` finishes (progress). Results are identical for a fixed ``seed`` whatever the
    scheduler and number of workers.
    """
    from beamline.parallel import map_ordered

    cells = toy_cells(plan, masses_mev, couplings, n_toys, seed)
    values = map_ordered(
        toy_cls_cell, cells, scheduler=scheduler or "local", n_workers=n_workers, on_done=on_done
    )
    clipped, n_clipped = clip_probabilities(np.asarray(values, dtype=float))
    cls = clipped.reshape(len(masses_mev), len(couplings))
    model = plan.inputs.physics
    alpha = 1.0 - model.statistics.cl
    g = np.asarray(couplings, dtype=float)
    limits = np.array([cls_crossing(g, row, alpha) for row in cls])
    return ToyGrid(
        masses_mev=np.asarray(masses_mev, dtype=float),
        couplings=g,
        cls=cls,
        g_limit=limits,
        cl=model.statistics.cl,
        n_toys=n_toys,
        seed=seed,
        n_clipped=n_clipped,
    )
