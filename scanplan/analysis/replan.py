"""Re-planning during a scan: the points taken so far update the likelihood, and the
remaining beam time goes where it does the most good (``scanplan replan``).

1. The observed table is matched to the plan by ``period``; points in it are *taken*, the
   others *remaining*. The beam budget left is the plan's on-resonance beam hours minus the
   hours the taken points used (their POT over the plan's POT rate).
2. ``analyse`` on the taken points (published likelihood) gives the local significance
   q0(M) and the observed limits. A mass is *open* unless its observed limit already
   excludes g_ref(M), the original plan's median expected limit there.
3. Candidate points: the remaining ones and, when the local significance reaches the
   threshold of ``lattices/physics/replan.toml``, new ones at E_res(M_best) and +- half the
   combined step (skipping duplicates).
4. Beam hours t_i >= 0 of the candidates, summing to the budget, maximise
   ``sum_M w(M) Phi(Z(M) - z_disc)``, the expected discovery power for a signal g_ref(M),
   with ``w(M) ∝ open(M) exp(min(q0, cap) / 2)``, ``Z(M) = g_ref^2 sqrt(I(M))`` and the
   information ``I = sum_i N_i a_i^2 / (b_i (1 + sigma^2 N_i b_i))`` of taken (fixed POT)
   and candidate (N_i = rate t_i) points (a: selected signal per POT per g^2, b: background
   per POT, sigma: per-point systematics). SLSQP with analytic gradients; candidates below
   ``min_hours`` are stopped and the rest re-optimised.
5. The new plan: taken points (unchanged), the kept remaining points in their order with
   their new hours and POT, the new points as one more pass (descending in DHSTB01 current,
   approached from the same side), periods renumbered in that order; its inputs carry a
   :class:`ReplanInfo` with the hash chain and every change and its reason.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy.optimize import minimize
from scipy.special import ndtr

from beamline.datafiles import DataModel, load_toml_model, named_data_file
from beamline.kinematics import resonance_energy_mev

from ..errors import ScanplanError
from ..physics.lineshape import voigt_per_mev
from ..records import Plan, Point
from .analyse import analyse_scan
from .observed import ObservedScan
from .params import load_likelihood_config
from .planning import effective_information
from .replan_info import PointChange, ReplanInfo


class ObjectiveSection(DataModel):
    discovery_sigma: float = Field(gt=0)
    mass_step_mev: float = Field(gt=0)
    max_weight_q0: float = Field(ge=0)


class ExcessSection(DataModel):
    threshold_sigma: float = Field(gt=0)


class PointsSection(DataModel):
    min_hours: float = Field(ge=0)


class ReplanConfig(DataModel):
    """``lattices/physics/replan.toml``."""

    schema_version: int = Field(ge=1, le=1)
    version: str
    objective: ObjectiveSection
    excess: ExcessSection
    points: PointsSection


@functools.cache
def load_replan_config(name: str = "replan") -> ReplanConfig:
    return load_toml_model(named_data_file("replan settings", name, "physics"), ReplanConfig)


@dataclass(frozen=True)
class Replan:
    """Result of :func:`replan`: the new (unsealed) ``plan`` and its ``info``."""

    plan: Plan
    info: ReplanInfo


def _sha256_file(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def _unit_signal(points: list[Point], masses: NDArray, plan: Plan) -> NDArray:
    """Selected signal per POT per g^2 (n_mass, n_points): ``eff Y V``."""
    model = plan.inputs.physics
    e = np.array([p.e_beam_mev for p in points])
    bes = np.array([p.rel_spread for p in points])
    eff = np.array([p.signal_efficiency for p in points])
    e_res = np.array([resonance_energy_mev(float(m)) for m in masses])[:, None]
    shape = voigt_per_mev(e[None, :] - e_res, bes[None, :] * e_res, model.lorentz_gamma_mev)
    return eff[None, :] * model.signal.yield_mev * shape


def _passes_for(
    plan: Plan, taken: list[Point], remaining: list[Point], energies: list[float]
) -> list[int]:
    """The pass each new energy joins: the pass being run when the energy still lies ahead
    of it in its direction (no extra magnet cycle), else one new pass after all others."""
    desc = plan.inputs.direction == "descending"
    new_pass = max(p.pass_index for p in plan.points) + 1
    current = next((p.pass_index for p in remaining if p.kind != "control"), None)
    done = [p.e_beam_mev for p in taken if p.pass_index == current and p.kind != "control"]
    out = []
    for e in energies:
        if current is None:
            out.append(new_pass)
        elif not done or (e < min(done) if desc else e > max(done)):
            out.append(current)
        else:
            out.append(new_pass)
    return out


def _new_points(plan: Plan, energies: list[float]) -> list[Point]:
    """Points at ``energies`` [MeV] made by the planner with the plan's own settings."""
    from ..planning import PlanRequest, plan_scan

    inp = plan.inputs
    out = []
    for e in energies:
        req = PlanRequest(
            energy_range_mev=(e, e),
            control="none",
            passes=1,
            direction=inp.direction,
            bes=inp.bes,
            physics=inp.physics.name,
            lorentz_width_mev=inp.physics.signal.lorentz_width_mev,
            settings=plan.provenance.settings or None,
            quad_scaling=inp.quad_scaling,
            dhstb02_relative_offset=inp.dhstb02_relative_offset,
            extrapolate=inp.extrapolate,
            positrons_per_bunch=inp.positrons_per_bunch,
            repetition_rate_hz=inp.repetition_rate_hz,
            uptime_fraction=inp.uptime_fraction,
            overhead_hours_per_point=inp.overhead_hours_per_point,
        )
        out.append(plan_scan(req).points[0])
    return out


