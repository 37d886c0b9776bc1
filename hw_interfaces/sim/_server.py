"""Lifecycle shared by the simulated servers: serve on 127.0.0.1 in a thread, stop, kill, revive."""

from __future__ import annotations

import socketserver
import threading
from typing import TypeVar

from .faults import Fault, FaultInjectable


def serve_in_thread(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Start ``server.serve_forever`` (polling every 50 ms) in a started daemon thread."""
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=name,
        daemon=True,
    )
    thread.start()
    return thread


_S = TypeVar("_S", bound="SimServer")


class SimServer(FaultInjectable):
    """A fault-injectable simulated server on 127.0.0.1, started and stopped in threads.

    Subclasses set ``SERVER_CLASS`` (a socketserver class with a ``sim`` attribute),
    ``HANDLER_CLASS``, ``SERVER_NAME`` (for messages) and ``THREAD_NAME``, call
    ``super().__init__()``, and may override :meth:`_on_started` (more threads, appended to
    ``self._threads``) and :meth:`_on_shutdown` (close open connections). ``self._stop`` is
    set while the server is stopped.
    """

    SERVER_CLASS: type[socketserver.TCPServer]
    HANDLER_CLASS: type[socketserver.BaseRequestHandler]
    SERVER_NAME: str = "simulator"
    THREAD_NAME: str = "sim"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: set[Fault] = set()
        self._stop = threading.Event()
        self._server: socketserver.TCPServer | None = None
        self._last_port = 0
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.SERVER_NAME} not running")
        return int(self._server.server_address[1])

    def _on_started(self) -> None:
        """Called at the end of :meth:`start`, the server running."""

    def _on_shutdown(self) -> None:
        """Called by :meth:`stop` after the server stopped serving, before its socket closes."""

    def start(self, port: int = 0) -> None:
        if self._server is not None:
            return
        self._stop.clear()
        server = self.SERVER_CLASS(("127.0.0.1", port), self.HANDLER_CLASS)
        server.sim = self  # type: ignore[attr-defined]  # the handlers reach the simulator here
        self._server = server
        self._last_port = int(server.server_address[1])
        self._threads = [serve_in_thread(server, self.THREAD_NAME)]
        self._on_started()

    def stop(self) -> None:
        """Stop threads and close the listening socket (idempotent)."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            self._on_shutdown()
            server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def revive(self) -> None:
        """Restart after :meth:`kill` (or :meth:`stop`) on the same port, faults cleared."""
        with self._lock:
            self._faults.clear()
        self.start(self._last_port)

    def kill(self) -> None:
        """The ``dead`` fault: the server disappears (connections refused)."""
        with self._lock:
            self._faults.add(Fault.DEAD)
        self.stop()

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
