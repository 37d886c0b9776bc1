"""Faults the facility simulator can inject (``FacilitySimulator.inject(fault, target)``)."""

from __future__ import annotations

import threading
from enum import Enum


class Fault(str, Enum):
    """Injectable faults; the value is the command-line spelling."""

    # power supplies (target: element name, e.g. DHSTB001) and machine-state keys
    TRIP = "trip"  #: interlock fault: status 3, output to 0 A, fault bit set
    COMM_ERROR = "comm_error"  #: status 4 (communication error)
    NAN = "nan"  #: readback and setting published as NaN
    STALE = "stale"  #: record frozen (publisher stops updating it)
    MISSING = "missing"  #: key deleted and not republished
    CORRUPT = "corrupt"  #: truncated / garbage bytes
    # TimePix (target "timepix")
    DROP_FRAMES = "drop_frames"  #: frames dropped (index gaps, DroppedFrames counter)
    NO_BEAM = "no_beam"  #: frames without beam hits
    SLOW = "slow"  #: HTTP answers later than any sane client timeout
    # RunControl (target "runcontrol")
    INIT_FAIL = "init_fail"
    INIT_TIMEOUT = "init_timeout"
    TERMINATE_ERROR = "terminate_error"
    BROKEN_FRAME = "broken_frame"  #: a garbage frame header
    HANG = "hang"  #: stops answering (client timeout)
    # any server (target "timepix" or "runcontrol")
    DEAD = "dead"  #: the server dies: listening socket closed, connections refused

    @classmethod
    def parse(cls, text: str | Fault) -> Fault:
        if isinstance(text, Fault):
            return text
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ValueError(
                f"unknown fault '{text}'; choose among {', '.join(f.value for f in cls)}"
            ) from None


PSU_FAULTS = frozenset(
    {Fault.TRIP, Fault.COMM_ERROR, Fault.NAN, Fault.STALE, Fault.MISSING, Fault.CORRUPT}
)
TIMEPIX_FAULTS = frozenset({Fault.DROP_FRAMES, Fault.NO_BEAM, Fault.SLOW, Fault.DEAD})
RUNCONTROL_FAULTS = frozenset(
    {
        Fault.INIT_FAIL,
        Fault.INIT_TIMEOUT,
        Fault.TERMINATE_ERROR,
        Fault.BROKEN_FRAME,
        Fault.HANG,
        Fault.DEAD,
    }
)


class FaultInjectable:
    """Mixin for a simulated server: the set of active faults, guarded by ``self._lock``.

    Subclasses set ``APPLICABLE_FAULTS`` and ``FAULT_TARGET`` (for messages), create
    ``self._lock`` and ``self._faults: set[Fault]``, and implement ``kill()`` (the DEAD fault).
    """

    APPLICABLE_FAULTS: frozenset[Fault] = frozenset()
    FAULT_TARGET: str = "server"
    _lock: threading.Lock
    _faults: set[Fault]

    def kill(self) -> None:  # pragma: no cover - every server implements it
        raise NotImplementedError

    def inject(self, fault: Fault | str) -> None:
        fault = Fault.parse(fault)
        if fault not in self.APPLICABLE_FAULTS:
            raise ValueError(f"fault '{fault.value}' does not apply to {self.FAULT_TARGET}")
        if fault is Fault.DEAD:
            self.kill()
            return
        with self._lock:
            self._faults.add(fault)

    def clear(self, fault: Fault | str | None = None) -> None:
        """Clear one fault or all (a dead server stays dead until it is started again)."""
        with self._lock:
            if fault is None:
                self._faults.clear()
            else:
                self._faults.discard(Fault.parse(fault))

    def has_fault(self, fault: Fault) -> bool:
        with self._lock:
            return fault in self._faults
