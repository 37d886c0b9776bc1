"""The planner's former single module, kept importable for notebooks and scripts written
against it. The code lives in :mod:`scanplan.planning` (one module per job); import from there.
"""

from __future__ import annotations

from .planning import (
    CalendarEntry,
    PlanRequest,
    Problem,
    plan_calendar,
    plan_scan,
    validate_plan,
)

__all__ = [
    "CalendarEntry",
    "PlanRequest",
    "Problem",
    "plan_calendar",
    "plan_scan",
    "validate_plan",
]
