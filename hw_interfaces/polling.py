"""Polling a condition with a bounded timeout (tests, notebooks, simulator start-up)."""

from __future__ import annotations

from collections.abc import Callable

from .clock import SYSTEM_CLOCK, Clock


def wait_until(
    predicate: Callable[[], object],
    timeout_s: float,
    interval_s: float = 0.01,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """Poll ``predicate`` every ``interval_s`` [s] until it is true or ``timeout_s`` [s] pass.

    Returns whether it became true (it is asked once more at the deadline). ``clock`` gives
    the time and the sleeping (a :class:`~hw_interfaces.clock.ManualClock` in tests).
    """
    if not (timeout_s >= 0 and interval_s > 0):
        raise ValueError(f"need timeout_s >= 0 and interval_s > 0, got {timeout_s}, {interval_s}")
    deadline = clock.monotonic() + timeout_s
    while clock.monotonic() < deadline:
        if predicate():
            return True
        clock.sleep(min(interval_s, max(0.0, deadline - clock.monotonic())))
    return bool(predicate())
