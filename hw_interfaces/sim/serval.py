"""Simulated ASI Serval (4.1.x API, as ADTimePix3 drives it) on 127.0.0.1.

HTTP endpoints (``ThreadingHTTPServer``): ``GET /dashboard``, ``GET /detector``,
``GET /detector/info``, ``GET /detector/layout``, ``GET /detector/health``,
``GET|PUT /detector/config``, ``GET /measurement``, ``GET|PUT /measurement/config``,
``GET /measurement/start``, ``GET /measurement/stop``, ``GET|PUT /server/destination``.
Document shapes and the stream format: :mod:`hw_interfaces.timepix.serval` and
:mod:`hw_interfaces.timepix.jsonimage`.

Images leave only through the destination's ``Preview.ImageChannels``: for every channel with
``"Format": "jsonimage"`` and ``"Base": "tcp://listen@127.0.0.1:PORT"`` the simulator listens
on PORT from the next measurement start (a destination takes effect at start, as in Serval)
and sends each frame to every connected client. The default destination has one such channel
on an ephemeral port, kept across :meth:`revive`. Other channels (``file:``, ``http://``,
other formats) are accepted and stored, not written.

While recording, a thread produces frames at ``frame_rate_hz``: Poisson(``hits_per_frame``)
beam hits drawn from ``beam_position_fn() -> (x_mm, y_mm, sigma_x_mm, sigma_y_mm)`` (the
scanplan layer plugs the beam-line model in here), uniform noise hits and hot pixels that
fire ``hot_pixel_count`` times per frame. Faults act through the API: ``no_beam`` (frames
without beam hits), ``drop_frames`` (frame numbers skipped, ``DroppedFrames`` counts them),
``slow`` (HTTP answers late), ``dead`` (HTTP server and preview streams gone).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..timepix import IDLE, RECORDING, Frame, TimepixGeometry, jsonimage
from ..timepix.serval import LISTEN_PREFIX, parse_listen_base
from ._http import JsonHandler, JsonHTTPServer
from ._server import SimServer
from .faults import TIMEPIX_FAULTS, Fault

log = logging.getLogger(__name__)

BeamPositionFn = Callable[[], tuple[float, float, float, float]]
SOFTWARE_VERSION = "4.1.5 (serval-sim)"  #: the Serval API version this simulator follows
IMAGE_FORMATS = ("tiff", "pgm", "png", "jsonimage", "jsonhisto")  #: Serval 4 formats
IMAGE_MODES = ("count", "tot", "toa", "tof", "count_fb")
SEND_TIMEOUT_S = 1.0  #: a preview client that cannot take a frame in this time is dropped


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
        try:
            code, doc = sim.handle(method, url.path, self._body())
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


class _PreviewListener:
    """One ``tcp://listen@`` preview channel: accepts clients, sends them frames."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, name="serval-sim-preview", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(SEND_TIMEOUT_S)
            with self._lock:
                self.clients.append(conn)

    @property
    def n_clients(self) -> int:
        with self._lock:
            return len(self.clients)

    def send(self, *parts: bytes | memoryview) -> None:
        with self._lock:
            clients = list(self.clients)
        for conn in clients:
            try:
                for part in parts:
                    conn.sendall(part)
            except OSError:  # gone or too slow: drop it, as a TCP sender would
                with self._lock:
                    self.clients.remove(conn)
                conn.close()

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
        self.thread.join(timeout=2)
        with self._lock:
            clients, self.clients = self.clients, []
        for conn in clients:
            conn.close()


