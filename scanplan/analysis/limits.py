"""Local significance, CLs upper limits on g and toys with the published likelihood.

* Local significance at mass M: ``Z = sqrt(q0)``, ``q0 = 2 (NLL(mu = 0) - NLL(mu_hat))`` for
  ``mu_hat > 0`` (0 otherwise): the profile-likelihood ratio with every nuisance profiled.
* Upper limits (CLs, asymptotic formulae of Cowan, Cranmer, Gross, Vitells 2011, the ones
  pyhf uses): ``q~_mu`` on the data, ``q_mu,A`` on the background-only Asimov data set made
  from the background-only fit to the data (its nuisance values as auxiliary measurements);
  ``CLs = Phi(-a) / Phi(-b)`` with ``(a, b) = (sqrt q, sqrt q - sqrt qA)`` for ``q <= qA``,
  else ``((q + qA) / (2 sqrt qA), (q - qA) / (2 sqrt qA))``. Expected limits: the median
  solves ``q_mu,A = Phi^-1(1 - alpha/2)^2``; the bands ``mu_N = sigma (Phi^-1(1 - alpha
  Phi(N)) + N)`` with ``sigma = mu_med / Phi^-1(1 - alpha/2)``.
* Toys: background-only pseudo-data from the background-only fit (Poisson counts, Gaussian
  auxiliary measurements of every constrained nuisance), one random stream per batch of
  toys (``SeedSequence(seed, spawn_key=(batch,))``), so a toy study is identical for a fixed
  seed whatever the scheduler or number of workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from .likelihood import CONSTRAINED, I_MU, FitResult, Likelihood, resonance_energy_mev

#: bisection steps in log(mu) for a limit (bracket x900 -> relative precision 1e-4)
LIMIT_STEPS = 18
#: expected-band levels N (sigma)
BAND_LEVELS = (-2.0, -1.0, 1.0, 2.0)


def cls_asymptotic(q: NDArray, q_a: NDArray) -> NDArray:
    """CLs from ``q~_mu`` (``q``) and ``q_mu,A`` (``q_a``), both >= 0 (vectorised)."""
    q = np.maximum(q, 0.0)
    q_a = np.maximum(q_a, 1e-300)
    sq, sqa = np.sqrt(q), np.sqrt(q_a)
    low = q <= q_a
    a = np.where(low, sq, (q + q_a) / (2.0 * sqa))
    b = np.where(low, sq - sqa, (q - q_a) / (2.0 * sqa))
    return ndtr(-a) / np.maximum(ndtr(-b), 1e-300)


def expected_band_mu(mu_median: NDArray, cl: float) -> dict[float, NDArray]:
    """Expected limits on mu at N sigma (keys :data:`BAND_LEVELS` and 0) from the median."""
    alpha = 1.0 - cl
    z = float(ndtri(1.0 - 0.5 * alpha))
    sigma = np.asarray(mu_median) / z
    out = {0.0: np.asarray(mu_median)}
    for n in BAND_LEVELS:
        out[n] = sigma * (ndtri(1.0 - alpha * ndtr(n)) + n)
    return out


@dataclass(frozen=True)
class MassScan:
    """Per-mass results: ``masses_mev``; ``mu_hat`` (g^2/g2_unit, may be < 0);
    ``local_significance``; ``observed_limit_mu``, ``expected_limit_mu`` and the band
    ``band_mu`` {N: (n_mass,)} (NaN where not computed); the fits ``free`` (per mass) and
    ``background`` (one row: mu = 0); ``asimov_n`` the background-only Asimov counts."""

    masses_mev: NDArray
    mu_hat: NDArray
    local_significance: NDArray
    observed_limit_mu: NDArray
    expected_limit_mu: NDArray
    band_mu: dict[float, NDArray]
    free: FitResult
    background: FitResult
    asimov_n: NDArray


def background_fit(
    lik: Likelihood, n: NDArray, aux_g: NDArray | None = None, aux_l: NDArray | None = None
) -> FitResult:
    """The background-only fit (mu = 0; the mass does not matter then)."""
    e_res = resonance_energy_mev(np.array([17.0]))
    return lik.fit(
        e_res,
        np.atleast_2d(n),
        mu_fixed=np.zeros(1),
        aux_g=None if aux_g is None else np.atleast_2d(aux_g),
        aux_l=None if aux_l is None else aux_l[None],
    )


def local_scan(
    lik: Likelihood,
    masses_mev: NDArray,
    n: NDArray | None = None,
    *,
    aux_g: NDArray | None = None,
    aux_l: NDArray | None = None,
    bkg: FitResult | None = None,
) -> tuple[NDArray, NDArray, FitResult, FitResult]:
    """``(mu_hat, Z_local, free fits, background fit)`` over ``masses_mev`` [MeV]."""
    n = lik.data.n_obs if n is None else n
    bkg = background_fit(lik, n, aux_g, aux_l) if bkg is None else bkg
    m = masses_mev.size
    free = lik.fit(
        resonance_energy_mev(masses_mev),
        n,
        aux_g=None if aux_g is None else np.repeat(np.atleast_2d(aux_g), m, axis=0),
        aux_l=None if aux_l is None else np.repeat(aux_l[None], m, axis=0),
        start=bkg.tile(m),
    )
    mu_hat = free.theta[:, I_MU]
    q0 = np.where(mu_hat > 0, np.maximum(2.0 * (bkg.nll[0] - free.nll), 0.0), 0.0)
    return mu_hat, np.sqrt(q0), free, bkg


def asimov(lik: Likelihood, bkg: FitResult) -> tuple[NDArray, NDArray, NDArray]:
    """Background-only Asimov counts and auxiliary data from a background-only fit."""
    e_res = resonance_energy_mev(np.array([17.0]))
    n_a = lik.expected(bkg.theta, bkg.local, e_res)[0]
    return n_a, bkg.theta[0, list(CONSTRAINED)], bkg.local[0]


def _q_fixed(
    lik: Likelihood,
    e_res: NDArray,
    mu: NDArray,
    n: NDArray,
    aux_g: NDArray,
    aux_l: NDArray,
    start: tuple[NDArray, NDArray],
) -> tuple[NDArray, FitResult]:
    m = e_res.size
    fit = lik.fit(
        e_res,
        n,
        mu_fixed=mu,
        aux_g=np.repeat(aux_g[None], m, axis=0),
        aux_l=np.repeat(aux_l[None], m, axis=0),
        start=start,
    )
    return fit.nll, fit


def limits(
    lik: Likelihood,
    masses_mev: NDArray,
    cl: float,
    *,
    observed: bool = True,
) -> MassScan:
    """Local significance and CLs limits (observed and expected with bands) per mass."""
    d = lik.data
    m = masses_mev.size
    e_res = resonance_energy_mev(masses_mev)
    bkg = background_fit(lik, d.n_obs)
    if observed:
        mu_hat, z_loc, free, _ = local_scan(lik, masses_mev, bkg=bkg)
    else:  # expected limits only (planning): no free fits needed
        th, loc = bkg.tile(m)
        free = FitResult(th, loc, np.repeat(bkg.nll, m), np.ones(m, bool), 0)
        mu_hat, z_loc = np.zeros(m), np.zeros(m)
    n_a, aux_ga, aux_la = asimov(lik, bkg)
    nll_a0 = lik.nll(bkg.theta, bkg.local, e_res[:1], n_a[None], aux_ga[None], aux_la[None])[0]
    alpha = 1.0 - cl
    z = float(ndtri(1.0 - 0.5 * alpha))
    # Gaussian first guess of the median expected limit, from the Fisher information on mu
    lam, jg, _ = lik.jacobians(bkg.tile(m)[0], bkg.tile(m)[1], e_res)
    info = np.sum(jg[:, :, I_MU] ** 2 / lam, axis=1)
    guess = z / np.sqrt(np.maximum(info, 1e-300))
    start_a = bkg.tile(m)

    def q_asimov(mu: NDArray) -> NDArray:
        nll, _ = _q_fixed(lik, e_res, mu, n_a, aux_ga, aux_la, start_a)
        return np.maximum(2.0 * (nll - nll_a0), 0.0)

    lo, hi = guess / 30.0, guess * 30.0
    for _ in range(LIMIT_STEPS):
        mid = np.sqrt(lo * hi)
        up = q_asimov(mid) > z * z
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    mu_exp = np.sqrt(lo * hi)
    bands = expected_band_mu(mu_exp, cl)
    mu_obs = np.full(m, np.nan)
    if observed:
        nll_hat = np.where(mu_hat > 0, free.nll, bkg.nll[0])
        mu_hat_c = np.maximum(mu_hat, 0.0)
        zero_g = np.zeros(len(CONSTRAINED))
        zero_l = np.zeros((d.n_points, 2))
        start_o = (free.theta.copy(), free.local.copy())

        def cls_obs(mu: NDArray) -> NDArray:
            nll, _ = _q_fixed(lik, e_res, mu, d.n_obs, zero_g, zero_l, start_o)
            q = np.where(mu_hat_c > mu, 0.0, np.maximum(2.0 * (nll - nll_hat), 0.0))
            return cls_asymptotic(q, q_asimov(mu))

        top = np.maximum(mu_hat_c, 0.0) + 30.0 * mu_exp
        lo, hi = mu_exp / 30.0, top
        for _ in range(LIMIT_STEPS + 4):
            mid = np.sqrt(lo * hi)
            excluded = cls_obs(mid) < alpha
            hi, lo = np.where(excluded, mid, hi), np.where(excluded, lo, mid)
        mu_obs = np.sqrt(lo * hi)
    return MassScan(
        masses_mev=masses_mev,
        mu_hat=mu_hat,
        local_significance=z_loc,
        observed_limit_mu=mu_obs,
        expected_limit_mu=mu_exp,
        band_mu=bands,
        free=free,
        background=bkg,
        asimov_n=n_a,
    )


# ---------------------------------------------------------------------------- toys


@dataclass(frozen=True)
class ToyBatch:
    """One batch of background-only toys for the look-elsewhere effect: the likelihood
    (``lik``), the masses [MeV], the generating background fit's ``theta``/``local``,
    ``n_toys``, the study ``seed`` and this batch's ``index``."""

    lik: Likelihood
    masses_mev: NDArray
    theta: NDArray
    local: NDArray
    n_toys: int
    seed: int
    index: int


