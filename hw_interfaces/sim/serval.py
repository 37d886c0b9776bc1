"""Serval-style TimePix HTTP server (ThreadingHTTPServer on 127.0.0.1).

Endpoints: ``GET /dashboard``, ``GET /measurement/start``, ``GET /measurement/stop``,
``GET|PUT /detector/config``, ``GET /detector/info``, ``GET /detector/layout``,
``PUT /server/destination`` (stored, not used) and the simulator's frame endpoint
``GET /measurement/frames?since=K&max=M`` (format in :mod:`hw_interfaces.timepix`).

While recording, a thread produces frames at ``frame_rate_hz``: Poisson(``hits_per_frame``)
beam hits drawn from ``beam_position_fn() -> (x_mm, y_mm, sigma_x_mm, sigma_y_mm)`` (the
scanplan layer plugs the beam-line model in here), uniform noise hits and hot pixels that
fire ``hot_pixel_count`` times per frame. Frames are kept in a ring buffer of ``buffer_frames``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..timepix import IDLE, RECORDING, Frame, TimepixGeometry
from ._http import JsonHandler, JsonHTTPServer
from ._server import SimServer
from .faults import TIMEPIX_FAULTS, Fault

log = logging.getLogger(__name__)

BeamPositionFn = Callable[[], tuple[float, float, float, float]]


def default_beam() -> tuple[float, float, float, float]:
    """A beam at the centre, 2 x 1.5 mm rms (used when no model is plugged in)."""
    return (0.0, 0.0, 2.0, 1.5)


class _Server(JsonHTTPServer):
    sim: ServalSimulator


class _Handler(JsonHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("serval-sim: " + format, *args)

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        if sim.has_fault(Fault.SLOW):
            time.sleep(sim.slow_delay_s)
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        try:
            code, doc = sim.handle(method, url.path, query, self._body())
        except ValueError as exc:
            code, doc = 400, {"error": str(exc)}
        try:
            self.send_json(code, doc)
        except OSError:  # client went away (timeout): nothing to do
            pass

    def _body(self) -> Any:
        raw = self.read_body()
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError("body is not JSON") from None

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")


class ServalSimulator(SimServer):
    """The simulated TimePix readout server; ``url`` is valid after :meth:`start`."""

    APPLICABLE_FAULTS = TIMEPIX_FAULTS
    FAULT_TARGET = "the TimePix server"
    SERVER_CLASS = _Server
    HANDLER_CLASS = _Handler
    SERVER_NAME = "Serval simulator"
    THREAD_NAME = "serval-sim-http"

    def __init__(
        self,
        beam_position_fn: BeamPositionFn | None = None,
        *,
        geometry: TimepixGeometry | None = None,
        frame_rate_hz: float = 20.0,
        hits_per_frame: float = 400.0,
        noise_hits_per_frame: float = 5.0,
        hot_pixels: int = 4,
        hot_pixel_count: int = 50,
        drop_probability: float = 0.5,
        buffer_frames: int = 200,
        slow_delay_s: float = 3.0,
        autostart_measurement: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.beam_position_fn = beam_position_fn or default_beam
        self.geometry = geometry or TimepixGeometry()
        self.frame_rate_hz = frame_rate_hz
        self.hits_per_frame = hits_per_frame
        self.noise_hits_per_frame = noise_hits_per_frame
        self.hot_pixel_count = hot_pixel_count
        self.drop_probability = drop_probability
        self.slow_delay_s = slow_delay_s
        self.autostart_measurement = autostart_measurement
        self._rng = np.random.default_rng(seed)
        g = self.geometry
        self.hot_pixels = [
            (
                int(self._rng.integers(g.n_chips)),
                int(self._rng.integers(g.chip_pixels)),
                int(self._rng.integers(g.chip_pixels)),
            )
            for _ in range(hot_pixels)
        ]
        self._frames: deque[Frame] = deque(maxlen=buffer_frames)
        self.status = IDLE
        self.frame_count = 0
        self.dropped_frames = 0
        self.last_index = -1
        self._started_at = 0.0
        self.config: dict[str, Any] = {
            "TriggerMode": "AUTOTRIGSTART_TIMERSTOP",
            "ExposureTime": 1.0 / frame_rate_hz,
        }
        self.destination: Any = None
        self.beam_errors = 0

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _on_started(self) -> None:
        t_gen = threading.Thread(target=self._generate, name="serval-sim-frames", daemon=True)
        t_gen.start()
        self._threads.append(t_gen)
        if self.autostart_measurement:
            self.start_measurement()

    # -- measurement ----------------------------------------------------------------------
    def start_measurement(self) -> None:
        with self._lock:
            if self.status != RECORDING:
                self.status = RECORDING
                self._started_at = time.monotonic()

    def stop_measurement(self) -> None:
        with self._lock:
            self.status = IDLE

    def make_frame(self, index: int) -> Frame:
        """One frame of hits for the current beam (public for tests and notebooks)."""
        g = self.geometry
        parts_chip: list[np.ndarray] = []
        parts_x: list[np.ndarray] = []
        parts_y: list[np.ndarray] = []
        parts_c: list[np.ndarray] = []
        if not self.has_fault(Fault.NO_BEAM):
            try:
                x0, y0, sx, sy = (float(v) for v in self.beam_position_fn())
                n = int(self._rng.poisson(self.hits_per_frame))
                xs = self._rng.normal(x0, sx, n)
                ys = self._rng.normal(y0, sy, n)
                chip, px, py, inside = g.mm_to_pixel(xs, ys)
                parts_chip.append(chip[inside])
                parts_x.append(px[inside])
                parts_y.append(py[inside])
                parts_c.append(np.ones(int(inside.sum()), dtype=np.int64))
            except Exception as exc:  # a failing model must not kill the server
                self.beam_errors += 1
                log.warning("serval-sim: beam_position_fn failed: %r", exc)
        n_noise = int(self._rng.poisson(self.noise_hits_per_frame))
        parts_chip.append(self._rng.integers(0, g.n_chips, n_noise))
        parts_x.append(self._rng.integers(0, g.chip_pixels, n_noise))
        parts_y.append(self._rng.integers(0, g.chip_pixels, n_noise))
        parts_c.append(np.ones(n_noise, dtype=np.int64))
        if self.hot_pixels:
            hp = np.asarray(self.hot_pixels, dtype=np.int64)
            parts_chip.append(hp[:, 0])
            parts_x.append(hp[:, 1])
            parts_y.append(hp[:, 2])
            parts_c.append(np.full(len(hp), self.hot_pixel_count, dtype=np.int64))
        return Frame(
            index,
            datetime.now(timezone.utc).isoformat(),
            np.concatenate(parts_chip).astype(np.int64),
            np.concatenate(parts_x).astype(np.int64),
            np.concatenate(parts_y).astype(np.int64),
            np.concatenate(parts_c).astype(np.int64),
        )

    def _generate(self) -> None:
        period = 1.0 / self.frame_rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                recording = self.status == RECORDING
                drop = Fault.DROP_FRAMES in self._faults
            if recording:
                index = self.last_index + 1
                if drop and self._rng.random() < self.drop_probability:
                    with self._lock:
                        self.last_index = index
                        self.dropped_frames += 1
                else:
                    frame = self.make_frame(index)
                    with self._lock:
                        self._frames.append(frame)
                        self.last_index = index
                        self.frame_count += 1
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    # -- HTTP -----------------------------------------------------------------------------
    def dashboard(self) -> dict[str, Any]:
        with self._lock:
            elapsed = time.monotonic() - self._started_at if self.status == RECORDING else 0.0
            rate = self.hits_per_frame * self.frame_rate_hz if self.status == RECORDING else 0.0
            return {
                "Server": {"SoftwareVersion": "serval-sim 0.1"},
                "Measurement": {
                    "Status": self.status,
                    "FrameCount": self.frame_count,
                    "DroppedFrames": self.dropped_frames,
                    "PixelEventRate": rate,
                    "ElapsedTime": elapsed,
                },
            }

    def frames_since(self, since: int | None, max_frames: int) -> dict[str, Any]:
        with self._lock:
            frames = (
                [] if since is None else [f for f in self._frames if f.index > since][:max_frames]
            )
            return {
                "last_index": self.last_index,
                "dropped_frames": self.dropped_frames,
                "frames": [f.to_json() for f in frames],
            }

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        """Route one request -> (HTTP status, JSON document)."""
        g = self.geometry
        if method == "GET" and path == "/dashboard":
            return 200, self.dashboard()
        if method == "GET" and path == "/measurement/start":
            self.start_measurement()
            return 200, {"Status": RECORDING}
        if method == "GET" and path == "/measurement/stop":
            self.stop_measurement()
            return 200, {"Status": IDLE}
        if method == "GET" and path == "/measurement/frames":
            since_s = query.get("since", [None])[0]
            try:
                since = None if since_s is None else int(since_s)
                max_frames = int(query.get("max", ["50"])[0])
            except ValueError:
                raise ValueError("since and max must be integers") from None
            return 200, self.frames_since(since, max(0, min(max_frames, 1000)))
        if method == "GET" and path == "/detector/info":
            return 200, {
                "IfaceName": "SIM",
                "NumberOfChips": g.n_chips,
                "NumberOfRows": g.n_chip_rows,
                "PixCount": g.n_chips * g.chip_pixels**2,
                "ChipNames": [f"SIM-{i:02d}" for i in range(g.n_chips)],
            }
        if method == "GET" and path == "/detector/layout":
            return 200, g.as_layout()
        if path == "/detector/config":
            if method == "PUT":
                if not isinstance(body, dict):
                    raise ValueError("config must be a JSON object")
                with self._lock:
                    self.config.update(body)
            return 200, dict(self.config)
        if method == "PUT" and path == "/server/destination":
            self.destination = body
            return 200, {"ok": True}
        return 404, {"error": f"no endpoint {method} {path}"}
