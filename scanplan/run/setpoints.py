"""Set-point steps of the guided run: approach each dipole's target from the plan's
hysteresis branch side (``beamline.hysteresis``: overshoot and minimum step), all dipoles
stepped together. Pure functions (currents in A)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..records import Point


def approach_steps(
    current_now_a: float, target_a: float, branch: str, overshoot_a: float, min_step_a: float
) -> list[float]:
    """Set points to write to reach ``target_a`` from the ``branch`` side: descending ->
    from above, ascending -> from below (overshoot first when coming from the wrong side)."""
    if not math.isfinite(current_now_a):
        return [target_a + overshoot_a, target_a] if branch == "descending" else [target_a]
    if branch == "descending" and current_now_a < target_a - min_step_a:
        return [target_a + overshoot_a, target_a]
    if branch == "ascending" and current_now_a > target_a + min_step_a:
        return [max(0.0, target_a - overshoot_a), target_a]
    return [target_a]


def combined_steps(
    now_a: Mapping[str, float],
    targets_a: Mapping[str, float],
    branch: str,
    overshoot_a: float,
    min_step_a: float,
) -> list[dict[str, float]]:
    """Steps for every element at once (element -> set point): the per-element approaches
    of :func:`approach_steps`, an element that needs fewer steps holding its target."""
    per = {
        e: approach_steps(now_a.get(e, math.nan), t, branch, overshoot_a, min_step_a)
        for e, t in targets_a.items()
    }
    n = max(len(v) for v in per.values())
    return [{e: v[min(i, len(v) - 1)] for e, v in per.items()} for i in range(n)]


def crew_steps_text(steps: list[dict[str, float]]) -> str:
    """``DHSTB001 180.629 -> 179.129 A, DHSTB002 ...``: each element's set points in order
    (the overshoot first), for the crew to dial."""
    elements = list(steps[-1])
    parts = []
    for e in elements:
        values: list[float] = []
        for step in steps:
            if not values or step[e] != values[-1]:
                values.append(step[e])
        parts.append(f"{e} " + " -> ".join(f"{v:.3f}" for v in values) + " A")
    return ", then ".join(parts) if len(steps) > 1 else " and ".join(parts)


def quad_targets_text(point: Point) -> str:
    """``QUATB001 20.870 A, ...``: the quadrupole set points of ``point`` for the crew (no
    approach recipe: the quads have no calibrated hysteresis branch)."""
    from ..check.dipoles import quadrupoles

    return ", ".join(f"{q.element} {q.planned_current_a(point):.3f} A" for q in quadrupoles())
