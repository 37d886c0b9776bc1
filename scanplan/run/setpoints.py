"""Set-point steps of the guided run: approach each dipole's target from the plan's
hysteresis branch side (``beamline.hysteresis``: overshoot and minimum step), all dipoles
stepped together. Pure functions (currents in A)."""

from __future__ import annotations

import math
from collections.abc import Mapping


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
