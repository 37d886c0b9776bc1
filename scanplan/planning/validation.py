"""Checks of a (hash-verified) plan: periods, currents, kinematics, duplicates, the spacing
rule, hysteresis monotonicity of every pass and control-point distance. Each check is one
function of the points in period order; :func:`validate_plan` runs them all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from beamline import calibration as cal
from beamline.kinematics import sqrt_s_mev
from beamline.names import MAGNETS

from ..physics.lineshape import line_fwhm_mev
from ..records import Plan, PlanInputs, Point


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`validate_plan`: ``level`` "error" or "warning", ``check`` the
    rule ("periods", "currents", "spacing", "hysteresis", "duplicates", "kinematics",
    "control"), ``period`` (None for plan-level findings) and a one-line ``message``."""

    level: str
    check: str
    period: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _calibration_for_label(label: str) -> cal.LinearExcitation | None:
    name = label.split("@", 1)[0]
    return cal.dipole_calibrations().calibrations.get(name)


def _periods(pts: list[Point]) -> Iterator[Problem]:
    periods = [p.period for p in pts]
    if periods != list(range(len(pts))):
        dup = sorted({x for x in periods if periods.count(x) > 1})
        yield Problem(
            "error",
            "periods",
            None,
            f"periods must be 0..{len(pts) - 1} without gaps or repeats"
            + (f" (repeated: {dup})" if dup else ""),
        )


def _currents(pts: list[Point], extrapolate: bool) -> Iterator[Problem]:
    """Supply limits of every magnet and the trusted range of the DHSTB01 calibration."""
    for p in pts:
        for magnet in MAGNETS:
            current = p.current_a(magnet)
            lo, hi = cal.magnet_spec(magnet).current_limits_a
            if not (lo <= current <= hi):
                yield Problem(
                    "error",
                    "currents",
                    p.period,
                    f"{magnet} {current:.3f} A is outside the supply range {lo:g}..{hi:g} A",
                )
        curve = _calibration_for_label(p.calibration)
        if curve is None:
            yield Problem(
                "warning",
                "currents",
                p.period,
                f"calibration {p.calibration} is not in the current calibration data",
            )
        elif curve.is_extrapolation(p.dhstb01_current_a):
            lo, hi = curve.valid_current_a
            yield Problem(
                "warning" if extrapolate else "error",
                "currents",
                p.period,
                f"DHSTB01 {p.dhstb01_current_a:.3f} A is outside the trusted range "
                f"{lo:g}..{hi:g} A of {p.calibration}"
                + (" (extrapolated on request)" if extrapolate else ""),
            )


def _kinematics(pts: list[Point]) -> Iterator[Problem]:
    for p in pts:
        expect = sqrt_s_mev(p.e_beam_mev)
        if abs(p.sqrt_s_mev - expect) > 1e-6 * expect:
            yield Problem(
                "error",
                "kinematics",
                p.period,
                f"sqrt_s {p.sqrt_s_mev:.6f} MeV does not match E_beam "
                f"{p.e_beam_mev:.3f} MeV (expected {expect:.6f})",
            )


def _duplicates(by_e: list[Point], tol_mev: float) -> Iterator[Problem]:
    for a, b in pairwise(by_e):
        if b.e_beam_mev - a.e_beam_mev < tol_mev:
            yield Problem(
                "error",
                "duplicates",
                b.period,
                f"periods {a.period} and {b.period} are {b.e_beam_mev - a.e_beam_mev:.3f} MeV "
                f"apart (< {tol_mev:g} MeV): duplicate point",
            )