def generate_toys(
    lik: Likelihood,
    theta: NDArray,
    local: NDArray,
    n_toys: int,
    rng: np.random.Generator,
    mass_mev: float = 17.0,
) -> tuple[NDArray, NDArray, NDArray]:
    """Pseudo-data ``(n, aux_g, aux_l)`` from the model at ``theta``/``local`` (one row):
    Poisson counts and unit-Gaussian auxiliary measurements around the generating values.
    ``mass_mev`` [MeV] places the signal (irrelevant when theta's mu is 0)."""
    lam = lik.expected(theta, local, resonance_energy_mev(np.array([float(mass_mev)])))[0]
    n = rng.poisson(lam, (n_toys, lam.size)).astype(float)
    aux_g = theta[0, list(CONSTRAINED)] + rng.standard_normal((n_toys, len(CONSTRAINED)))
    aux_l = local[0] + rng.standard_normal((n_toys, *local.shape[1:]))
    return n, aux_g, aux_l


def max_local_significance_of_batch(batch: ToyBatch) -> NDArray:
    """The largest local significance over the masses for each toy of a batch (Dask task)."""
    rng = np.random.default_rng(np.random.SeedSequence(batch.seed, spawn_key=(batch.index,)))
    n, aux_g, aux_l = generate_toys(batch.lik, batch.theta, batch.local, batch.n_toys, rng)
    out = np.empty(batch.n_toys)
    for k in range(batch.n_toys):
        _, z, _, _ = local_scan(batch.lik, batch.masses_mev, n[k], aux_g=aux_g[k], aux_l=aux_l[k])
        out[k] = z.max()
    return out


