"""Start Debian's memcached on 127.0.0.1 for the simulator (``scanplan sim``, notebooks)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

from ..errors import ConnectionFailed


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MemcachedProcess:
    """A memcached child process on 127.0.0.1 (context manager); ``port`` 0 = any free."""

    def __init__(
        self,
        port: int = 0,
        *,
        memory_mb: int = 64,
        start_timeout_s: float = 10.0,
        executable: str | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or _free_port()
        self.memory_mb = memory_mb
        self.start_timeout_s = start_timeout_s
        self.executable = executable or shutil.which("memcached") or "/usr/bin/memcached"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MemcachedProcess:
        try:
            self._proc = subprocess.Popen(
                [
                    self.executable,
                    "-l",
                    self.host,
                    "-p",
                    str(self.port),
                    "-U",
                    "0",
                    "-m",
                    str(self.memory_mb),
                    "-u",
                    "root",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise ConnectionFailed(
                f"memcached: cannot start {self.executable}: {exc}", device="memcached"
            ) from None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise ConnectionFailed(
                    f"memcached exited before listening on port {self.port}", device="memcached"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ConnectionFailed(
            f"memcached did not listen on {self.host}:{self.port} within "
            f"{self.start_timeout_s:g} s",
            device="memcached",
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> MemcachedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
