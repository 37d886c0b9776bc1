"""Beam time: POT per point from a budget or given, hours per point from the POT rate."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScanplanError
from ..records import PotMode
from .request import PlanRequest

SECONDS_PER_HOUR = 3600.0


def pot_rate_per_hour(
    positrons_per_bunch: float, repetition_rate_hz: float, uptime: float
) -> float:
    """POT per wall-clock hour [1/h]."""
    return positrons_per_bunch * repetition_rate_hz * uptime * SECONDS_PER_HOUR


@dataclass(frozen=True)
class BeamTime:
    """POT per point, beam hours per point [h], the POT rate [1/h] and how POT was chosen."""

    pot_per_point: float
    beam_hours: float
    pot_rate_per_hour: float
    pot_mode: PotMode


def beam_time(req: PlanRequest, n_points: int) -> BeamTime:
    """Share ``req.budget_hours`` [h] equally over ``n_points`` (changeovers included), or
    take ``req.pot_per_point``: ``hours = POT / (e+/bunch * rate * uptime * 3600)``."""
    rate = pot_rate_per_hour(req.positrons_per_bunch, req.repetition_rate_hz, req.uptime_fraction)
    overhead = req.overhead_hours_per_point
    if req.budget_hours is not None:
        beam_hours = req.budget_hours / n_points - overhead
        if beam_hours <= 0:
            raise ScanplanError(
                f"budget {req.budget_hours:g} h is too small for {n_points} points: the "
                f"changeover alone takes {overhead:g} h per point ({n_points * overhead:g} h "
                "in all)"
            )
        return BeamTime(beam_hours * rate, beam_hours, rate, "budget")
    if req.pot_per_point is None:  # PlanRequest sets it whenever there is no budget
        raise ScanplanError("give POT per point or a beam-time budget")
    return BeamTime(req.pot_per_point, req.pot_per_point / rate, rate, "pot_per_point")
