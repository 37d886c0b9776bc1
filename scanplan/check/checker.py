"""The step checker: is the machine where the plan says, and does the beam land where the
model says for the currents actually measured?

:class:`Checker` reads the two dipoles through a :class:`PowerSupplySource` and the TimePix
through a :class:`BeamSpotSource` (protocols of :mod:`hw_interfaces.protocols`; the sources
own liveness and staleness), predicts the spot with a :class:`SpotPredictor`, and returns a
:class:`Verdict` as data. It writes nothing: :class:`scanplan.check.recorder.CheckRecorder`
records the verdict and its readings. Time comes from an injected
:class:`hw_interfaces.clock.Clock`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from hw_interfaces.btf_records import PowerSupplyReading
from hw_interfaces.clock import SYSTEM_CLOCK, Clock
from hw_interfaces.errors import HardwareError
from hw_interfaces.protocols import BeamSpotSource, PowerSupplySource, SharedLivenessWait
from hw_interfaces.timepix import BeamSpot

from ..records import Plan, Point
from .comparisons import (
    Readings,
    energy_comparison,
    model_comparisons,
    predictions,
    psu_comparisons,
    quad_comparisons,
    spot_comparisons,
    unchecked_comparisons,
)
from .dipoles import Magnet, dipoles, magnets
from .predictor import SpotPredictor
from .settle import (
    setpoints_of,
    setpoints_on_plan,
    settle_comparison,
    settled,
    steady,
    trip_comparisons,
)
from .tolerances import CheckTolerances
from .verdict import (
    OK,
    TIMEPIX,
    Comparison,
    Prediction,
    PsuReading,
    ReadError,
    SettlePoll,
    SettleSummary,
    SpotReading,
    SpotRecord,
    Verdict,
    stamp,
    worst,
)

PollCallback = Callable[[SettlePoll], None]


class Checker:
    """Checks plan points against the machine (see the module docstring).

    ``psu``: the dipoles' :class:`PowerSupplySource`; ``spot``: a :class:`BeamSpotSource` or
    None (no TimePix comparisons); ``predictor``: a :class:`SpotPredictor` or None (no model
    comparisons); ``tolerances``: default the shipped file.
    """

    def __init__(
        self,
        *,
        psu: PowerSupplySource,
        spot: BeamSpotSource | None = None,
        predictor: SpotPredictor | None = None,
        tolerances: CheckTolerances | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.psu = psu
        self.spot_source = spot
        self.predictor = predictor
        self.tol = tolerances or CheckTolerances.load()
        self.clock = clock

    # -- reads ----------------------------------------------------------------------------
    def read_psu(self, element: str) -> PowerSupplyReading:
        """One power-supply reading (HardwareError when it cannot be read)."""
        return self.psu.read_power_supply(element)

    def read_dipoles(self) -> dict[str, PowerSupplyReading | HardwareError]:
        """Both dipoles; an unreadable one maps to its error."""
        return self._read(dipoles())

    def read_magnets(self) -> dict[str, PowerSupplyReading | HardwareError]:
        """The dipoles and the quadrupoles QUATB001..4; an unreadable one maps to its error."""
        return self._read(magnets())

    def _read(self, which: tuple[Magnet, ...]) -> dict[str, PowerSupplyReading | HardwareError]:
        if isinstance(self.psu, SharedLivenessWait):
            # first reads prove each publisher alive: one shared wait, not one per supply
            self.psu.await_publishers(d.element for d in which)
        out: dict[str, PowerSupplyReading | HardwareError] = {}
        for d in which:
            try:
                out[d.element] = self.read_psu(d.element)
            except HardwareError as exc:
                # kept as a value: drop the traceback, whose frames would pin the adapter's
                # buffers until the cyclic garbage collector runs
                out[d.element] = exc.with_traceback(None)
        return out

    def _records(self, readings: Readings) -> dict[str, PsuReading]:
        now = stamp(self.clock.now())
        return {
            e: ReadError.of(e, r, now) if isinstance(r, HardwareError) else r
            for e, r in readings.items()
        }

    def _read_spot(self, n_frames: int | None) -> BeamSpot | HardwareError:
        assert self.spot_source is not None
        st = self.tol.spot
        try:
            return self.spot_source.read_beam_spot(n_frames or st.n_frames, st.frames_timeout_s)
        except HardwareError as exc:
            return exc.with_traceback(None)  # see read_dipoles

    # -- settle ---------------------------------------------------------------------------
    def wait_settled(
        self,
        point: Point,
        *,
        timeout_s: float | None = None,
        on_poll: PollCallback | None = None,
    ) -> tuple[SettleSummary, tuple[SettlePoll, ...]]:
        """Poll the dipoles until set points match the plan and readbacks are within
        ``readback_warn_a`` of them, not ramping, for ``settle.stable_polls`` polls in a row,
        or until ``timeout_s`` (default ``settle.timeout_s``). Stops early when the readbacks
        have settled outside tolerance (operational, not ramping, steady within
        ``readback_warn_a`` poll to poll, but off the plan: for ``steady_outside_s`` with the
        set points on the plan, for ``wrong_setpoint_wait_s`` with a set point off it that
        nobody changes): waiting longer would not change the verdict. Returns the summary and the polls (their readings are
        recorded with the verdict)."""
        st = self.tol.settle
        timeout = st.timeout_s if timeout_s is None else timeout_s
        t0 = self.clock.monotonic()
        stable = outside = 0
        previous: Readings | None = None
        changed_at = outside_since = t0  # set points last changed (the crew acting)
        polls: list[SettlePoll] = []
        while True:
            readings = self.read_dipoles()
            now = self.clock.monotonic()
            ok = settled(point, readings, self.tol)
            stable = stable + 1 if ok else 0
            if previous is not None and setpoints_of(previous) != setpoints_of(readings):
                changed_at = now
            outside = outside + 1 if not ok and steady(previous, readings, self.tol) else 0
            if outside <= 1:
                outside_since = now  # the first poll of this steady stretch
            previous = readings
            elapsed = now - t0
            poll = SettlePoll(
                poll=len(polls), elapsed_s=elapsed, stable=stable, readings=self._records(readings)
            )
            polls.append(poll)
            if on_poll is not None:
                on_poll(poll)
            # settled outside tolerance: steady for stable_polls polls in a row (stable_polls
            # - 1 comparisons with the previous poll) with the set points on the plan, or a
            # steady set point off the plan nobody changed for wrong_setpoint_wait_s
            steady_off = outside >= max(1, st.stable_polls - 1)
            off = steady_off and (
                now - outside_since >= st.steady_outside_s
                if setpoints_on_plan(point, readings, self.tol)
                else now - changed_at >= st.wrong_setpoint_wait_s
            )
            if stable >= st.stable_polls or off or elapsed >= timeout:
                summary = SettleSummary(
                    settled=stable >= st.stable_polls,
                    elapsed_s=elapsed,
                    polls=len(polls),
                    outside_tolerance=off and stable < st.stable_polls,
                )
                return summary, tuple(polls)
            self.clock.sleep(min(st.poll_interval_s, max(0.0, timeout - elapsed)))

    # -- check ----------------------------------------------------------------------------
    def check(
        self,
        plan: Plan,
        period: int,
        *,
        watch: bool = False,
        settle_timeout_s: float | None = None,
        n_frames: int | None = None,
        on_poll: PollCallback | None = None,
    ) -> Verdict:
        """Check plan point ``period`` now (after settling if ``watch``). Hardware problems
        are FAIL comparisons; an unknown period raises ScanplanError."""
        t_start = self.clock.monotonic()
        point = plan.point(period)
        settle: SettleSummary | None = None
        polls: tuple[SettlePoll, ...] = ()
        if watch:
            settle, polls = self.wait_settled(point, timeout_s=settle_timeout_s, on_poll=on_poll)
        readings = self.read_magnets()
        comparisons: list[Comparison] = psu_comparisons(point, readings, self.tol)
        comparisons += quad_comparisons(point, readings, self.tol)
        if settle is not None:
            comparisons += settle_comparison(settle)
            comparisons += trip_comparisons(point, polls, readings)
        comparisons += energy_comparison(
            point, readings, self.tol, extrapolate=plan.inputs.extrapolate
        )
        spot_record: SpotReading | None = None
        prediction: Prediction | None = None
        model_failures: list[Comparison] = []
        if self.predictor is not None:
            prediction, model_failures = predictions(point, readings, self.predictor, self.tol)
        if self.spot_source is not None:
            spot = self._read_spot(n_frames)
            spot_record = (
                ReadError.of(TIMEPIX, spot, stamp(self.clock.now()))
                if isinstance(spot, HardwareError)
                else SpotRecord.of(spot)
            )
            comparisons += spot_comparisons(spot, self.tol)
            if prediction is not None:
                comparisons += model_failures
                if not isinstance(spot, HardwareError):
                    comparisons += model_comparisons(spot, prediction, self.tol)
        comparisons += unchecked_comparisons(
            spot=self.spot_source is not None, model=self.predictor is not None
        )
        return Verdict(
            check_id=uuid.uuid4().hex,
            plan_sha256=plan.content_sha256 or plan.compute_hash(),
            period=period,
            time_utc=stamp(self.clock.now()),
            level=worst(c.level for c in comparisons),
            comparisons=tuple(comparisons),
            reasons=tuple(c.reason for c in comparisons if c.level != OK and c.reason),
            readings=self._records(readings),
            spot=spot_record,
            prediction=prediction,
            settle=settle,
            elapsed_s=self.clock.monotonic() - t_start,
            tolerances_version=self.tol.version,
            settle_polls=polls,
        )
