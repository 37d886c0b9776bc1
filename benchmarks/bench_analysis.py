"""Analysis speed (issue 13): ``analyse`` over 141 masses without toys (target < 10 s on 2
cores), and the batched Gauss-Newton profile scan against a generic minimiser
(scipy L-BFGS-B with numerical gradients on the same NLL), timed on a few masses in the same
run and scaled to 141."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Result, best_of


def _scan():  # type: ignore[no-untyped-def]
    from scanplan.analysis.simulate import run3_like_points, simulate_scan

    e, parts = run3_like_points()
    return simulate_scan(e, parts, 7.6e9, np.random.default_rng(1), g=4e-4, mass_mev=16.9)


def run(quick: bool = False) -> list[Result]:
    from scipy.optimize import minimize

    from scanplan.analysis.analyse import analyse_scan, default_masses_mev
    from scanplan.analysis.likelihood import Likelihood, resonance_energy_mev, scan_data
    from scanplan.analysis.limits import local_scan
    from scanplan.analysis.params import load_likelihood_config
    from scanplan.physics.params import load_physics

    scan = _scan()
    cfg = load_likelihood_config()
    masses = default_masses_mev(cfg)
    t_full = best_of(lambda: analyse_scan(scan, masses), 1 if quick else 2)
    lik = Likelihood(scan_data(scan), cfg, load_physics())
    n = lik.data.n_obs
    t_scan = best_of(lambda: local_scan(lik, masses), 3)
    # baseline: the same free fits by a generic minimiser, one mass at a time
    n_base = 2 if quick else 4
    sub = masses[:: masses.size // n_base][:n_base]
    ng, npt = lik.n_global, lik.data.n_points
    zg, zl = np.zeros((1, 6)), np.zeros((1, npt, 2))

    def f(x: np.ndarray, e_res: np.ndarray) -> float:
        th, loc = x[:ng][None], x[ng:].reshape(1, npt, 2)
        v = float(lik.nll(th, loc, e_res, n[None], zg, zl)[0])
        return v if np.isfinite(v) else 1e30

    t0 = time.perf_counter()
    nll_base = []
    for m in sub:
        e_res = resonance_energy_mev(np.array([m]))
        th0, loc0 = lik.start(n[None])
        r = minimize(f, np.concatenate([th0[0], loc0.ravel()]), args=(e_res,), method="L-BFGS-B")
        nll_base.append(r.fun)
    t_base = (time.perf_counter() - t0) / n_base * masses.size
    _, _, free, _ = local_scan(lik, sub)
    return [
        Result(
            f"analyse, {masses.size} masses, no toys (limits + significance)",
            t_full,
            "s",
            notes={"target_s": 10.0, "meets_target": t_full < 10.0, "points": npt},
        ),
        Result(
            f"profile scan of the local significance, {masses.size} masses",
            t_scan,
            "s",
            baseline_name=f"scipy L-BFGS-B, numerical gradients ({n_base} masses, scaled)",
            baseline=t_base,
            notes={
                "nll_gauss_newton_minus_lbfgsb_max": float(np.max(free.nll - np.array(nll_base))),
            },
        ),
    ]