@dataclass(frozen=True)
class GlobalSignificance:
    """Look-elsewhere by toys: ``p_value`` and ``significance`` (one-sided Z) of the
    observed maximum local significance ``observed_max``, its binomial ``error`` on Z, the
    per-toy maxima ``toy_max``, ``n_toys`` and ``seed``."""

    observed_max: float
    p_value: float
    significance: float
    significance_error: float
    toy_max: NDArray
    n_toys: int
    seed: int


def global_significance(
    lik: Likelihood,
    masses_mev: NDArray,
    observed_max: float,
    bkg: FitResult,
    *,
    n_toys: int,
    seed: int = 0,
    batch_size: int = 25,
    scheduler: str | None = "local",
    n_workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> GlobalSignificance:
    """Global significance of ``observed_max`` over ``masses_mev`` from ``n_toys``
    background-only toys run through :func:`beamline.parallel.map_ordered`."""
    from beamline.parallel import map_ordered

    sizes = [batch_size] * (n_toys // batch_size)
    if n_toys % batch_size:
        sizes.append(n_toys % batch_size)
    batches = [
        ToyBatch(lik, masses_mev, bkg.theta[:1], bkg.local[:1], k, int(seed), i)
        for i, k in enumerate(sizes)
    ]
    parts = map_ordered(
        max_local_significance_of_batch,
        batches,
        scheduler=scheduler or "local",
        n_workers=n_workers,
        on_done=on_done,
    )
    toy_max = np.concatenate(parts) if parts else np.zeros(0)
    n_ge = int(np.sum(toy_max >= observed_max))
    # (k + 1) / (N + 1): never exactly 0 from a finite number of toys
    p = (n_ge + 1) / (n_toys + 1)
    zg = float(ndtri(1.0 - p))
    dp = np.sqrt(p * (1.0 - p) / max(n_toys, 1))
    dz = float(dp / max(np.exp(-0.5 * zg * zg) / np.sqrt(2.0 * np.pi), 1e-300))
    return GlobalSignificance(observed_max, p, zg, dz, toy_max, n_toys, int(seed))


def cls_at(
    lik: Likelihood,
    mass_mev: float,
    mu: float,
    n: NDArray,
    aux_g: NDArray,
    aux_l: NDArray,
) -> NDArray:
    """Asymptotic CLs of mu = g^2/g2_unit at one mass for each row of pseudo-data ``n``
    (K, P) with auxiliary data ``aux_g`` (K, 6), ``aux_l`` (K, P, 2), batched: the free,
    fixed-mu and background-only fits of every row, its Asimov data set and the fixed-mu fit
    of that."""
    k = n.shape[0]
    er = np.repeat(resonance_energy_mev(np.array([float(mass_mev)])), k)
    muv = np.full(k, float(mu))
    zero = lik.fit(er, n, mu_fixed=np.zeros(k), aux_g=aux_g, aux_l=aux_l)
    free = lik.fit(er, n, aux_g=aux_g, aux_l=aux_l, start=(zero.theta, zero.local))
    fixed = lik.fit(er, n, mu_fixed=muv, aux_g=aux_g, aux_l=aux_l, start=(zero.theta, zero.local))
    mh = free.theta[:, I_MU]
    best = np.where(mh > 0, free.nll, zero.nll)
    q = np.where(mh > mu, 0.0, np.maximum(2.0 * (fixed.nll - best), 0.0))
    n_a = lik.expected(zero.theta, zero.local, er)
    ag_a, al_a = zero.theta[:, list(CONSTRAINED)], zero.local
    fa = lik.fit(er, n_a, mu_fixed=muv, aux_g=ag_a, aux_l=al_a, start=(zero.theta, zero.local))
    a0 = lik.nll(zero.theta, zero.local, er, n_a, ag_a, al_a)
    return cls_asymptotic(q, np.maximum(2.0 * (fa.nll - a0), 0.0))


def q_tilde(
    lik: Likelihood, mass_mev: float, mu: float, n: NDArray, aux_g: NDArray, aux_l: NDArray
) -> NDArray:
    """One-sided ``q~_mu`` (mu_hat >= 0, q = 0 for mu_hat > mu) of each row of pseudo-data
    ``n`` (K, P) with auxiliary data ``aux_g`` (K, 6), ``aux_l`` (K, P, 2), at one mass [MeV]."""
    k = n.shape[0]
    er = np.repeat(resonance_energy_mev(np.array([float(mass_mev)])), k)
    fixed = lik.fit(er, n, mu_fixed=np.full(k, float(mu)), aux_g=aux_g, aux_l=aux_l)
    free = lik.fit(er, n, aux_g=aux_g, aux_l=aux_l, start=(fixed.theta, fixed.local))
    zero = lik.fit(er, n, mu_fixed=np.zeros(k), aux_g=aux_g, aux_l=aux_l)
    mh = free.theta[:, I_MU]
    best = np.where(mh > 0, free.nll, zero.nll)
    return np.where(mh > mu, 0.0, np.maximum(2.0 * (fixed.nll - best), 0.0))


def toy_cls(
    lik: Likelihood,
    mass_mev: float,
    mu: float,
    n_toys: int,
    seed: int = 0,
) -> tuple[float, float]:
    """``(toy CLs, asymptotic CLs)`` of the observed data at one mass and mu = g^2/g2_unit.

    The toy distributions of q~_mu under mu (signal + background) and under 0 are generated
    from the fits to the data at those mu, as in the published frequentist treatment."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    d = lik.data
    e_res = resonance_energy_mev(np.array([float(mass_mev)]))
    zg = np.zeros((1, len(CONSTRAINED)))
    zl = np.zeros((1, d.n_points, 2))
    q_obs = float(q_tilde(lik, mass_mev, mu, d.n_obs[None], zg, zl)[0])
    fit_mu = lik.fit(e_res, d.n_obs, mu_fixed=np.array([mu]))
    fit_0 = background_fit(lik, d.n_obs)
    # the s+b toys need the signal of this mass
    n_sb, ag_sb, al_sb = generate_toys(lik, fit_mu.theta, fit_mu.local, n_toys, rng, mass_mev)
    n_b, ag_b, al_b = generate_toys(lik, fit_0.theta, fit_0.local, n_toys, rng)
    q_sb = q_tilde(lik, mass_mev, mu, n_sb, ag_sb, al_sb)
    q_b = q_tilde(lik, mass_mev, mu, n_b, ag_b, al_b)
    p_b = float(np.mean(q_b >= q_obs))
    cls_toy = float(np.mean(q_sb >= q_obs)) / p_b if p_b > 0 else 1.0
    n_a, aux_ga, aux_la = asimov(lik, fit_0)
    fa = lik.fit(e_res, n_a, mu_fixed=np.array([mu]), aux_g=aux_ga[None], aux_l=aux_la[None])
    a0 = lik.nll(fit_0.theta, fit_0.local, e_res, n_a[None], aux_ga[None], aux_la[None])
    q_a = np.maximum(2.0 * (fa.nll - a0), 0.0)
    return cls_toy, float(cls_asymptotic(np.array([q_obs]), q_a)[0])
