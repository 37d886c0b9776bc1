"""Deterministic in-memory fake of RunControl (see :mod:`hw_interfaces.fakes`): a
:class:`~hw_interfaces.protocols.RunControlFactory` whose sessions follow the server's
dialogue rules (one current run; ``start_run`` needs an initialised run, ``stop_run`` an
active one) and keep RunControl's run log as :class:`hw_interfaces.sim.SimRun` entries."""

from __future__ import annotations

from .clock import SYSTEM_CLOCK, Clock, iso_utc
from .errors import ConnectionFailed, ProtocolError, RunInitFailed, RunTerminateError
from .runcontrol import NewRunResult, StopRunResult
from .sim.runcontrol import SimRun  # the run log entry RunControl keeps, shared with the simulator

#: faults of :meth:`FakeRunControl.inject`
RUNCONTROL_FAULTS = ("dead", "init_fail", "broken_frame", "terminate_error")


class FakeRunControl:
    """In-memory RunControl; calling it opens a session (a :class:`RunControlFactory`).

    Run numbers follow ``last_run_number``; one current run at a time, as the server.
    """

    def __init__(self, last_run_number: int = 50283, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.last_run_number = last_run_number
        self.clock = clock
        self.runs: list[SimRun] = []
        self.faults: set[str] = set()
        self.current: SimRun | None = None
        self.sessions = 0

    def inject(self, fault: str) -> None:
        if fault not in RUNCONTROL_FAULTS:
            raise ValueError(f"unknown RunControl fault '{fault}'")
        self.faults.add(fault)

    def clear(self) -> None:
        self.faults.clear()

    def __call__(self) -> FakeRunControlSession:
        return FakeRunControlSession(self)


class FakeRunControlSession:
    """One dialogue with :class:`FakeRunControl` (the :class:`RunControl` protocol)."""

    def __init__(self, server: FakeRunControl) -> None:
        self.server = server

    def __enter__(self) -> FakeRunControlSession:
        if "dead" in self.server.faults:
            raise ConnectionFailed("RunControl fake: cannot connect", device="RunControl")
        self.server.sessions += 1
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _fail_if_dead(self, command: str) -> None:
        if "dead" in self.server.faults:
            raise ConnectionFailed(f"RunControl fake: '{command}' failed", key=command)

    def new_run(self, run_type: str, shift_crew: str, comment: str) -> NewRunResult:
        srv = self.server
        self._fail_if_dead("new_run")
        if "broken_frame" in srv.faults:
            raise ProtocolError("RunControl fake: garbage frame header", key="new_run")
        number = max([srv.last_run_number, *(r.number for r in srv.runs)]) + 1
        created = self.server.clock.now()
        run = SimRun(
            number,
            f"run_{number:07d}_{created:%Y%m%d_%H%M%S}",
            run_type,
            shift_crew,
            comment,
            time_create_utc=iso_utc(created),
        )
        srv.runs.append(run)
        srv.current = run
        if "init_fail" in srv.faults:
            run.status = "INIT_ERROR"
            raise RunInitFailed(f"RunControl fake: run {number} init_fail", key="new_run")
        run.status = "INITIALIZED"
        return NewRunResult(number, "fake", [run_type], run_type)

    def start_run(self) -> None:
        self._fail_if_dead("start_run")
        run = self.server.current
        if run is None or run.status != "INITIALIZED":
            raise ProtocolError("RunControl fake: error no initialised run", key="start_run")
        run.status, run.time_start_utc = "RUNNING", iso_utc(self.server.clock.now())

    def stop_run(self, end_comment: str) -> StopRunResult:
        self._fail_if_dead("stop_run")
        run = self.server.current
        if run is None or run.status not in ("RUNNING", "INITIALIZED"):
            raise ProtocolError(
                "RunControl fake: expected 'run_comment_end', got 'error no active run'",
                key="stop_run",
            )
        run.comment_end, run.time_stop_utc = end_comment, iso_utc(self.server.clock.now())
        self.server.current = None
        if "terminate_error" in self.server.faults:
            run.status = "END_ERROR"
            raise RunTerminateError("RunControl fake: terminate_error", key="stop_run")
        run.status = "END_OK"
        return StopRunResult()
