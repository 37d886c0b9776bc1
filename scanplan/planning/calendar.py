"""When each point of a plan is taken: a changeover, then its beam hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hw_interfaces.clock import iso_utc

from ..records import Plan
from .request import start_time


@dataclass(frozen=True)
class CalendarEntry:
    """When a point is taken: changeover from ``changeover_start_h``, beam from
    ``beam_start_h`` to ``beam_end_h`` [h from the plan start], and ``start_utc`` /
    ``end_utc`` (ISO) of the beam when the plan has a start time."""

    period: int
    changeover_start_h: float
    beam_start_h: float
    beam_end_h: float
    start_utc: str | None
    end_utc: str | None


def plan_calendar(plan: Plan) -> list[CalendarEntry]:
    """Calendar of a plan: points in period order, each a changeover then its beam hours."""
    overhead = plan.inputs.overhead_hours_per_point
    start = start_time(plan.inputs.start_utc) if plan.inputs.start_utc else None
    t = 0.0
    out = []
    for p in sorted(plan.points, key=lambda q: q.period):
        c0 = t
        b0 = t + overhead
        b1 = b0 + p.hours
        t = b1
        out.append(
            CalendarEntry(
                period=p.period,
                changeover_start_h=c0,
                beam_start_h=b0,
                beam_end_h=b1,
                start_utc=iso_utc(start + timedelta(hours=b0)) if start else None,
                end_utc=iso_utc(start + timedelta(hours=b1)) if start else None,
            )
        )
    return out