def replan(
    plan: Plan,
    observed: ObservedScan,
    *,
    config: ReplanConfig | None = None,
) -> Replan:
    """Re-allocate the remaining beam time of ``plan`` given the ``observed`` points."""
    cfg = config or load_replan_config()
    inp = plan.inputs
    model = inp.physics
    rate = inp.pot_rate_per_hour
    by_period = {p.period: p for p in plan.points}
    obs_periods = set(observed.periods)
    unknown = sorted(obs_periods - set(by_period))
    if unknown:
        raise ScanplanError(
            f"{observed.source}: periods {unknown} are not in the plan "
            f"(periods 0..{max(by_period)})"
        )
    pts = sorted(plan.points, key=lambda p: p.period)
    taken = [p for p in pts if p.period in obs_periods]
    remaining = [p for p in pts if p.period not in obs_periods and p.kind != "control"]
    controls_left = [p for p in pts if p.period not in obs_periods and p.kind == "control"]
    if not taken:
        raise ScanplanError(f"{observed.source}: no point of the plan has been taken yet")
    obs_rows = {r.period: r for r in observed.rows}
    budget = float(sum(p.hours for p in pts if p.kind != "control"))
    used = float(sum(obs_rows[p.period].pot / rate for p in taken if p.kind != "control"))
    left = budget - used
    if left <= cfg.points.min_hours:
        raise ScanplanError(
            f"no beam time left to re-plan: budget {budget:.1f} h, used {used:.1f} h"
        )
    # what the data say
    lo_e = min(p.e_beam_mev for p in pts if p.kind != "control")
    hi_e = max(p.e_beam_mev for p in pts if p.kind != "control")
    from .observed import sqrt_s_from_energy_mev

    m_lo, m_hi = (float(x) for x in sqrt_s_from_energy_mev(np.array([lo_e, hi_e])))
    step = cfg.objective.mass_step_mev
    masses = m_lo + step * np.arange(max(1, int((m_hi - m_lo) / step) + 1))
    ana = analyse_scan(observed, masses, physics=model)
    z_loc = ana.scan.local_significance
    g_obs = ana.g(ana.scan.observed_limit_mu)
    from ..sensitivity import expected_limits

    g_ref = expected_limits(plan, masses, likelihood="published").g_median
    is_open = g_obs >= g_ref
    q0 = np.minimum(z_loc**2, cfg.objective.max_weight_q0)
    w = np.where(is_open, np.exp(0.5 * q0), 0.0)
    if w.sum() == 0:
        w = np.ones_like(w)  # everything excluded at g_ref: keep improving everywhere
    w = w / w.sum()
    # candidates: remaining points and, around an excess, new ones
    best = int(np.argmax(z_loc))
    m_best = float(masses[best])
    added_e: list[float] = []
    if z_loc[best] >= cfg.excess.threshold_sigma:
        e0 = resonance_energy_mev(m_best)
        half = 0.5 * inp.combined_step_mev
        tol = inp.duplicate_tolerance_mev
        existing = [p.e_beam_mev for p in pts]
        for e in (e0 - half, e0, e0 + half):
            if lo_e - half <= e <= hi_e + half and all(abs(e - x) > tol for x in existing):
                added_e.append(float(e))
    added = _new_points(plan, added_e)
    added_pass = _passes_for(plan, taken, remaining, added_e)
    added = [p.model_copy(update={"pass_index": k}) for p, k in zip(added, added_pass, strict=True)]
    cand = remaining + added
    sig2 = model.systematics.pot_rel**2 + model.systematics.background_rel**2
    z_disc = cfg.objective.discovery_sigma
    pivot = load_likelihood_config().background.pivot_sqrt_s_mev
    taken_on = [p for p in taken if p.kind != "control"]
    a_all = _unit_signal(taken_on + cand, masses, plan)
    b_t = np.array([obs_rows[p.period].bkg_per_pot for p in taken_on])
    n_t = np.array([obs_rows[p.period].pot for p in taken_on])
    b_c = np.array([p.background_per_pot for p in cand])
    b_all = np.concatenate([b_t, b_c])
    x_all = np.array([p.sqrt_s_mev - pivot for p in taken_on + cand])
    part_all = np.array([p.pass_index for p in taken_on + cand])
    u_t = n_t / (b_t * (1.0 + sig2 * n_t * b_t))
    k_t = len(taken_on)
    g2 = g_ref**2

    def power(t: NDArray) -> tuple[float, NDArray]:
        n = rate * t
        u_c = n / (b_c * (1.0 + sig2 * n * b_c))
        du_dt = rate / (b_c * (1.0 + sig2 * n * b_c) ** 2)
        info, d_info_du = effective_information(
            np.concatenate([u_t, u_c]), a_all, b_all, x_all, part_all
        )
        info = np.maximum(info, 1e-300)
        z = g2 * np.sqrt(info)
        pw = ndtr(z - z_disc)
        dz = (g2 / (2.0 * np.sqrt(info)))[:, None] * d_info_du[:, k_t:] * du_dt[None, :]
        phi = np.exp(-0.5 * (z - z_disc) ** 2) / math.sqrt(2.0 * math.pi)
        return float(np.sum(w * pw)), np.sum((w * phi)[:, None] * dz, axis=0)

    def optimise(active: NDArray) -> NDArray:
        k = int(active.sum())
        t = np.zeros(len(cand))
        if k == 0:
            return t
        x0 = np.full(k, left / k)

        def fun(x: NDArray) -> tuple[float, NDArray]:
            tt = np.zeros(len(cand))
            tt[active] = x
            p, g = power(tt)
            return -p / 1.0, -g[active]

        res = minimize(
            fun,
            x0,
            jac=True,
            bounds=[(0.0, left)] * k,
            constraints=[
                {"type": "eq", "fun": lambda x: np.sum(x) - left, "jac": lambda x: np.ones_like(x)}
            ],
            method="SLSQP",
            options={"maxiter": 300, "ftol": 1e-12},
        )
        t[active] = np.clip(res.x, 0.0, None)
        return t * (left / t.sum()) if t.sum() > 0 else t

    active = np.ones(len(cand), dtype=bool)
    t = optimise(active)
    for _ in range(len(cand)):  # stop the points below the floor, re-optimise the rest
        low = active & (t < cfg.points.min_hours)
        if not low.any():
            break
        active &= ~low
        t = optimise(active)
    t_before = np.array([p.hours for p in remaining] + [0.0] * len(added))
    p_before = power(t_before * (left / t_before.sum()) if t_before.sum() > 0 else t_before)[0]
    p_after = power(t)[0]
    return _assemble(plan, observed, cfg, taken, remaining, added, controls_left, t, active, {
        "budget": budget, "used": used, "left": left, "m_best": m_best,
        "z_best": float(z_loc[best]), "open": int(is_open.sum()), "masses": int(masses.size),
        "p_before": p_before, "p_after": p_after,
    })  # fmt: skip


