"""The published likelihood for planning: expected limits of a plan (Asimov) with the same
model, nuisances and code as ``scanplan analyse``.

A plan's on-resonance points become a scan with the expected background as its counts
(``POT * bkg_per_pot * bias(sqrt s)``, the published bias curve at its centre), one scan
part per pass (``pass_index``; 2022: part 0 = first descending pass, part 1 = the second),
per-point uncertainties from the plan's physics model (facts 5: 0.3 % on POT and on
background). Control points have no free-background partner and are left out, as in the
published treatment. The central values of Y, w_L and BES are the plan's own (its physics
model and the mean BES of its points), their widths the published ones.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ScanplanError
from ..physics.params import PhysicsModel
from ..records import Plan
from .likelihood import Likelihood, ScanData
from .limits import MassScan, limits
from .params import LikelihoodConfig, load_likelihood_config


def plan_scan_data(plan: Plan, physics: PhysicsModel, config: LikelihoodConfig) -> ScanData:
    """Asimov (background-only) scan data of a plan's on-resonance points."""
    pts = sorted((p for p in plan.points if p.kind != "control"), key=lambda p: p.period)
    if len(pts) < 3:
        raise ScanplanError(
            f"plan has {len(pts)} on-resonance point(s): the published likelihood (free "
            "background line per pass) needs at least 3; use --likelihood simple"
        )
    labels = tuple(sorted({p.pass_index for p in pts}))
    index = {lab: i for i, lab in enumerate(labels)}
    rs = np.array([p.sqrt_s_mev for p in pts])
    pot = np.array([p.target_pot for p in pts])
    bkg = np.array([p.background_per_pot for p in pts])
    b = config.bias
    n = pot * bkg * (b.p0 + b.p1_per_mev * (rs - b.pivot_sqrt_s_mev))
    k = len(pts)
    return ScanData(
        sqrt_s_mev=rs,
        e_beam_mev=np.array([p.e_beam_mev for p in pts]),
        pot=pot,
        pot_rel=np.full(k, physics.systematics.pot_rel),
        n_obs=n,
        sig_eff=np.array([p.signal_efficiency for p in pts]),
        bkg_per_pot=bkg,
        bkg_rel=np.full(k, physics.systematics.background_rel),
        part=np.array([index[p.pass_index] for p in pts]),
        part_labels=labels,
        periods=tuple(p.period for p in pts),
    )


def plan_likelihood(
    plan: Plan, physics: PhysicsModel, config: LikelihoodConfig | None = None
) -> Likelihood:
    """The published likelihood of a plan's Asimov scan (centres from the plan's model)."""
    cfg = config or load_likelihood_config()
    data = plan_scan_data(plan, physics, cfg)
    bes = float(np.mean([p.rel_spread for p in plan.points if p.kind != "control"]))
    centres = {
        "yield_mev": physics.signal.yield_mev,
        "lorentz_width_mev": physics.signal.lorentz_width_mev,
        "bes": bes,
    }
    return Likelihood(data, cfg, physics, centres=centres)


def plan_expected_scan(
    plan: Plan, physics: PhysicsModel, masses_mev: ArrayLike, cl: float
) -> MassScan:
    """Median expected CLs limits and bands of a plan over ``masses_mev`` [MeV]."""
    lik = plan_likelihood(plan, physics)
    return limits(lik, np.atleast_1d(np.asarray(masses_mev, dtype=float)), cl, observed=False)


def plan_expected_g(
    plan: Plan, physics: PhysicsModel, masses_mev: ArrayLike, cl: float
) -> tuple[NDArray, dict[float, NDArray]]:
    """``(masses, {N: expected limit on g})`` with N = 0 (median), +-1, +-2 sigma."""
    lik = plan_likelihood(plan, physics)
    scan = limits(lik, np.atleast_1d(np.asarray(masses_mev, dtype=float)), cl, observed=False)
    return scan.masses_mev, {k: np.sqrt(v * lik.g2_unit) for k, v in scan.band_mu.items()}


def effective_information(
    u: NDArray, a: NDArray, b: NDArray, x: NDArray, part: NDArray
) -> tuple[NDArray, NDArray]:
    """Fisher information on g^2 per mass with each scan part's free background line
    ``b_i (1 + c0 + c1 x_i)`` profiled out, and its derivative w.r.t. each point's weight.

    ``u_i = N_i / (b_i (1 + sigma^2 N_i b_i))`` (N: POT, b: background per POT), ``a`` (M, n)
    selected signal per POT per g^2, ``x`` sqrt(s) - pivot [MeV]. Per part the information
    matrix on (g^2, c0, c1) is ``sum u J J^T`` with ``J = (a, b, b x)``; the effective one is
    its Schur complement ``I_aa - v^T C^-1 v``, whose derivative w.r.t. ``u_i`` is
    ``(a_i - b_i (beta_0 + beta_1 x_i))^2`` with ``beta = C^-1 v``.
    """
    info = np.zeros(a.shape[0])
    grad = np.zeros_like(a)
    for p in np.unique(part):
        m = part == p
        um, am, bm, xm = u[m], a[:, m], b[m], x[m]
        s_aa = np.sum(um * am * am, axis=1)
        v = np.stack([np.sum(um * am * bm, axis=1), np.sum(um * am * bm * xm, axis=1)], axis=1)
        c = np.array(
            [
                [np.sum(um * bm * bm), np.sum(um * bm * bm * xm)],
                [np.sum(um * bm * bm * xm), np.sum(um * bm * bm * xm * xm)],
            ]
        )
        c += np.eye(2) * (1e-9 * np.trace(c) + 1e-300)  # a part of one point has no slope
        beta = np.linalg.solve(c, v.T).T  # (M, 2)
        info += s_aa - np.sum(v * beta, axis=1)
        grad[:, m] = (am - bm[None, :] * (beta[:, :1] + beta[:, 1:] * xm[None, :])) ** 2
    return info, grad
