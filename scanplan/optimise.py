"""Distribute a fixed beam time over the points of a plan to maximise the expected
sensitivity in a mass window.

Variables: the beam hours ``t_i`` of the on-resonance points (control points keep theirs).
POT follow from the plan's POT rate (``target_pot / hours``). Objective: the mean (or the
maximum) over a mass grid in the window of the expected upper limit on g in the Gaussian
(Fisher) limit of the likelihood of :mod:`scanplan.sensitivity`,

    g_up(M) = sqrt(z / sqrt(F(M))),   F(M) = sum_i s_i^2 / (b_i + sigma^2 b_i^2),

which is convex in ``t`` (F is a sum of concave functions of ``t_i``). Constraints:
``sum t_i = T`` and ``t_i >= min_hours``; solved with SLSQP and analytic gradients. The
result is reported with the full Asimov limits (before, uniform, after).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import ndtri

from hw_interfaces.clock import iso_utc

from .errors import ScanplanError
from .physics.params import OptimiseObjective, load_scan_defaults
from .records import OptimisationInfo, Plan
from .sensitivity import expected_limits_from_arrays, plan_arrays, sigma_rel, signal_per_g2

OBJECTIVES = get_args(OptimiseObjective)


@dataclass(frozen=True)
class Optimisation:
    """Result: the re-allocated ``plan`` (unsealed), the window [MeV], the ``objective``,
    the window-mean and window-max expected limits on g for the input plan (``before_*``),
    the uniform allocation of the same time (``uniform_*``) and the optimum (``after_*``),
    and the ``hours`` per point of the optimum (period order)."""

    plan: Plan
    window_mev: tuple[float, float]
    objective: str
    total_hours: float
    before_mean_g: float
    before_max_g: float
    uniform_mean_g: float
    uniform_max_g: float
    after_mean_g: float
    after_max_g: float
    hours: NDArray
    converged: bool

    def summary(self) -> dict[str, Any]:
        return {
            "window_mev": list(self.window_mev),
            "objective": self.objective,
            "total_beam_hours": self.total_hours,
            "before_mean_g": self.before_mean_g,
            "before_max_g": self.before_max_g,
            "uniform_mean_g": self.uniform_mean_g,
            "uniform_max_g": self.uniform_max_g,
            "after_mean_g": self.after_mean_g,
            "after_max_g": self.after_max_g,
            "converged": self.converged,
        }


def window_masses(window_mev: tuple[float, float], n: int | None = None) -> NDArray:
    """``n`` masses [MeV] over the window (default: ``[optimise] window_masses``)."""
    n = load_scan_defaults().optimise.window_masses if n is None else n
    lo, hi = window_mev
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ScanplanError(f"mass window {lo!r}:{hi!r} MeV must be finite with low <= high")
    return np.linspace(lo, hi, n) if hi > lo else np.array([lo])


def optimise_plan(
    plan: Plan,
    window_mev: tuple[float, float],
    *,
    total_hours: float | None = None,
    objective: str | None = None,
    min_hours: float | None = None,
    n_masses: int | None = None,
    likelihood: str = "simple",
) -> Optimisation:
    """Re-allocate the on-resonance beam hours of ``plan`` to minimise the expected limit on
    g over ``window_mev`` [MeV]. ``total_hours`` [h] of beam (default: the plan's own
    on-resonance beam hours); ``objective``, ``min_hours`` [h] per point and ``n_masses`` in
    the window default to ``[optimise]`` of ``lattices/physics/scan_defaults.toml``.
    ``likelihood`` "simple" or "published": with "published" the Fisher information of the
    objective has each pass's free background line profiled out (as in PADME's published
    likelihood, :func:`scanplan.analysis.planning.effective_information`) and the reported
    before/uniform/after limits are that likelihood's (:func:`scanplan.sensitivity.expected_limits`)."""
    defaults = load_scan_defaults().optimise
    objective = defaults.objective if objective is None else objective
    min_hours = defaults.min_hours if min_hours is None else min_hours
    n_masses = defaults.window_masses if n_masses is None else n_masses
    if objective not in OBJECTIVES:
        raise ScanplanError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    model = plan.inputs.physics
    arr = plan_arrays(plan)
    pts = sorted(plan.points, key=lambda p: p.period)
    hours0 = np.array([p.hours for p in pts])
    free = ~arr.is_control
    if free.sum() < 1:
        raise ScanplanError("plan has no on-resonance points to optimise")
    if np.any(hours0[free] <= 0):
        raise ScanplanError("every on-resonance point needs beam hours > 0 to know its POT rate")
    rate = arr.pot / np.where(hours0 > 0, hours0, 1.0)  # POT per beam hour
    total = float(hours0[free].sum()) if total_hours is None else float(total_hours)
    n_free = int(free.sum())
    if not (math.isfinite(total) and total > 0):
        raise ScanplanError(f"total beam hours must be > 0, got {total_hours!r}")
    if min_hours < 0 or min_hours * n_free >= total:
        raise ScanplanError(
            f"budget {total:g} h is too small: {n_free} points need at least "
            f"{min_hours:g} h each ({min_hours * n_free:g} h)"
        )
    masses = window_masses(window_mev, n_masses)
    z = float(ndtri(1.0 - 0.5 * (1.0 - model.statistics.cl)))
    sig = sigma_rel(model)
    # per unit POT: a = selected signal per g^2 per POT, beta = background per POT
    unit = arr.with_pot(np.ones_like(arr.pot))
    a = signal_per_g2(masses, unit, model)[:, free]  # (n_mass, n_free)
    beta = arr.background_per_pot[free]
    r = rate[free]
    if not np.any(a > 0):
        raise ScanplanError("no point of the plan has signal in the window")

    if likelihood == "published":  # the free background line of each pass profiled out
        from .analysis.params import load_likelihood_config
        from .analysis.planning import effective_information

        pivot = load_likelihood_config().background.pivot_sqrt_s_mev
        on_pts = [q for q, f in zip(pts, free, strict=True) if f]
        x_bkg = np.array([q.sqrt_s_mev - pivot for q in on_pts])
        part = np.array([q.pass_index for q in on_pts])

    def fisher(x: NDArray) -> tuple[NDArray, NDArray]:
        t = x * total
        k = sig * sig * r * beta
        if likelihood == "published":
            u = r * t / (beta * (1.0 + k * t))
            f, d_info_du = effective_information(u, a, beta, x_bkg, part)
            return f, d_info_du * (r / (beta * (1.0 + k * t) ** 2)) * total
        f = np.sum(r * a * a / beta * t / (1.0 + k * t), axis=1)
        df_dt = r * a * a / beta / (1.0 + k * t) ** 2
        return f, df_dt * total  # derivative w.r.t. x

    def g_of(f: NDArray) -> NDArray:
        return math.sqrt(z) * f ** (-0.25)

    def dg(f: NDArray, dfdx: NDArray) -> NDArray:
        return (-0.25 * math.sqrt(z) * f ** (-1.25))[:, None] * dfdx

    lo_frac = min_hours / total
    bounds = [(lo_frac, 1.0)] * n_free
    x0 = np.full(n_free, 1.0 / n_free)
    cons_sum = {
        "type": "eq",
        "fun": lambda x: np.sum(x[:n_free]) - 1.0,
        "jac": lambda x: np.concatenate([np.ones(n_free), np.zeros(x.size - n_free)]),
    }
    if objective == "mean":

        def fun(x: NDArray) -> tuple[float, NDArray]:
            f, dfdx = fisher(x)
            return float(np.mean(g_of(f))), np.mean(dg(f, dfdx), axis=0)

        res = minimize(
            fun,
            x0,
            jac=True,
            bounds=bounds,
            constraints=[cons_sum],
            method="SLSQP",
            options={"maxiter": 500, "ftol": 1e-12},
        )
        x = res.x
    else:  # epigraph: minimise u subject to u >= g(M) for every window mass
        f0, _ = fisher(x0)
        y0 = np.concatenate([x0, [float(np.max(g_of(f0)))]])

        def fun_u(y: NDArray) -> tuple[float, NDArray]:
            grad = np.zeros_like(y)
            grad[-1] = 1.0
            return float(y[-1]), grad

        def ineq(y: NDArray) -> NDArray:
            f, _ = fisher(y[:-1])
            return y[-1] - g_of(f)

        def ineq_jac(y: NDArray) -> NDArray:
            f, dfdx = fisher(y[:-1])
            return np.hstack([-dg(f, dfdx), np.ones((f.size, 1))])

        res = minimize(
            fun_u,
            y0,
            jac=True,
            bounds=[*bounds, (0.0, None)],
            constraints=[cons_sum, {"type": "ineq", "fun": ineq, "jac": ineq_jac}],
            method="SLSQP",
            options={"maxiter": 500, "ftol": 1e-14},
        )
        x = res.x[:-1]
    x = np.clip(x, lo_frac, None)
    x = x / x.sum()
    hours = hours0.copy()
    hours[free] = x * total

    def limits(h: NDArray) -> tuple[float, float]:
        if likelihood == "published":
            from .sensitivity import expected_limits

            trial = plan.model_copy(
                update={
                    "points": [
                        q.model_copy(update={"target_pot": float(r * t)})
                        for q, r, t in zip(pts, rate, h, strict=True)
                    ]
                }
            )
            g = expected_limits(trial, masses, likelihood="published").g_median
        else:
            g = expected_limits_from_arrays(masses, arr.with_pot(rate * h), model).g_median
        return float(np.mean(g)), float(np.max(g))

    uniform = hours0.copy()
    uniform[free] = total / n_free
    before = limits(hours0)
    uni = limits(uniform)
    after = limits(hours)
    g_ref = model.signal.reference_coupling
    new_points = []
    for p, h, rt in zip(pts, hours, rate, strict=True):
        pot = float(rt * h)
        new_points.append(
            p.model_copy(
                update={
                    "hours": float(h),
                    "target_pot": pot,
                    "expected_signal_ref": g_ref**2
                    * pot
                    * p.signal_efficiency
                    * p.signal_yield_per_pot_g2,
                }
            )
        )
    overhead = plan.inputs.overhead_hours_per_point
    optimisation = OptimisationInfo(
        window_mev=(float(window_mev[0]), float(window_mev[1])),
        objective=objective,
        total_beam_hours=total,
        min_hours_per_point=min_hours,
        n_masses=n_masses,
        source_plan_sha256=plan.content_sha256 or plan.compute_hash(),
        before_mean_g=before[0],
        before_max_g=before[1],
        after_mean_g=after[0],
        after_max_g=after[1],
        method="SLSQP on the Fisher-limit expected g, reported with Asimov limits",
    )
    inputs = plan.inputs.model_copy(
        update={
            "pot_mode": "optimised",
            "pot_per_point": None,
            "total_hours": float(hours.sum() + overhead * len(pts)),
            "optimisation": optimisation,
        }
    )
    new_plan = plan.model_copy(
        update={
            "points": new_points,
            "inputs": inputs,
            "created_utc": iso_utc(),
            "name": (plan.name + " " if plan.name else "")
            + f"optimised {window_mev[0]:g}:{window_mev[1]:g} MeV",
            "content_sha256": "",
        }
    )
    return Optimisation(
        plan=new_plan,
        window_mev=(float(window_mev[0]), float(window_mev[1])),
        objective=objective,
        total_hours=total,
        before_mean_g=before[0],
        before_max_g=before[1],
        uniform_mean_g=uni[0],
        uniform_max_g=uni[1],
        after_mean_g=after[0],
        after_max_g=after[1],
        hours=hours,
        converged=bool(res.success),
    )