def _assemble(
    plan: Plan,
    observed: ObservedScan,
    cfg: ReplanConfig,
    taken: list[Point],
    remaining: list[Point],
    added: list[Point],
    controls_left: list[Point],
    t: NDArray,
    active: NDArray,
    num: dict[str, Any],
) -> Replan:
    """The new plan from the allocation ``t`` [h] of ``remaining + added`` (see module)."""
    inp = plan.inputs
    rate = inp.pot_rate_per_hour
    g_ref = inp.physics.signal.reference_coupling
    obs_rows = {r.period: r for r in observed.rows}
    changes: list[PointChange] = []
    ordered: list[tuple[Point, PointChange]] = []

    def with_hours(p: Point, hours: float, pot: float) -> Point:
        return p.model_copy(
            update={
                "hours": hours,
                "target_pot": pot,
                "expected_signal_ref": g_ref**2
                * pot
                * p.signal_efficiency
                * p.signal_yield_per_pot_g2,
            }
        )

    def change(action: str, p: Point, before: float, after: float, reason: str) -> PointChange:
        old = None if action == "added" else p.period
        return PointChange(
            action=action,
            old_period=old,
            new_period=None,
            e_beam_mev=p.e_beam_mev,
            hours_before=before,
            hours_after=after,
            reason=reason,
        )

    for p in taken:
        pot = obs_rows[p.period].pot
        why = f"in the observed table with {pot:.3g} POT"
        ordered.append(
            (with_hours(p, pot / rate, pot), change("taken", p, p.hours, pot / rate, why))
        )
    later = sorted(
        [(p, i) for i, p in enumerate(remaining)] + [(p, -1) for p in controls_left],
        key=lambda x: x[0].period,
    )
    for p, i in later:
        if i < 0:
            ordered.append((p, change("kept", p, p.hours, p.hours, "control point, unchanged")))
        elif not active[i]:
            why = (
                f"less than {cfg.points.min_hours:g} h of beam would go there: its masses are "
                "excluded already or better served by other points"
            )
            changes.append(change("stopped", p, p.hours, 0.0, why))
        else:
            h = float(t[i])
            more = "more" if h > p.hours * 1.05 else "less" if h < p.hours * 0.95 else "as much"
            why = f"{more} beam: expected discovery power over the open masses"
            ordered.append((with_hours(p, h, rate * h), change("kept", p, p.hours, h, why)))
    for j, p in enumerate(added):
        i = len(remaining) + j
        if active[i]:
            h = float(t[i])
            why = (
                f"near the best-fit mass {num['m_best']:.3f} MeV (local significance "
                f"{num['z_best']:.2f} sigma), pass {p.pass_index}"
            )
            ordered.append((with_hours(p, h, rate * h), change("added", p, 0.0, h, why)))
    # execution order: the taken points, then each pass in plan order with its points in
    # the pass direction (the added ones slotted in by DHSTB01 current), control block kept
    # where it was relative to the passes
    n_taken = len(taken)
    head, tail = ordered[:n_taken], ordered[n_taken:]
    desc = inp.direction == "descending"
    first_period = {p.pass_index: p.period for p in sorted(plan.points, key=lambda q: -q.period)}
    tail.sort(
        key=lambda pc: (
            first_period.get(pc[0].pass_index, 10**9),
            -pc[0].dhstb01_current_a if desc else pc[0].dhstb01_current_a,
        )
    )
    ordered = head + tail
    points = []
    for k, (p, ch) in enumerate(ordered):
        points.append(p.model_copy(update={"period": k}))
        changes.append(ch.model_copy(update={"new_period": k}))
    parent = plan.content_sha256 or plan.compute_hash()
    old_chain = inp.replan.chain if inp.replan is not None else []
    info = ReplanInfo(
        parent_sha256=parent,
        chain=[*old_chain, parent],
        observed_source=observed.source,
        observed_sha256=_sha256_file(observed.source),
        config_version=cfg.version,
        budget_hours=num["budget"],
        used_hours=num["used"],
        remaining_hours=num["left"],
        best_mass_mev=num["m_best"],
        max_local_significance=num["z_best"],
        open_masses=num["open"],
        masses=num["masses"],
        power_before=num["p_before"],
        power_after=num["p_after"],
        changes=sorted(changes, key=lambda c: (c.new_period is None, c.new_period or 0)),
    )
    overhead = inp.overhead_hours_per_point
    new_inputs = inp.model_copy(
        update={
            "pot_mode": "optimised",
            "pot_per_point": None,
            "total_hours": float(sum(p.hours + overhead for p in points)),
            "replan": info,
        }
    )
    from hw_interfaces.clock import iso_utc, utc_now

    new_plan = plan.model_copy(
        update={
            "points": points,
            "inputs": new_inputs,
            "created_utc": iso_utc(utc_now()),
            "name": (plan.name + " " if plan.name else "") + f"replanned after {len(taken)} points",
            "content_sha256": "",
        }
    )
    return Replan(new_plan, info)
