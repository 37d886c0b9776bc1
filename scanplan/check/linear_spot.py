"""First-order model of the predicted spot around the plan point's currents.

A check predicts the TimePix spot twice: for the plan's currents and for the measured ones,
which differ from the plan by readback noise and small set-point errors (a check FAILs a
dipole readback beyond ``readback_fail_a``). Building the xtrack line for those two
predictions costs 1.5-3 s of every ``scanplan check`` process, most of it importing xtrack.

:class:`LinearSpot` holds the full model's prediction at an anchor (the plan currents) and
its derivatives with respect to each magnet current (central differences of the full model).
Within ``range_a`` of the anchor it evaluates ``value + gradient . (I - anchor)``; the
linearisation error there is checked against the full model by ``tests/test_linear_spot.py``
to stay far below the spot tolerances. The anchor is cached on disk
(:mod:`scanplan.model_cache`, keyed by lattice, settings, calibration and model sources), so
a repeated check of a point imports no xtrack. Outside the range the caller uses the full
model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from beamline.datafiles import DataModel

#: SpotPrediction fields that are inputs, not functions of the currents to linearise
EXACT_FIELDS = ("dhstb01_current_a", "dhstb02_current_a", "rel_spread")


class LinearSpot(DataModel):
    """The spot prediction at ``anchor_a`` (currents [A], one per knob in ``knobs`` order)
    with its first derivatives [field unit / A], valid within ``range_a`` [A] per knob (a
    typed record: the disk cache holds its JSON)."""

    knobs: tuple[str, ...]
    anchor_a: tuple[float, ...]
    range_a: tuple[float, ...]
    values: dict[str, float]
    gradients: dict[str, tuple[float, ...]]

    def covers(self, currents_a: Sequence[float]) -> bool:
        """True when every current is within the validity range of the anchor."""
        return all(
            abs(c - a) <= r for c, a, r in zip(currents_a, self.anchor_a, self.range_a, strict=True)
        )

    def evaluate(self, currents_a: Sequence[float]) -> dict[str, float]:
        """Linearised prediction fields (without the :data:`EXACT_FIELDS`) at ``currents_a``."""
        delta = [c - a for c, a in zip(currents_a, self.anchor_a, strict=True)]
        return {
            name: value + sum(g * d for g, d in zip(self.gradients[name], delta, strict=True))
            for name, value in self.values.items()
        }


def linearise(
    predict: Callable[[Sequence[float]], Mapping[str, float]],
    knobs: Sequence[str],
    anchor_a: Sequence[float],
    *,
    step_a: Sequence[float],
    range_a: Sequence[float],
) -> LinearSpot:
    """The :class:`LinearSpot` of ``predict`` (currents -> prediction fields) at ``anchor_a``
    from central differences with steps ``step_a`` [A] (2 x len(knobs) + 1 calls)."""
    anchor = [float(a) for a in anchor_a]
    at_anchor = {k: float(v) for k, v in predict(anchor).items() if k not in EXACT_FIELDS}
    columns: list[dict[str, float]] = []
    for i, h in enumerate(step_a):
        up, down = list(anchor), list(anchor)
        up[i] += h
        down[i] -= h
        p_up, p_down = predict(up), predict(down)
        columns.append({k: (p_up[k] - p_down[k]) / (2 * h) for k in at_anchor})
    gradients = {k: tuple(col[k] for col in columns) for k in at_anchor}
    if not all(math.isfinite(g) for grad in gradients.values() for g in grad):
        raise ValueError("the model's derivatives are not finite at the anchor")
    return LinearSpot(
        knobs=tuple(knobs),
        anchor_a=tuple(anchor),
        range_a=tuple(range_a),
        values=at_anchor,
        gradients=gradients,
    )
