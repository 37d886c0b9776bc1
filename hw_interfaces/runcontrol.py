"""PADME RunControl client: framed TCP protocol and the run dialogues (facts file section 6).

Every message, in both directions, is a 5-digit zero-padded ASCII byte count followed by the
text (UTF-8). Dialogues implemented by :class:`RunControlClient`:

* ``new_run``: server ``setup <name>``, ``run_types <comma list>``; client answers the type;
  server ``run_number <N>``, ``shift_crew`` (client answers), ``run_comment`` (client answers
  the start-of-run comment), ``init_start``, progress lines, then ``init_ready`` /
  ``init_fail`` / ``init_timeout``.
* ``start_run`` -> ``run_started``.
* ``stop_run`` -> ``run_comment_end`` (client answers the end-of-run comment), progress lines,
  ``terminate_ok`` / ``terminate_error``.

Every receive has a timeout (``timeout_s``; the init phase ``init_timeout_s``, the terminate
phase ``terminate_timeout_s``). An unexpected message or broken frame raises ProtocolError.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import (
    ConnectionFailed,
    DeviceTimeout,
    HardwareError,
    ProtocolError,
    RunInitFailed,
    RunInitTimeout,
    RunTerminateError,
)

DEVICE = "RunControl"
HEADER_BYTES = 5
MAX_MESSAGE_BYTES = 99999
DEFAULT_PORT = 10000


def encode_frame(text: str) -> bytes:
    """``text`` -> 5-digit length + UTF-8 bytes."""
    raw = text.encode("utf-8")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ValueError(f"RunControl message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return f"{len(raw):05d}".encode("ascii") + raw


def _recv_exact(sock: socket.socket, n: int, where: str) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            raise ConnectionFailed(
                f"{where}: connection closed by peer after {got} of {n} bytes",
                device=DEVICE,
            )
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket, where: str = DEVICE) -> str:
    """Read one framed message (the socket's timeout applies to each recv)."""
    header = _recv_exact(sock, HEADER_BYTES, where)
    if not header.isdigit():
        raise ProtocolError(
            f"{where}: broken frame header {header!r} (expected 5 ASCII digits)", device=DEVICE
        )
    body = _recv_exact(sock, int(header), where)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(
            f"{where}: frame body is not UTF-8: {body[:40]!r}", device=DEVICE
        ) from None


@dataclass
class NewRunResult:
    """What the server told us during ``new_run``."""

    run_number: int
    setup: str
    run_types: list[str]
    run_type: str
    progress: list[str] = field(default_factory=list)


@dataclass
class StopRunResult:
    progress: list[str] = field(default_factory=list)


class RunControlClient:
    """One persistent connection to the RunControl server (context manager)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = 5.0,
        init_timeout_s: float = 120.0,
        terminate_timeout_s: float = 60.0,
    ) -> None:
        self.host, self.port = host, int(port)
        self.timeout_s = timeout_s
        self.init_timeout_s = init_timeout_s
        self.terminate_timeout_s = terminate_timeout_s
        self._sock: socket.socket | None = None

    @property
    def where(self) -> str:
        return f"RunControl {self.host}:{self.port}"

    def connect(self) -> None:
        if self._sock is not None:
            return
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except TimeoutError:
            raise DeviceTimeout(
                f"{self.where}: connect timed out after {self.timeout_s:g} s", device=DEVICE
            ) from None
        except OSError as exc:
            raise ConnectionFailed(f"{self.where}: cannot connect: {exc}", device=DEVICE) from None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> RunControlClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- framing with timeouts ------------------------------------------------------------
    def send(self, text: str, command: str = "") -> None:
        self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(encode_frame(text))
        except TimeoutError:
            self.close()
            raise DeviceTimeout(
                f"{self.where}: send of '{text}' timed out", device=DEVICE, key=command or text
            ) from None
        except OSError as exc:
            self.close()
            raise ConnectionFailed(
                f"{self.where}: send of '{text}' failed: {exc}", device=DEVICE, key=command or text
            ) from None

    def receive(self, command: str, timeout_s: float | None = None) -> str:
        """Next message; DeviceTimeout/ConnectionFailed/ProtocolError name ``command``."""
        self.connect()
        assert self._sock is not None
        t = self.timeout_s if timeout_s is None else timeout_s
        self._sock.settimeout(max(t, 1e-3))
        try:
            return read_frame(self._sock, f"{self.where} ({command})")
        except TimeoutError:
            self.close()
            raise DeviceTimeout(
                f"{self.where}: no answer to '{command}' within {t:g} s", device=DEVICE, key=command
            ) from None
        except (ConnectionFailed, ProtocolError) as exc:
            self.close()
            exc.key = command
            raise
        except OSError as exc:
            self.close()
            raise ConnectionFailed(
                f"{self.where}: '{command}' failed: {exc}", device=DEVICE, key=command
            ) from None
        finally:
            if self._sock is not None:
                self._sock.settimeout(self.timeout_s)

    def _expect(self, command: str, prefix: str, timeout_s: float | None = None) -> str:
        msg = self.receive(command, timeout_s)
        if not (msg == prefix or msg.startswith(prefix + " ")):
            self.close()
            raise ProtocolError(
                f"{self.where}: during '{command}' expected '{prefix}', got '{msg}'",
                device=DEVICE,
                key=command,
            )
        return msg[len(prefix) :].strip()

    def _progress_until(
        self,
        command: str,
        done: str,
        failures: Mapping[str, tuple[type[HardwareError], str]],
        timeout_s: float,
        late: str,
    ) -> list[str]:
        """Progress messages of ``command`` until ``done``. A message in ``failures`` raises
        its error (what, then the last progress messages); no ``done`` within ``timeout_s``
        closes the connection and raises DeviceTimeout saying ``late``."""
        progress: list[str] = []
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise DeviceTimeout(f"{self.where}: {late}", device=DEVICE, key=command)
            msg = self.receive(command, left)
            if msg == done:
                return progress
            if msg in failures:
                error, what = failures[msg]
                raise error(
                    f"{self.where}: {what} ({'; '.join(progress[-3:])})",
                    device=DEVICE,
                    key=command,
                )
            progress.append(msg)

    # -- dialogues ------------------------------------------------------------------------
    def new_run(self, run_type: str, shift_crew: str, comment: str) -> NewRunResult:
        """Create and initialise a run. ``comment`` becomes the start-of-run comment (SOR).

        Raises RunInitFailed / RunInitTimeout (with the run number) on ``init_fail`` /
        ``init_timeout``; ProtocolError if ``run_type`` is not offered by the server.
        """
        cmd = "new_run"
        for name, text in (
            ("shift_crew", shift_crew),
            ("comment", comment),
            ("run_type", run_type),
        ):
            if "\n" in text and name != "comment":
                raise ValueError(f"{name} must be one line")
        self.send(cmd, cmd)
        setup = self._expect(cmd, "setup")
        types = [t.strip() for t in self._expect(cmd, "run_types").split(",") if t.strip()]
        if run_type not in types:
            self.send("error", cmd)
            self.close()
            raise ProtocolError(
                f"{self.where}: run type '{run_type}' not offered (server offers {', '.join(types)})",
                device=DEVICE,
                key=cmd,
            )
        self.send(run_type, cmd)
        number_text = self._expect(cmd, "run_number")
        try:
            run_number = int(number_text)
        except ValueError:
            self.close()
            raise ProtocolError(
                f"{self.where}: bad run number '{number_text}'", device=DEVICE, key=cmd
            ) from None
        self._expect(cmd, "shift_crew")
        self.send(shift_crew, cmd)
        self._expect(cmd, "run_comment")
        self.send(comment, cmd)
        self._expect(cmd, "init_start")
        progress = self._progress_until(
            cmd,
            "init_ready",
            {
                "init_fail": (RunInitFailed, f"run {run_number} init_fail"),
                "init_timeout": (RunInitTimeout, f"run {run_number} init_timeout"),
            },
            self.init_timeout_s,
            f"run {run_number} not initialised within {self.init_timeout_s:g} s (no init_ready)",
        )
        return NewRunResult(run_number, setup, types, run_type, progress)

    def start_run(self) -> None:
        """``start_run`` -> ``run_started``."""
        self.send("start_run", "start_run")
        self._expect("start_run", "run_started")

    def stop_run(self, end_comment: str) -> StopRunResult:
        """``stop_run`` with the end-of-run comment; TerminateError on ``terminate_error``."""
        cmd = "stop_run"
        self.send(cmd, cmd)
        self._expect(cmd, "run_comment_end")
        self.send(end_comment, cmd)
        progress = self._progress_until(
            cmd,
            "terminate_ok",
            {"terminate_error": (RunTerminateError, "terminate_error")},
            self.terminate_timeout_s,
            f"run not terminated within {self.terminate_timeout_s:g} s",
        )
        return StopRunResult(progress)