def _spacing(on: list[Point], inputs: PlanInputs) -> Iterator[Problem]:
    """The spacing rule over the on-resonance points (sorted in energy)."""
    model = inputs.physics
    fraction = inputs.step_fraction
    centre_width = None
    if inputs.width_reference == "centre" and on:
        mid = 0.5 * (on[0].e_beam_mev + on[-1].e_beam_mev)
        near = min(on, key=lambda p: abs(p.e_beam_mev - mid))
        centre_width = line_fwhm_mev(mid, near.rel_spread, model)
    for a, b in pairwise(on):
        if centre_width is not None:
            allowed = fraction * centre_width
        else:
            allowed = fraction * min(
                line_fwhm_mev(a.e_beam_mev, a.rel_spread, model),
                line_fwhm_mev(b.e_beam_mev, b.rel_spread, model),
            )
        gap = b.e_beam_mev - a.e_beam_mev
        if gap > allowed * (1 + 1e-6):
            yield Problem(
                "error",
                "spacing",
                b.period,
                f"gap {gap:.3f} MeV between {a.e_beam_mev:.3f} and {b.e_beam_mev:.3f} MeV "
                f"exceeds {fraction:g} x line FWHM = {allowed:.3f} MeV",
            )


def _hysteresis(pts: list[Point]) -> Iterator[Problem]:
    """Every pass monotone in DHSTB01 current, on one branch, in contiguous periods."""
    passes: dict[int, list[Point]] = {}
    for p in pts:
        passes.setdefault(p.pass_index, []).append(p)
    for k, members in sorted(passes.items()):
        branches = {p.branch for p in members}
        if len(branches) != 1 or "unknown" in branches:
            yield Problem(
                "error",
                "hysteresis",
                members[0].period,
                f"pass {k} mixes or lacks branches: {sorted(branches)}",
            )
            continue
        branch = branches.pop()
        per = [p.period for p in members]
        if per != list(range(per[0], per[0] + len(per))):
            yield Problem(
                "error",
                "hysteresis",
                members[0].period,
                f"pass {k} is interrupted by other passes (periods {per})",
            )
        for a, b in pairwise(members):
            ok = (
                b.dhstb01_current_a < a.dhstb01_current_a
                if branch == "descending"
                else b.dhstb01_current_a > a.dhstb01_current_a
            )
            if not ok:
                yield Problem(
                    "error",
                    "hysteresis",
                    b.period,
                    f"pass {k} is {branch} but DHSTB01 goes {a.dhstb01_current_a:.3f} -> "
                    f"{b.dhstb01_current_a:.3f} A at period {b.period}",
                )


def _controls(pts: list[Point], on: list[Point], inputs: PlanInputs) -> Iterator[Problem]:
    """Control points clear of the scanned range by the minimum number of line FWHM."""
    if not on:
        return
    lo_e, hi_e = on[0].e_beam_mev, on[-1].e_beam_mev
    n_fwhm = inputs.control_min_distance_fwhm
    for p in pts:
        if p.kind != "control":
            continue
        dist = max(lo_e - p.e_beam_mev, p.e_beam_mev - hi_e)
        need = n_fwhm * line_fwhm_mev(p.e_beam_mev, p.rel_spread, inputs.physics)
        if dist < need:
            yield Problem(
                "warning",
                "control",
                p.period,
                f"control point {p.e_beam_mev:.2f} MeV is only {dist:.2f} MeV from the "
                f"scanned range (< {n_fwhm:g} line FWHM = {need:.2f} MeV)",
            )


def validate_plan(plan: Plan) -> list[Problem]:
    """Check a (hash-verified) plan: period numbering, supply and calibration current
    limits, the spacing rule, hysteresis monotonicity of every pass, duplicate points,
    sqrt(s) consistency and control-point distance. Returns every problem found."""
    inputs = plan.inputs
    pts = sorted(plan.points, key=lambda p: p.period)
    if not pts:
        return [Problem("error", "periods", None, "plan has no points")]
    by_e = sorted(pts, key=lambda p: p.e_beam_mev)
    on = [p for p in by_e if p.kind == "on_resonance"]
    return [
        *_periods(pts),
        *_currents(pts, inputs.extrapolate),
        *_kinematics(pts),
        *_duplicates(by_e, inputs.duplicate_tolerance_mev),
        *_spacing(on, inputs),
        *_hysteresis(pts),
        *_controls(pts, on, inputs),
    ]
