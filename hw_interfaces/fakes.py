"""Deterministic in-memory fakes of the hardware seams (:mod:`hw_interfaces.protocols`).

Modelled on ophyd-async's sim backends: the same interface as the real adapters, state held
in memory, time from an injected :class:`hw_interfaces.clock.Clock` (a
:class:`~hw_interfaces.clock.ManualClock` in tests, so nothing sleeps and nothing depends on
the wall clock). Faults raise the same :class:`~hw_interfaces.errors.HardwareError`
subclasses as the adapters, with messages that name device and key:

- :class:`FakePowerSupplies`: :class:`PowerSupplySource` and :class:`SetPointWriter`
  (status, set point, readback following the set point at a slew rate, trip, communication
  error, frozen/stale, NaN, missing, corrupt, dead);
- :class:`FakeMachineState`: :class:`MachineStateSource` (BTF status, beam mode, dead);
- :class:`FakeBeamMonitor`: :class:`BeamSpotSource` (the spot from a callback, no beam,
  dropped frames, timeout, dead);
- :class:`FakeRunControl`: a :class:`RunControlFactory` with the run log RunControl keeps
  (:class:`hw_interfaces.sim.SimRun` entries; init failure, protocol error, terminate error,
  dead).

The wire protocols, decoders and timeouts of the adapters are not exercised here: those
keep their own tests against the protocol-level simulators and real servers.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .btf_records import (
    BeamMode,
    BtfStatus,
    MachineState,
    PowerSupplyReading,
    PsuState,
    check_element,
)
from .btf_setpoint import setpoint_problem
from .clock import SYSTEM_CLOCK, Clock
from .errors import (
    ConnectionFailed,
    DecodeError,
    DeviceTimeout,
    InvalidValue,
    MissingKey,
    NoBeam,
    NoData,
    StaleReading,
    WriteNotConfirmed,
)
from .fake_runcontrol import FakeRunControl, FakeRunControlSession
from .timepix import BeamSpot

__all__ = [
    "FakeBeamMonitor",
    "FakeMachineState",
    "FakePowerSupplies",
    "FakeRunControl",
    "FakeRunControlSession",
    "FakeSupply",
    "FakeWrite",
]

#: PSU faults of :meth:`FakePowerSupplies.inject` (the simulator's spellings)
PSU_FAULTS = ("trip", "comm_error", "stale", "nan", "missing", "corrupt")


@dataclass
class FakeSupply:
    """State of one fake supply (currents in A, slew in A/s, times on the clock's monotonic)."""

    element: str
    setting_a: float
    output_a: float
    status: PsuState = PsuState.OPERATIONAL
    faults: set[str] = field(default_factory=set)
    ramp_from_a: float = 0.0
    ramp_t0_s: float = 0.0
    frozen: PowerSupplyReading | None = None
    frozen_t_s: float = 0.0


@dataclass(frozen=True)
class FakeWrite:
    """One set-point write the fake accepted."""

    command_id: str
    element: str
    current_a: float


class FakePowerSupplies:
    """In-memory BTF power supplies.

    ``currents_a``: start currents (set point = output). ``slew_rate_a_per_s``: the output
    follows a new set point at this rate on the clock (None: at once). ``max_age_s``: a
    frozen record is reported stale once it is older than this (as ``BtfControls``).
    """

    def __init__(
        self,
        currents_a: Mapping[str, float],
        *,
        clock: Clock = SYSTEM_CLOCK,
        slew_rate_a_per_s: float | None = None,
        max_age_s: float = 2.0,
    ) -> None:
        self.clock = clock
        self.slew_rate_a_per_s = slew_rate_a_per_s
        self.max_age_s = max_age_s
        now = clock.monotonic()
        self.supplies = {
            check_element(e): FakeSupply(
                check_element(e), float(i), float(i), ramp_from_a=float(i), ramp_t0_s=now
            )
            for e, i in currents_a.items()
        }
        self.dead = False
        self.reads = 0
        self.writes: list[FakeWrite] = []
        self._scheduled: list[tuple[float, Callable[[], None]]] = []

    # -- what the crew / the machine does ---------------------------------------------------
    def set_currents(self, currents_a: Mapping[str, float]) -> None:
        """New set points; outputs ramp towards them."""
        now = self.clock.monotonic()
        for element, value in currents_a.items():
            s = self._supply(check_element(element))
            s.ramp_from_a, s.ramp_t0_s = self._output(s, now), now
            s.setting_a = float(value)

    def schedule(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` at the first read after ``delay_s`` on the clock (a crew acting later)."""
        self._scheduled.append((self.clock.monotonic() + delay_s, action))

    def inject(self, fault: str, element: str) -> None:
        """One of :data:`PSU_FAULTS` on ``element`` (``trip``: status 3, output 0 A, fault bit;
        ``stale``: the record freezes as it is now)."""
        if fault not in PSU_FAULTS:
            raise ValueError(f"unknown PSU fault '{fault}' (one of {', '.join(PSU_FAULTS)})")
        s = self._supply(check_element(element))
        if fault == "stale" and "stale" not in s.faults:
            s.frozen, s.frozen_t_s = self._reading(s), self.clock.monotonic()
        s.faults.add(fault)

    def clear(self) -> None:
        """Every fault cleared; a tripped supply is reset and ramps back to its set point."""
        self.dead = False
        now = self.clock.monotonic()
        for s in self.supplies.values():
            if "trip" in s.faults:
                s.ramp_from_a, s.ramp_t0_s = 0.0, now
            s.faults.clear()
            s.frozen = None

    def kill(self) -> None:
        """The control system's memcached stops answering."""
        self.dead = True

    def output_current_a(self, element: str) -> float:
        """The true output of ``element`` now [A] (what a beam sees; no fault applies)."""
        return self._output(self._supply(check_element(element)), self.clock.monotonic())

    def operational(self, element: str) -> bool:
        """``element`` delivers current (not tripped, no communication error)."""
        return not ({"trip", "comm_error"} & self._supply(check_element(element)).faults)

    # -- PowerSupplySource -----------------------------------------------------------------
    def read_power_supply(self, element: str) -> PowerSupplyReading:
        self.reads += 1
        self._run_scheduled()
        element = check_element(element)
        key = element + "_DYN"
        if self.dead:
            raise ConnectionFailed(f"{element}: fake BTF controls unreachable", device=element)
        s = self.supplies.get(element)
        if s is None or "missing" in s.faults:
            raise MissingKey(f"{element}: key '{key}' not found", device=element, key=key)
        if "corrupt" in s.faults:
            raise DecodeError(f"{element}: record '{key}' truncated", device=element, key=key)
        if "nan" in s.faults:
            raise InvalidValue(
                f"{element}: field 'outputCurr' of '{key}' is nan (not a finite number)",
                device=element,
                key=key,
            )
        if s.frozen is not None:
            age_s = self.clock.monotonic() - s.frozen_t_s
            if age_s > self.max_age_s:
                raise StaleReading(
                    f"{element}: record '{key}' unchanged for {age_s:.1f} s: publisher frozen",
                    device=element,
                    key=key,
                )
            return s.frozen
        return self._reading(s)

    # -- SetPointWriter --------------------------------------------------------------------
    def write_current_setting(
        self, element: str, current_a: float, *, confirm: Callable[[str], bool]
    ) -> str:
        element = check_element(element)
        problem = setpoint_problem(element, current_a, None)
        if problem is not None:
            raise InvalidValue(problem, device=element)
        if not confirm(f"Set {element} current to {current_a:.3f} A?"):
            raise WriteNotConfirmed(f"{element}: set-point write not confirmed", device=element)
        if self.dead:
            raise ConnectionFailed(f"{element}: fake BTF controls unreachable", device=element)
        self.set_currents({element: current_a})
        cmd_id = uuid.uuid4().hex
        self.writes.append(FakeWrite(cmd_id, element, float(current_a)))
        return cmd_id

    # -- internals -------------------------------------------------------------------------
    def _supply(self, element: str) -> FakeSupply:
        try:
            return self.supplies[element]
        except KeyError:
            raise MissingKey(f"{element}: no such fake supply", device=element) from None

    def _run_scheduled(self) -> None:
        now = self.clock.monotonic()
        due = [a for t, a in self._scheduled if t <= now]
        self._scheduled = [(t, a) for t, a in self._scheduled if t > now]
        for action in due:
            action()

    def _output(self, s: FakeSupply, now: float) -> float:
        if "trip" in s.faults:
            return 0.0
        if self.slew_rate_a_per_s is None:
            return s.setting_a
        step = self.slew_rate_a_per_s * max(0.0, now - s.ramp_t0_s)
        delta = s.setting_a - s.ramp_from_a
        return s.setting_a if abs(delta) <= step else s.ramp_from_a + math.copysign(step, delta)

    def _reading(self, s: FakeSupply) -> PowerSupplyReading:
        out = self._output(s, self.clock.monotonic())
        status = s.status
        if "trip" in s.faults:
            status = PsuState.INTERLOCK_FAULT
        elif "comm_error" in s.faults:
            status = PsuState.COMMUNICATION_ERROR
        return PowerSupplyReading(
            element=s.element,
            time_utc=self.clock.now(),
            status=status,
            status_code=status.value,
            current_setting_a=s.setting_a,
            output_current_a=out,
            output_voltage_v=0.05 * out,
            slew_rate_setting_a_per_s=self.slew_rate_a_per_s or 0.0,
            slew_rate_readout_a_per_s=self.slew_rate_a_per_s or 0.0,
            polarity_setting=1,
            output_polarity=1,
            faults=(1,) if "trip" in s.faults else (),
            error_mask=0,
            on_line=True,
            remote=True,
            busy=False,
            ramp_on=out != s.setting_a,
            age_s=0.0,
            source=f"fake://{s.element}_DYN",
        )


class FakeMachineState:
    """In-memory DAFNE/BTF machine state (:class:`MachineStateSource`): BTF on, positrons,
    49 Hz LINAC unless changed; :meth:`kill` makes it unreachable."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.btf_status = BtfStatus.ON
        self.mode = BeamMode.POSITRON
        self.linac_freq_hz: float | None = 49.0
        self.dead = False

    def kill(self) -> None:
        self.dead = True

    def read_machine_state(self) -> MachineState:
        if self.dead:
            raise ConnectionFailed("DAFNE/BTF: fake machine state unreachable", device="DAFNE/BTF")
        return MachineState(
            time_utc=self.clock.now(),
            btf_status=self.btf_status,
            dafne_status=0,
            e=None,
            p=None,
            linac_freq_hz=self.linac_freq_hz,
            mode=self.mode,
            age_s=0.0,
            source="fake://DAFNESTATE",
        )


#: a beam callback: (x_mm, y_mm, sigma_x_mm, sigma_y_mm) at the TimePix, or None (no beam)
BeamFunction = Callable[[], "tuple[float, float, float, float] | None"]


class FakeBeamMonitor:
    """In-memory TimePix: the spot from ``beam()`` with ``hits_per_frame`` hits per frame.

    Reading ``n`` frames advances the clock by ``n / frame_rate_hz``. Faults:
    :meth:`no_beam`, :meth:`drop_frames`, :meth:`slow` (DeviceTimeout), :meth:`kill`.
    """

    def __init__(
        self,
        beam: BeamFunction,
        *,
        clock: Clock = SYSTEM_CLOCK,
        n_frames: int = 10,
        timeout_s: float = 3.0,
        frame_rate_hz: float = 50.0,
        hits_per_frame: int = 400,
        min_hits: int = 20,
    ) -> None:
        self.beam = beam
        self.clock = clock
        self.n_frames = n_frames
        self.timeout_s = timeout_s
        self.frame_rate_hz = frame_rate_hz
        self.hits_per_frame = hits_per_frame
        self.min_hits = min_hits
        self.calls = 0
        self.clear()

    def clear(self) -> None:
        self.dead = self.slow_ = self.beam_off = False
        self.dropped_fraction = 0.0

    def kill(self) -> None:
        self.dead = True

    def slow(self) -> None:
        self.slow_ = True

    def no_beam(self) -> None:
        self.beam_off = True

    def drop_frames(self, fraction: float) -> None:
        """Drop this fraction of the frames (0..1)."""
        self.dropped_fraction = fraction

    def read_beam_spot(
        self, n_frames: int | None = None, timeout_s: float | None = None
    ) -> BeamSpot:
        self.calls += 1
        n = n_frames or self.n_frames
        t = self.timeout_s if timeout_s is None else timeout_s
        if self.dead:
            raise ConnectionFailed("TimePix fake: request failed after 1 attempt", device="TIMEPIX")
        if self.slow_:
            self.clock.sleep(t)
            raise DeviceTimeout(f"TimePix fake: no answer within {t:g} s", device="TIMEPIX")
        dropped = round(n * self.dropped_fraction)
        used = n - dropped
        self.clock.sleep(n / self.frame_rate_hz)
        if used <= 0:
            raise NoData(f"TimePix fake: no frame within {t:g} s ({dropped} dropped)")
        spot = None if self.beam_off else self.beam()
        if spot is None:
            raise NoBeam(
                f"TimePix fake: 0 beam hits in {used} frames (need {self.min_hits})",
                device="TIMEPIX",
            )
        x, y, sx, sy = spot
        return BeamSpot(
            time_utc=self.clock.now(),
            x_mm=x,
            y_mm=y,
            sigma_x_mm=sx,
            sigma_y_mm=sy,
            frames_used=used,
            frames_dropped=dropped,
            hits_used=used * self.hits_per_frame,
            source="fake:timepix",
        )


if TYPE_CHECKING:  # the fakes implement the seams (checked by mypy)
    from .protocols import (
        BeamSpotSource,
        MachineStateSource,
        PowerSupplySource,
        RunControlFactory,
        SetPointWriter,
    )

    _psu: PowerSupplySource = FakePowerSupplies({})
    _machine: MachineStateSource = FakeMachineState()
    _writer: SetPointWriter = FakePowerSupplies({})
    _spot: BeamSpotSource = FakeBeamMonitor(lambda: None)
    _runcontrol: RunControlFactory = FakeRunControl()
