"""The settle loop's judgement (``--watch``): are the dipoles settled on the plan, steady
outside tolerance, did one come back from a trip during the watch. Pure functions of the
readings, like :mod:`.comparisons`."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hw_interfaces.btf_records import PowerSupplyReading
from hw_interfaces.errors import HardwareError

from ..records import Point
from .comparisons import Readings, hysteresis_hint
from .dipoles import dipoles
from .tolerances import CheckTolerances
from .verdict import WARN, Comparison, SettlePoll, SettleSummary


def settled(point: Point, readings: Readings, tol: CheckTolerances) -> bool:
    """Both dipoles operational, not ramping, set points on the plan and readbacks within
    ``readback_warn_a`` of them."""
    ps = tol.power_supply
    for d in dipoles():
        r = readings[d.element]
        if isinstance(r, HardwareError) or not r.ok or r.ramp_on or r.busy:
            return False
        if abs(r.current_setting_a - d.planned_current_a(point)) > ps.setpoint_fail_a:
            return False
        if abs(r.output_current_a - r.current_setting_a) > ps.readback_warn_a:
            return False
    return True


def setpoints_on_plan(point: Point, readings: Readings, tol: CheckTolerances) -> bool:
    """Both dipoles read with set points within ``setpoint_fail_a`` of the plan."""
    for d in dipoles():
        r = readings[d.element]
        if isinstance(r, HardwareError):
            return False
        limit = tol.power_supply.setpoint_fail_a
        if not abs(r.current_setting_a - d.planned_current_a(point)) <= limit:
            return False
    return True


def setpoints_of(readings: Readings) -> tuple[float, ...]:
    """The dipoles' set points [A] (NaN for one not read): to see whether the crew acts."""
    return tuple(
        math.nan if isinstance(r, HardwareError) else r.current_setting_a
        for r in (readings[d.element] for d in dipoles())
    )


def steady(previous: Readings | None, readings: Readings, tol: CheckTolerances) -> bool:
    """Both dipoles read, operational, not ramping, and each output within
    ``readback_warn_a`` of the previous poll: the readback will not move any more."""
    if previous is None:
        return False
    for d in dipoles():
        r, p = readings[d.element], previous[d.element]
        if isinstance(r, HardwareError) or isinstance(p, HardwareError):
            return False
        if not r.ok or r.ramp_on or r.busy:
            return False
        if not abs(r.output_current_a - p.output_current_a) <= tol.power_supply.readback_warn_a:
            return False
    return True


def trip_comparisons(
    point: Point, polls: Sequence[SettlePoll], readings: Readings
) -> list[Comparison]:
    """WARN for a dipole that was not operational during the watch and is now: it came back
    from a trip or reset, and its field depends on how the current was brought back."""
    out = []
    for d in dipoles():
        now = readings[d.element]
        if isinstance(now, HardwareError) or not now.ok:
            continue  # its status comparison FAILs already
        down = [
            p.poll
            for p in polls
            if isinstance(r := p.readings.get(d.element), PowerSupplyReading) and not r.ok
        ]
        if down:
            out.append(
                Comparison(
                    name=f"{d.element} hysteresis after trip",
                    measured="recovered",
                    expected="operational throughout",
                    level=WARN,
                    reason=f"{d.element} was not operational during the watch (poll "
                    f"{down[0]}): " + hysteresis_hint(d.magnet, point),
                )
            )
    return out


def settle_comparison(settle: SettleSummary) -> list[Comparison]:
    """WARN when the readbacks did not settle before the timeout."""
    if settle.settled:
        return []
    reason = (
        f"readbacks settled outside tolerance after {settle.elapsed_s:.1f} s "
        f"({settle.polls} polls): not waiting for the timeout"
        if settle.outside_tolerance
        else f"readbacks not settled within {settle.elapsed_s:.1f} s ({settle.polls} polls)"
    )
    return [
        Comparison(
            name="settled",
            measured=round(settle.elapsed_s, 3),
            expected=None,
            unit="s",
            level=WARN,
            reason=reason,
        )
    ]
