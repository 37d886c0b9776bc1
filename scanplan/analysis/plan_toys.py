"""Toy-MC expected CLs of a plan with the published likelihood (the model of its Asimov
limits, :mod:`scanplan.analysis.planning`), on the Dask map.

One task per (mass, coupling) cell. The plan's background-only Asimov scan is fitted once
with mu = 0 and once per cell with mu = g^2/g2_unit fixed; background-only toys are generated
from the first fit, signal-plus-background toys from the second (Poisson counts, Gaussian
auxiliary measurements of every constrained nuisance, :func:`limits.generate_toys`). The
"observed" q~_mu is the median of the background-only toys (the median expected limit), and
``CLs = P_sb(q >= q_obs) / P_b(q >= q_obs)``. Each cell's random stream is
``SeedSequence(seed, spawn_key=(cell,))``, so a grid is identical for a fixed seed whatever
the scheduler or number of workers. The limit per mass comes from a weighted fit of
``Phi^-1(CLs/2)`` against g^2 over the cells (:func:`fit_limit`), its toy error from the fit's
covariance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from ..errors import ScanplanError
from ..records import Plan
from ..sensitivity import ToyGrid, clip_probabilities
from .likelihood import FitResult, Likelihood, resonance_energy_mev
from .limits import asimov, background_fit, generate_toys, q_tilde
from .planning import plan_likelihood

#: bounds of a published-likelihood toy study (each toy costs three profile fits)
MIN_TOYS = 10
MAX_TOYS = 5000
MAX_CELLS = 400
#: toys x masses x couplings (about 1 ms of fits per toy on one core for a 2022-size plan)
MAX_TOYS_TOTAL = 200_000


@dataclass(frozen=True)
class PublishedToyCell:
    """One (mass, coupling) cell: ``index`` (its number, mass-major), the likelihood,
    ``mass_mev`` [MeV], ``mu`` = g^2/g2_unit, the generating fits (``theta_b``/``local_b``
    with mu = 0, ``theta_sb``/``local_sb`` at mu, one row each), ``n_toys`` and ``seed``."""

    index: int
    lik: Likelihood
    mass_mev: float
    mu: float
    theta_b: NDArray
    local_b: NDArray
    theta_sb: NDArray
    local_sb: NDArray
    n_toys: int
    seed: int


def published_toy_cell(cell: PublishedToyCell) -> tuple[float, float]:
    """``(CLs, binomial error of CLs)`` of one cell from its toys (a Dask task)."""
    rng = np.random.default_rng(np.random.SeedSequence(cell.seed, spawn_key=(cell.index,)))
    lik, m, k = cell.lik, cell.mass_mev, cell.n_toys
    n_b, ag_b, al_b = generate_toys(lik, cell.theta_b, cell.local_b, k, rng)
    n_sb, ag_sb, al_sb = generate_toys(lik, cell.theta_sb, cell.local_sb, k, rng, m)
    q_b = q_tilde(lik, m, cell.mu, n_b, ag_b, al_b)
    q_sb = q_tilde(lik, m, cell.mu, n_sb, ag_sb, al_sb)
    q_obs = float(np.median(q_b))
    p_sb = float(np.mean(q_sb >= q_obs))
    p_b = float(np.mean(q_b >= q_obs))
    if p_b <= 0:
        return 1.0, 0.0
    cls = p_sb / p_b
    # independent binomial errors of the two tail fractions, propagated to the ratio
    rel2 = (1.0 - p_b) / (k * p_b) + ((1.0 - p_sb) / (k * p_sb) if p_sb > 0 else 1.0 / k)
    return cls, cls * math.sqrt(rel2) if p_sb > 0 else math.sqrt(rel2) / p_b


@dataclass(frozen=True)
class PublishedToyGrid(ToyGrid):
    """A :class:`ToyGrid` of the published likelihood with ``cls_err`` (n_mass, n_g), the toy
    error of each limit ``g_limit_err`` and the asymptotic median limits ``g_limit_asimov``."""

    cls_err: NDArray | None = None
    g_limit_err: NDArray | None = None
    g_limit_asimov: NDArray | None = None


def check_bounds(n_toys: int, n_masses: int, n_couplings: int) -> None:
    """Refuse a toy study outside the documented maxima (one ``ScanplanError``)."""
    cells = n_masses * n_couplings
    if not MIN_TOYS <= n_toys <= MAX_TOYS:
        raise ScanplanError(f"--toys must be in {MIN_TOYS}..{MAX_TOYS}, got {n_toys}")
    if not 1 <= cells <= MAX_CELLS:
        raise ScanplanError(f"toy grid has {cells} cells (masses x couplings); max {MAX_CELLS}")
    if n_toys * cells > MAX_TOYS_TOTAL:
        raise ScanplanError(
            f"{n_toys} toys x {cells} cells = {n_toys * cells} toys; max {MAX_TOYS_TOTAL}"
        )


def published_toy_cells(
    lik: Likelihood, masses_mev: Sequence[float], couplings: Sequence[float], n_toys: int, seed: int
) -> tuple[list[PublishedToyCell], FitResult]:
    """The cells of a study (mass-major) and the background-only fit of the Asimov scan."""
    check_bounds(n_toys, len(masses_mev), len(couplings))
    if any(not (g > 0 and math.isfinite(g)) for g in couplings):
        raise ScanplanError("couplings must be finite and > 0")
    bkg = background_fit(lik, lik.data.n_obs)
    n_a, aux_g, aux_l = asimov(lik, bkg)
    masses = np.repeat(np.asarray(masses_mev, dtype=float), len(couplings))
    mu = np.tile(np.asarray(couplings, dtype=float) ** 2 / lik.g2_unit, len(masses_mev))
    c = masses.size
    # the model at each cell's mu that best describes the Asimov data (its s+b generator)
    sb = lik.fit(
        resonance_energy_mev(masses),
        np.repeat(n_a[None], c, axis=0),
        mu_fixed=mu,
        aux_g=np.repeat(aux_g[None], c, axis=0),
        aux_l=np.repeat(aux_l[None], c, axis=0),
        start=bkg.tile(c),
    )
    cells = [
        PublishedToyCell(
            index=i,
            lik=lik,
            mass_mev=float(masses[i]),
            mu=float(mu[i]),
            theta_b=bkg.theta[:1],
            local_b=bkg.local[:1],
            theta_sb=sb.theta[i : i + 1],
            local_sb=sb.local[i : i + 1],
            n_toys=int(n_toys),
            seed=int(seed),
        )
        for i in range(c)
    ]
    return cells, bkg


def fit_limit(g: NDArray, cls: NDArray, err: NDArray, alpha: float) -> tuple[float, float]:
    """``(limit, toy error)`` on g of one mass from the toy CLs of its cells.

    Interpolation model: ``y = Phi^-1(CLs / 2)`` linear in g^2 (for the median expected CLs,
    ``CLs = 2 Phi(-sqrt(q_mu,A))`` with ``sqrt(q_mu,A)`` proportional to mu = g^2 asymptotically);
    a weighted straight-line fit over the cells with 0 < CLs < 1 (weights from the binomial
    errors) solved for CLs = ``alpha``, the error from the fit's covariance. A fit, not the
    first crossing, so that one fluctuating cell does not move the limit; NaN when fewer than
    two cells carry information or the fitted CLs does not fall with g."""
    ok = (cls > 0) & (cls < 1) & (err > 0)
    if np.count_nonzero(ok) < 2:
        return math.nan, math.nan
    x, y = g[ok] ** 2, ndtri(0.5 * cls[ok])
    w = (2.0 * np.exp(-0.5 * y * y) / math.sqrt(2.0 * math.pi) / err[ok]) ** 2  # 1 / var(y)
    a_mat = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(a_mat.T @ (w[:, None] * a_mat))
    c0, c1 = cov @ (a_mat.T @ (w * y))
    x_lim = (float(ndtri(0.5 * alpha)) - c0) / c1
    if not (c1 < 0 and x_lim > 0):
        return math.nan, math.nan
    grad = np.array([-1.0 / c1, -x_lim / c1])  # d x_lim / d (c0, c1)
    return float(math.sqrt(x_lim)), float(math.sqrt(grad @ cov @ grad) / (2 * math.sqrt(x_lim)))


def published_toy_grid(
    plan: Plan,
    masses_mev: Sequence[float],
    couplings: Sequence[float],
    *,
    n_toys: int = 200,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> PublishedToyGrid:
    """Toy-MC expected CLs of ``plan`` with the published likelihood over masses [MeV] x
    couplings g, one task per cell on :func:`beamline.parallel.map_ordered` (``scheduler``
    as for :func:`scanplan.sensitivity.toy_cls_grid`). CLs values are clipped to [0, 1]
    (``n_clipped`` counts them); limits next to the asymptotic (Asimov) ones."""
    from beamline.parallel import map_ordered

    from .limits import limits

    physics = plan.inputs.physics
    cl = physics.statistics.cl
    lik = plan_likelihood(plan, physics)
    cells, _ = published_toy_cells(lik, masses_mev, couplings, n_toys, seed)
    out = map_ordered(
        published_toy_cell,
        cells,
        scheduler=scheduler or "local",
        n_workers=n_workers,
        on_done=on_done,
    )
    shape = (len(masses_mev), len(couplings))
    clipped, n_clipped = clip_probabilities(np.array([v[0] for v in out]))
    cls = clipped.reshape(shape)
    err = np.array([v[1] for v in out]).reshape(shape)
    alpha = 1.0 - cl
    g = np.asarray(couplings, dtype=float)
    fits = np.array([fit_limit(g, c, e, alpha) for c, e in zip(cls, err, strict=True)])
    m = np.asarray(masses_mev, dtype=float)
    asym = np.sqrt(limits(lik, m, cl, observed=False).expected_limit_mu * lik.g2_unit)
    return PublishedToyGrid(
        masses_mev=m,
        couplings=g,
        cls=cls,
        g_limit=fits[:, 0],
        cl=cl,
        n_toys=n_toys,
        seed=seed,
        n_clipped=n_clipped,
        cls_err=err,
        g_limit_err=fits[:, 1],
        g_limit_asimov=asym,
    )
