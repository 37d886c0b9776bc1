"""Time: the one UTC helper and an injectable clock.

Everything that stamps a record or waits for a device takes a :class:`Clock`, so tests run
logic against :class:`ManualClock` (deterministic, no sleeping) while the control room uses
:data:`SYSTEM_CLOCK`. ``hw_interfaces`` is the lowest layer that needs time, so the helper
lives here and ``scanplan`` imports it (``beamline`` is physics and needs no clock).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def iso_utc(t: datetime | None = None, *, timespec: str = "seconds") -> str:
    """ISO 8601 UTC with a ``Z`` suffix (``2022-10-14T18:30:12Z``); ``t`` defaults to now.

    A naive ``t`` is taken as UTC. ``timespec`` as for :meth:`datetime.isoformat`.
    """
    t = utc_now() if t is None else t
    t = t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    return t.isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """Parse an ISO 8601 time (``Z`` or an offset; naive taken as UTC) into aware UTC.

    Raises ``ValueError`` on anything else, for the caller to turn into a user error.
    """
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


@runtime_checkable
class Clock(Protocol):
    """Wall time for records, monotonic time and sleeping for waits (seconds)."""

    def now(self) -> datetime:
        """Current UTC time."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for timeouts and cadences)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a fake clock advances instead)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return utc_now()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to (or when slept on): deterministic tests."""

    def __init__(self, start: datetime | None = None, monotonic_s: float = 0.0) -> None:
        self._start = start or datetime(2022, 10, 14, 18, 30, 12, tzinfo=timezone.utc)
        self._t = float(monotonic_s)
        self._t0 = float(monotonic_s)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._t - self._t0)

    def monotonic(self) -> float:
        return self._t

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._t += float(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
