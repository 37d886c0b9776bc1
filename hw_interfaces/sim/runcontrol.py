"""Simulated PADME RunControl server (framed TCP on 127.0.0.1, facts file section 6).

Assigns run numbers (maximum + 1, starting after ``last_run_number``), names runs
``run_<7-digit number>_<YYYYmmdd_HHMMSS UTC>`` and keeps an in-memory log of runs
(:attr:`RunControlSimulator.runs`) with type, crew, start/end comments and final status
(run_status names of the PadmeDAQ schema). Faults: init_fail, init_timeout, terminate_error,
broken_frame, hang, dead.
"""

from __future__ import annotations

import logging
import socket
import socketserver
from dataclasses import dataclass

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import HardwareError
from ..runcontrol import encode_frame, read_frame
from ._server import SimServer
from .faults import RUNCONTROL_FAULTS, Fault

log = logging.getLogger(__name__)

RUN_TYPES = ("TEST", "DAQ", "COSMICS", "CALIBRATION", "RANDOM", "OTHER", "FAKE", "TESTBEAM")


@dataclass
class SimRun:
    """One run in the simulator's log."""

    number: int
    name: str
    run_type: str
    shift_crew: str
    comment_start: str
    status: str = "CREATED"
    comment_end: str = ""
    time_create_utc: str = ""
    time_start_utc: str = ""
    time_stop_utc: str = ""


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sim = self.server.sim
        sock: socket.socket = self.request
        sock.settimeout(sim.idle_timeout_s)
        sim._track(sock, True)
        try:
            while not sim._stop.is_set():
                try:
                    cmd = read_frame(sock, "runcontrol-sim")
                except (HardwareError, OSError):
                    return
                sim.session(sock, cmd)
        except (HardwareError, OSError) as exc:
            log.debug("runcontrol-sim: connection ended: %r", exc)
        finally:
            sim._track(sock, False)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    sim: RunControlSimulator


class RunControlSimulator(SimServer):
    """The simulated RunControl server; ``port`` is valid after :meth:`start`."""

    APPLICABLE_FAULTS = RUNCONTROL_FAULTS
    FAULT_TARGET = "RunControl"
    SERVER_CLASS = _Server
    HANDLER_CLASS = _Handler
    SERVER_NAME = "RunControl simulator"
    THREAD_NAME = "runcontrol-sim"

    def __init__(
        self,
        *,
        last_run_number: int = 50283,
        setup: str = "PADME_SIM",
        progress_steps: int = 3,
        step_delay_s: float = 0.01,
        idle_timeout_s: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.last_run_number = last_run_number
        self.setup = setup
        self.progress_steps = progress_steps
        self.step_delay_s = step_delay_s
        self.idle_timeout_s = idle_timeout_s
        self.runs: list[SimRun] = []
        self._conns: set[socket.socket] = set()
        self._current: SimRun | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def _on_shutdown(self) -> None:
        """Shut every open connection down, so that its handler thread ends."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(sock)

    # -- protocol -------------------------------------------------------------------------
    def _now(self) -> str:
        """Time stamp of a run record: ISO 8601 UTC from the injected clock."""
        return self.clock.now().isoformat()

    def _send(self, sock: socket.socket, text: str) -> None:
        if self.has_fault(Fault.BROKEN_FRAME):
            sock.sendall(b"XY" + text.encode())
            return
        sock.sendall(encode_frame(text))

    def _wait(self, s: float) -> bool:
        """Sleep ``s`` unless the server stops; False if it stopped."""
        return not self._stop.wait(s)

    def _send_progress(self, sock: socket.socket, template: str) -> bool:
        """Send ``template.format(board)`` for each board, ``step_delay_s`` apart; False if
        the server stopped meanwhile."""
        for i in range(self.progress_steps):
            if not self._wait(self.step_delay_s):
                return False
            self._send(sock, template.format(i))
        return True

    def session(self, sock: socket.socket, cmd: str) -> None:
        """Serve one command arriving on ``sock``."""
        if self.has_fault(Fault.HANG):
            self._stop.wait(self.idle_timeout_s)
            return
        if cmd == "new_run":
            self._new_run(sock)
        elif cmd == "start_run":
            run = self._current
            if run is None or run.status != "INITIALIZED":
                self._send(sock, "error no initialised run")
                return
            run.status, run.time_start_utc = "RUNNING", self._now()
            self._send(sock, "run_started")
        elif cmd == "stop_run":
            self._stop_run(sock)
        elif cmd == "get_state":
            run = self._current
            self._send(sock, f"state {run.status if run else 'IDLE'}")
        else:
            self._send(sock, f"error unknown command {cmd}")

    def _new_run(self, sock: socket.socket) -> None:
        with self._lock:
            number = max([self.last_run_number, *(r.number for r in self.runs)]) + 1
        self._send(sock, f"setup {self.setup}")
        self._send(sock, "run_types " + ",".join(RUN_TYPES))
        run_type = read_frame(sock, "runcontrol-sim")
        if run_type not in RUN_TYPES:
            return  # the client gave up (or sent garbage): no run is created
        self._send(sock, f"run_number {number}")
        self._send(sock, "shift_crew")
        crew = read_frame(sock, "runcontrol-sim")
        self._send(sock, "run_comment")
        comment = read_frame(sock, "runcontrol-sim")
        created = self.clock.now()
        run = SimRun(
            number,
            f"run_{number:07d}_{created:%Y%m%d_%H%M%S}",
            run_type,
            crew,
            comment,
            time_create_utc=created.isoformat(),
        )
        with self._lock:
            self.runs.append(run)
            self._current = run
        self._send(sock, "init_start")
        if not self._send_progress(sock, "init_progress board {} configured"):
            return
        if self.has_fault(Fault.INIT_FAIL):
            run.status = "INIT_ERROR"
            self._send(sock, "init_fail")
        elif self.has_fault(Fault.INIT_TIMEOUT):
            run.status = "INIT_ERROR"
            self._send(sock, "init_timeout")
        else:
            run.status = "INITIALIZED"
            self._send(sock, "init_ready")

    def _stop_run(self, sock: socket.socket) -> None:
        run = self._current
        if run is None or run.status not in ("RUNNING", "INITIALIZED"):
            self._send(sock, "error no active run")
            return
        self._send(sock, "run_comment_end")
        run.comment_end = read_frame(sock, "runcontrol-sim")
        if not self._send_progress(sock, "terminate_progress board {} stopped"):
            return
        run.time_stop_utc = self._now()
        if self.has_fault(Fault.TERMINATE_ERROR):
            run.status = "END_ERROR"
            self._send(sock, "terminate_error")
        else:
            run.status = "END_OK"
            self._send(sock, "terminate_ok")
        self._current = None
