"""The planner's former single module, kept importable for notebooks and scripts written
against it. The code lives in :mod:`scanplan.planning` (one module per job); import from there.
"""

from __future__ import annotations

from .physics.params import PhysicsModel
from .planning import (
    CalendarEntry,
    PlanRequest,
    Problem,
    plan_calendar,
    plan_scan,
    validate_plan,
)
from .records import Plan


def plan_model(plan: Plan) -> PhysicsModel:
    """The physics model a plan was made with (``plan.inputs.physics``)."""
    return plan.inputs.physics


__all__ = [
    "CalendarEntry",
    "PlanRequest",
    "Problem",
    "plan_calendar",
    "plan_model",
    "plan_scan",
    "validate_plan",
]
