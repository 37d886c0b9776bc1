"""The hardware seams: what the step checker and the guided run need from the machine.

``scanplan.check`` and ``scanplan.run`` depend on these :class:`typing.Protocol` interfaces
only. Implementations: the memcached adapter :class:`hw_interfaces.btf_controls.BtfControls`
(power supplies, machine state, set-point writes), the Serval adapter
:class:`hw_interfaces.timepix.ServalBeamMonitor` (beam spot), the TCP client
:class:`hw_interfaces.runcontrol.RunControlClient` (RunControl), and the deterministic
in-memory fakes of :mod:`hw_interfaces.fakes` (tests of the logic above the adapters).

Every method raises a :class:`hw_interfaces.errors.HardwareError` subclass on a hardware
problem (dead server, stale or invalid record, no beam, ...) with a message naming device
and key; nothing else is expected by the callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from .btf_records import MachineState, PowerSupplyReading
from .runcontrol import NewRunResult, StopRunResult

# The beam-spot seam is defined beside its adapter (hw_interfaces.timepix) and re-exported
# here so that callers import every seam from one module.
from .timepix import BeamSpot, BeamSpotSource

__all__ = [
    "BeamSpot",
    "BeamSpotSource",
    "MachineStateSource",
    "PowerSupplySource",
    "RunControl",
    "RunControlFactory",
    "SetPointWriter",
]


@runtime_checkable
class PowerSupplySource(Protocol):
    """Anything that yields power-supply readings (real BTF, simulator, fake, replay).

    The source owns liveness: a record it cannot prove fresh raises
    :class:`~hw_interfaces.errors.StaleReading` (or the more specific error of an invalid
    frozen record), so callers never inspect raw records.
    """

    def read_power_supply(self, element: str) -> PowerSupplyReading: ...


@runtime_checkable
class SharedLivenessWait(Protocol):
    """A power-supply source that can prove several publishers alive in one wait (the BTF
    records carry no timestamp, so a first read waits for the bytes to change): callers
    about to read several supplies call :meth:`await_publishers` first."""

    def await_publishers(self, elements: Iterable[str]) -> None: ...


@runtime_checkable
class MachineStateSource(Protocol):
    """Anything that yields the DAFNE/BTF machine state."""

    def read_machine_state(self) -> MachineState: ...


@runtime_checkable
class SetPointWriter(Protocol):
    """Writes a current set point after ``confirm(prompt)`` said yes; returns a command id."""

    def write_current_setting(
        self, element: str, current_a: float, *, confirm: Callable[[str], bool]
    ) -> str: ...


class RunControl(Protocol):
    """One RunControl dialogue session (a context manager: connect on enter, close on exit)."""

    def __enter__(self) -> RunControl: ...

    def __exit__(self, *exc: object) -> None: ...

    def new_run(self, run_type: str, shift_crew: str, comment: str) -> NewRunResult: ...

    def start_run(self) -> None: ...

    def stop_run(self, end_comment: str) -> StopRunResult: ...


#: a factory of RunControl sessions (one connection per dialogue)
RunControlFactory = Callable[[], RunControl]