def _check_destination(doc: Any) -> dict[str, Any]:
    """The checks Serval makes on ``PUT /server/destination`` that matter here."""
    if not isinstance(doc, dict):
        raise ValueError("destination must be a JSON object")
    preview = doc.get("Preview")
    if preview is None:
        return doc
    if not isinstance(preview, dict):
        raise ValueError("Preview must be an object")
    channels = preview.get("ImageChannels", [])
    if not isinstance(channels, list):
        raise ValueError("Preview.ImageChannels must be a list")
    for ch in channels:
        if not isinstance(ch, dict) or not isinstance(ch.get("Base"), str):
            raise ValueError("every ImageChannel needs a Base string")
        if ch.get("Format") not in IMAGE_FORMATS:
            raise ValueError(f"ImageChannel Format must be one of {', '.join(IMAGE_FORMATS)}")
        if ch.get("Mode", "count") not in IMAGE_MODES:
            raise ValueError(f"ImageChannel Mode must be one of {', '.join(IMAGE_MODES)}")
        base = ch["Base"]
        if base.startswith("tcp://") and parse_listen_base(base, "127.0.0.1") is None:
            raise ValueError(f"unsupported tcp Base {base!r} (use {LISTEN_PREFIX}HOST:PORT)")
    return doc


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
        self.status = IDLE
        self.frame_count = 0
        self.dropped_frames = 0
        self.frame_number = 0
        self._started_at = 0.0
        self._start_utc = ""
        self.detector_config: dict[str, Any] = {
            "TriggerMode": "AUTOTRIGSTART_TIMERSTOP",
            "ExposureTime": 1.0 / frame_rate_hz,
            "TriggerPeriod": 1.0 / frame_rate_hz,
            "nTriggers": 2**31 - 1,
            "BiasVoltage": 100,
            "BiasEnabled": True,
        }
        self.measurement_config: dict[str, Any] = {"Corrections": {}, "Processing": {}}
        self.destination: dict[str, Any] | None = None  # the default is made at first start
        self._listeners: dict[int, _PreviewListener] = {}
        self.beam_errors = 0

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def preview_port(self) -> int:
        """Port of the first listening preview channel (0 when none)."""
        with self._lock:
            return next(iter(self._listeners), 0)

    def _on_started(self) -> None:
        if self.destination is None:
            probe = socket.create_server(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()
            self.destination = {
                "Raw": [],
                "Preview": {
                    "Period": 1.0 / self.frame_rate_hz,
                    "SamplingMode": "skipOnFrame",
                    "ImageChannels": [
                        {
                            "Base": f"{LISTEN_PREFIX}127.0.0.1:{port}",
                            "Format": "jsonimage",
                            "Mode": "count",
                        }
                    ],
                },
            }
        t_gen = threading.Thread(target=self._generate, name="serval-sim-frames", daemon=True)
        t_gen.start()
        self._threads.append(t_gen)
        if self.autostart_measurement:
            self.start_measurement()

    def _on_shutdown(self) -> None:
        with self._lock:
            listeners, self._listeners = self._listeners, {}
            self.status = IDLE
        for lst in listeners.values():
            lst.close()

    # -- measurement ----------------------------------------------------------------------
    def _wanted_ports(self) -> set[int]:
        preview = (self.destination or {}).get("Preview") or {}
        ports = set()
        for ch in preview.get("ImageChannels") or []:
            addr = parse_listen_base(str(ch.get("Base", "")), "127.0.0.1")
            if ch.get("Format") == "jsonimage" and addr is not None:
                ports.add(addr[1])
        return ports

    def start_measurement(self) -> None:
        """``/measurement/start``: apply the destination (open/close preview listeners)."""
        with self._lock:
            if self.status == RECORDING:
                return
            wanted = self._wanted_ports()
            for port in set(self._listeners) - wanted:
                self._listeners.pop(port).close()
            for port in wanted - set(self._listeners):
                try:
                    self._listeners[port] = _PreviewListener(port)
                except OSError as exc:
                    raise ValueError(f"preview channel port {port}: {exc}") from None
            self.status = RECORDING
            self._started_at = time.monotonic()
            self._start_utc = datetime.now(timezone.utc).isoformat()
            self.frame_number = 0

    def stop_measurement(self) -> None:
        # Serval keeps preview listeners bound after a stop (ADTimePix3, acquire.cpp).
        with self._lock:
            self.status = IDLE

    def make_frame(self, index: int) -> Frame:
        """One frame of hits for the current beam (public for tests and notebooks)."""
        g = self.geometry
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        if not self.has_fault(Fault.NO_BEAM):
            try:
                x0, y0, sx, sy = (float(v) for v in self.beam_position_fn())
                n = int(self._rng.poisson(self.hits_per_frame))
                chip, px, py, inside = g.mm_to_pixel(
                    self._rng.normal(x0, sx, n), self._rng.normal(y0, sy, n)
                )
                ones = np.ones(int(inside.sum()), dtype=np.int64)
                parts.append((chip[inside], px[inside], py[inside], ones))
            except Exception as exc:  # a failing model must not kill the server
                self.beam_errors += 1
                log.warning("serval-sim: beam_position_fn failed: %r", exc)
        n_noise = int(self._rng.poisson(self.noise_hits_per_frame))
        parts.append(
            (
                self._rng.integers(0, g.n_chips, n_noise),
                self._rng.integers(0, g.chip_pixels, n_noise),
                self._rng.integers(0, g.chip_pixels, n_noise),
                np.ones(n_noise, dtype=np.int64),
            )
        )
        if self.hot_pixels:
            hp = np.asarray(self.hot_pixels, dtype=np.int64)
            parts.append(
                (hp[:, 0], hp[:, 1], hp[:, 2], np.full(len(hp), self.hot_pixel_count, np.int64))
            )
        chip, px, py, count = (np.concatenate(c).astype(np.int64) for c in zip(*parts, strict=True))
        return Frame(index, datetime.now(timezone.utc).isoformat(), chip, px, py, count)

    def _generate(self) -> None:
        period = 1.0 / self.frame_rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                recording = self.status == RECORDING
                drop = Fault.DROP_FRAMES in self._faults
                listeners = list(self._listeners.values())
            if recording:
                with self._lock:
                    self.frame_number += 1
                    number = self.frame_number
                    elapsed = time.monotonic() - self._started_at
                if drop and self._rng.random() < self.drop_probability:
                    with self._lock:
                        self.dropped_frames += 1
                else:
                    with self._lock:
                        self.frame_count += 1
                    if any(lst.n_clients for lst in listeners):  # images only for listeners
                        frame = self.make_frame(number)
                        head, pixels = jsonimage.encode_parts(
                            frame.image(self.geometry),
                            number,
                            elapsed,
                            thresholdID=0,
                            integrationSize=0,
                        )
                        for lst in listeners:
                            lst.send(head, pixels.data)
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    # -- HTTP documents -------------------------------------------------------------------
    def _measurement_info(self) -> dict[str, Any]:
        recording = self.status == RECORDING
        return {
            "Status": self.status,
            "FrameCount": self.frame_count,
            "DroppedFrames": self.dropped_frames,
            "PixelEventRate": self.hits_per_frame * self.frame_rate_hz if recording else 0.0,
            "ElapsedTime": time.monotonic() - self._started_at if recording else 0.0,
            "TimeLeft": 0.0,
            "StartDateTime": self._start_utc,
        }

    def dashboard(self) -> dict[str, Any]:
        with self._lock:
            return {
                "Server": {
                    "SoftwareVersion": SOFTWARE_VERSION,
                    "SoftwareTimestamp": "simulated",
                    "DiskSpace": [],
                    "Notifications": [],
                },
                # Serval clears the dashboard's Measurement when idle (ADTimePix3 notes it)
                "Measurement": self._measurement_info() if self.status == RECORDING else None,
                "Detector": {"DetectorType": "Tpx3", "DetectorOrientation": "UP"},
            }

    def detector_info(self) -> dict[str, Any]:
        g = self.geometry
        return {
            "IfaceName": "SIM",
            "SW_version": SOFTWARE_VERSION,
            "FW_version": "sim",
            "NumberOfChips": g.n_chips,
            "NumberOfRows": g.shape[0],
            "RowLen": g.n_chip_cols,
            "PixCount": g.n_chips * g.chip_pixels**2,
            "MpxType": 3,
            "ChipNames": [f"SIM-{i:02d}" for i in range(g.n_chips)],
        }

    def detector_health(self) -> dict[str, Any]:
        return {
            "LocalTemperature": 35.0,
            "FPGATemperature": 48.0,
            "Fan1Speed": 3000,
            "Fan2Speed": 3000,
            "BiasVoltage": float(self.detector_config.get("BiasVoltage", 0)),
            "ChipTemperatures": [40.0] * self.geometry.n_chips,
            "VDD": [1.5, 0.3, 0.45],
            "AVDD": [1.5, 0.6, 0.9],
        }

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Route one request -> (HTTP status, JSON document)."""
        get = method == "GET"
        if get and path == "/dashboard":
            return 200, self.dashboard()
        if get and path == "/measurement":
            with self._lock:
                return 200, {"Info": self._measurement_info(), "Config": self.measurement_config}
        if get and path == "/measurement/start":
            try:
                self.start_measurement()
            except ValueError as exc:
                return 500, {"error": f"{exc} (Address already in use?)"}
            return 200, {"Status": RECORDING}
        if get and path == "/measurement/stop":
            self.stop_measurement()
            return 200, {"Status": IDLE}
        if path == "/measurement/config" and method in ("GET", "PUT"):
            if method == "PUT":
                if not isinstance(body, dict):
                    raise ValueError("measurement config must be a JSON object")
                with self._lock:
                    self.measurement_config = body
            return 200, self.measurement_config
        if get and path == "/detector":
            return 200, {
                "Info": self.detector_info(),
                "Health": [self.detector_health()],  # Serval 4: one entry per board
                "Config": dict(self.detector_config),
                "Layout": self.geometry.as_layout(),
            }
        if get and path == "/detector/info":
            return 200, self.detector_info()
        if get and path == "/detector/layout":
            return 200, self.geometry.as_layout()
        if get and path == "/detector/health":
            return 200, self.detector_health()
        if path == "/detector/config" and method in ("GET", "PUT"):
            if method == "PUT":
                if not isinstance(body, dict):
                    raise ValueError("config must be a JSON object")
                with self._lock:
                    self.detector_config.update(body)
            return 200, dict(self.detector_config)
        if path == "/server/destination" and method in ("GET", "PUT"):
            if method == "PUT":
                doc = _check_destination(body)
                with self._lock:
                    self.destination = doc
            return 200, self.destination
        return 404, {"error": f"no endpoint {method} {path}"}
