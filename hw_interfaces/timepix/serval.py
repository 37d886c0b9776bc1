"""Client of ASI Serval's HTTP API and the :class:`BeamSpotSource` built on it.

Serval version followed: **4.1.x** (4.1.5 is what ADTimePix3 recommends), as driven end to
end by areaDetector/ADTimePix3 (``serval_http.cpp``, ``acquire.cpp``, ``serval_stream.cpp``,
read at commit da03cde). Endpoints used:

* ``GET /dashboard``: ``Server.SoftwareVersion``, ``Measurement`` (``null`` when idle, else
  ``Status``, ``FrameCount``, ``DroppedFrames``, ``PixelEventRate``, ``ElapsedTime``...),
  ``Detector``;
* ``GET /detector`` (``Info``, ``Health``, ``Config``, ``Layout``), ``GET /detector/info``,
  ``GET /detector/layout``, ``GET /detector/health``, ``GET|PUT /detector/config``;
* ``GET /measurement`` (``Info.Status``...), ``GET|PUT /measurement/config``,
  ``GET /measurement/start``, ``GET /measurement/stop``;
* ``GET|PUT /server/destination``: ``Raw``, ``Image`` and a ``Preview`` block whose
  ``ImageChannels`` (``Base``, ``Format``, ``Mode``) deliver images. Frames are read from a
  ``jsonimage`` channel with base ``tcp://listen@HOST:PORT`` (Serval listens, this client
  connects, as ADTimePix3 does); the stream format is in :mod:`.jsonimage`. A destination
  takes effect when a measurement starts, so :meth:`ServalBeamMonitor.configure_preview`
  restarts the measurement. ``tcp://connect@...`` (Serval dials out) is not supported here.

Not confirmed for PADME: which stack read its TimePix (facts 7); this adapter sits behind
:class:`~.spot.BeamSpotSource`.
"""

from __future__ import annotations

import json
import math
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ..errors import BadRequest, ConnectionFailed, DecodeError, DeviceTimeout, NoData, ProtocolError
from .geometry import TimepixGeometry
from .jsonimage import FORMAT, JsonImageReader
from .spot import (
    DEVICE,
    HOT_FACTOR,
    MIN_HITS,
    WINDOW_NSIGMA,
    BeamSpot,
    Frame,
    estimate_beam_spot,
)

RECORDING = "DA_RECORDING"
IDLE = "DA_IDLE"
MAX_TIMEOUT_S = 120.0  #: longest timeout accepted for one HTTP call or one spot measurement
MAX_FRAMES = 1000  #: most frames one spot measurement may collect
LISTEN_PREFIX = "tcp://listen@"


def check_timeout(value: float, what: str) -> float:
    """``value`` if it is a finite number of seconds in (0, MAX_TIMEOUT_S], else BadRequest."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v <= 0 or v > MAX_TIMEOUT_S:
        raise BadRequest(
            f"{what} must be in (0, {MAX_TIMEOUT_S:g}] s, not {value!r}", device=DEVICE
        )
    return v


def parse_listen_base(base: str, default_host: str) -> tuple[str, int] | None:
    """``tcp://listen@HOST:PORT`` -> ``(HOST, PORT)`` (wildcard hosts -> ``default_host``)."""
    if not base.startswith(LISTEN_PREFIX):
        return None
    host, sep, port_s = base[len(LISTEN_PREFIX) :].rpartition(":")
    try:
        port = int(port_s)
    except ValueError:
        return None
    if not sep or not 0 < port < 65536:
        return None
    if host in ("", "0.0.0.0", "*", "::"):
        host = default_host
    return host, port


def destination_body(doc: Any) -> dict[str, Any]:
    """Serval 4 may wrap ``GET /server/destination`` in a ``Destination`` object."""
    if isinstance(doc, dict) and isinstance(doc.get("Destination"), dict):
        return dict(doc["Destination"])
    return dict(doc) if isinstance(doc, dict) else {}


def check_frames(value: int) -> int:
    """``value`` if it is a whole number of frames in [1, MAX_FRAMES], else BadRequest."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FRAMES:
        raise BadRequest(
            f"number of TimePix frames must be in [1, {MAX_FRAMES}], not {value!r}", device=DEVICE
        )
    return value


class ServalClient:
    """HTTP/JSON client of Serval's REST API (urllib, bounded timeouts and retries).

    Proxies from the environment are ignored: the server is contacted directly. ``timeout_s``
    is per attempt, at most :data:`MAX_TIMEOUT_S`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 1,
        retry_backoff_s: float = 0.1,
    ) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"TimePix: '{base_url}' is not an http(s)://host:port URL")
        self.base_url = base_url.rstrip("/")
        self.host = parsed.hostname or "127.0.0.1"
        self.timeout_s = check_timeout(timeout_s, "TimePix HTTP timeout")
        self.retries = max(0, int(retries))
        self.retry_backoff_s = retry_backoff_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _request(
        self, path: str, params: dict[str, Any] | None = None, method: str = "GET", body: Any = None
    ) -> Any:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_backoff_s * attempt)
            req = urllib.request.Request(url, data=data, method=method)
            try:
                with self._opener.open(req, timeout=self.timeout_s) as resp:
                    raw = resp.read()
                break
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:200]
                exc.close()
                raise ProtocolError(
                    f"TimePix {self.base_url}: {method} {path} -> HTTP {exc.code} {detail}",
                    device=DEVICE,
                    key=path,
                ) from None
            except TimeoutError as exc:
                last = exc
            except urllib.error.URLError as exc:
                last = exc.reason if isinstance(exc.reason, BaseException) else exc
            except (OSError, ValueError) as exc:  # reset, broken HTTP status line
                last = exc
        else:
            if isinstance(last, (socket.timeout, TimeoutError)):
                raise DeviceTimeout(
                    f"TimePix {self.base_url}: {method} {path} no answer within "
                    f"{self.timeout_s:g} s ({self.retries + 1} attempts)",
                    device=DEVICE,
                    key=path,
                )
            raise ConnectionFailed(
                f"TimePix {self.base_url}: {method} {path} failed after {self.retries + 1} "
                f"attempts: {last}",
                device=DEVICE,
                key=path,
            )
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DecodeError(
                f"TimePix {self.base_url}: {path} answered non-JSON: {exc}", device=DEVICE, key=path
            ) from None

    def _object(self, path: str) -> dict[str, Any]:
        doc = self._request(path)
        if not isinstance(doc, dict):
            raise DecodeError(
                f"TimePix {self.base_url}: {path} is not a JSON object", device=DEVICE, key=path
            )
        return doc

    def dashboard(self) -> dict[str, Any]:
        """``GET /dashboard``."""
        return self._object("/dashboard")

    def measurement_status(self) -> str:
        """``Measurement.Status`` of the dashboard (a ``null`` measurement is idle)."""
        meas = self.dashboard().get("Measurement")
        if not isinstance(meas, dict):
            return IDLE
        info = meas.get("Info")
        return str((info if isinstance(info, dict) else meas).get("Status", IDLE))

    def measurement(self) -> dict[str, Any]:
        """``GET /measurement``: ``Info`` (status, counters) and ``Config``."""
        return self._object("/measurement")

    def measurement_config(self) -> dict[str, Any]:
        return self._object("/measurement/config")

    def set_measurement_config(self, config: dict[str, Any]) -> None:
        self._request("/measurement/config", method="PUT", body=config)

    def start_measurement(self) -> None:
        self._request("/measurement/start")

    def stop_measurement(self) -> None:
        self._request("/measurement/stop")

    def detector(self) -> dict[str, Any]:
        """``GET /detector``: ``Info``, ``Health``, ``Config``, ``Layout``."""
        return self._object("/detector")

    def detector_info(self) -> dict[str, Any]:
        return self._object("/detector/info")

    def detector_layout(self) -> dict[str, Any]:
        return self._object("/detector/layout")

    def detector_health(self) -> dict[str, Any]:
        return self._object("/detector/health")

    def detector_config(self) -> dict[str, Any]:
        return self._object("/detector/config")

    def set_detector_config(self, config: dict[str, Any]) -> None:
        self._request("/detector/config", method="PUT", body=config)

    def destination(self) -> dict[str, Any]:
        """``GET /server/destination`` (unwrapped from ``Destination`` when Serval wraps it)."""
        return destination_body(self._request("/server/destination"))

    def set_destination(self, destination: dict[str, Any]) -> None:
        self._request("/server/destination", method="PUT", body=destination)

    def preview_stream_address(self) -> tuple[str, int]:
        """``(host, port)`` of the first ``jsonimage`` preview channel Serval listens on."""
        preview = self.destination().get("Preview")
        channels = preview.get("ImageChannels") if isinstance(preview, dict) else None
        for ch in channels if isinstance(channels, list) else []:
            if not isinstance(ch, dict) or str(ch.get("Format", "")).lower() != FORMAT:
                continue
            addr = parse_listen_base(str(ch.get("Base", "")), self.host)
            if addr is not None:
                return addr
        raise NoData(
            f"TimePix {self.base_url}: no Preview ImageChannel with Format {FORMAT} and Base "
            f"{LISTEN_PREFIX}HOST:PORT in /server/destination (configure one, then restart "
            "the measurement)",
            device=DEVICE,
            key="/server/destination",
        )


class ServalBeamMonitor:
    """:class:`BeamSpotSource` over Serval: frames from its ``jsonimage`` preview channel.

    Each measurement connects to the preview stream, takes ``n_frames`` *new* frames (sent
    after the connection), detects dropped frames by gaps in ``frameNumber`` and ignores
    repeated numbers, then runs :func:`estimate_beam_spot`. ``n_frames`` is at most
    :data:`MAX_FRAMES`, ``timeout_s`` at most :data:`MAX_TIMEOUT_S`.
    """

    def __init__(
        self,
        client: ServalClient,
        geometry: TimepixGeometry | None = None,
        *,
        n_frames: int = 10,
        timeout_s: float = 5.0,
        hot_factor: float = HOT_FACTOR,
        min_hits: int = MIN_HITS,
        window_nsigma: float = WINDOW_NSIGMA,
        masked_pixels: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.client = client
        self.geometry = geometry or TimepixGeometry()
        self.n_frames = check_frames(n_frames)
        self.timeout_s = check_timeout(timeout_s, "TimePix spot timeout")
        self.hot_factor = hot_factor
        self.min_hits = min_hits
        self.window_nsigma = window_nsigma
        self.masked_pixels = tuple(masked_pixels)

    def configure_preview(
        self, port: int, *, host: str = "127.0.0.1", period_s: float = 0.1
    ) -> None:
        """Make Serval send ``jsonimage`` previews on ``tcp://listen@host:port`` and restart
        the measurement so the destination takes effect (the other channels are kept)."""
        dest = self.client.destination()
        preview = dict(dest.get("Preview") or {})
        channels = [
            ch
            for ch in preview.get("ImageChannels") or []
            if isinstance(ch, dict) and str(ch.get("Format", "")).lower() != FORMAT
        ]
        channels.append(
            {"Base": f"{LISTEN_PREFIX}{host}:{port}", "Format": FORMAT, "Mode": "count"}
        )
        preview.update(
            {"Period": period_s, "SamplingMode": "skipOnFrame", "ImageChannels": channels}
        )
        dest["Preview"] = preview
        self.client.set_destination(dest)
        self.client.stop_measurement()
        self.client.start_measurement()

    def collect(self, n_frames: int, timeout_s: float) -> tuple[list[Frame], int]:
        """``n_frames`` new frames (or fewer at the deadline) and the number dropped."""
        n_frames, timeout_s = check_frames(n_frames), check_timeout(timeout_s, "TimePix timeout")
        status = self.client.measurement_status()
        if status != RECORDING:
            raise NoData(
                f"TimePix {self.client.base_url}: measurement status {status}, not {RECORDING} "
                "(start the measurement first)",
                device=DEVICE,
                key="/dashboard",
            )
        host, port = self.client.preview_stream_address()
        deadline = time.monotonic() + timeout_s
        got: list[Frame] = []
        dropped = 0
        last: int | None = None
        with JsonImageReader.connect(host, port, min(timeout_s, self.client.timeout_s)) as rd:
            while len(got) < n_frames:
                try:
                    header, image = rd.read_frame(deadline)
                except DeviceTimeout:
                    break  # fewer frames than asked: the caller decides
                number = int(header.get("frameNumber", 0))
                if last is not None and number <= last:
                    continue  # repeated frame number (e.g. a second threshold): ignore
                if last is not None:
                    dropped += number - last - 1
                last = number
                try:
                    frame = Frame.from_image(
                        number, datetime.now(timezone.utc).isoformat(), image, self.geometry
                    )
                except ValueError as exc:
                    raise DecodeError(
                        f"{rd.source}: {exc} (check the detector layout)", device=DEVICE
                    ) from None
                got.append(frame)
        return got, dropped

    def read_beam_spot(
        self, n_frames: int | None = None, timeout_s: float | None = None
    ) -> BeamSpot:
        n = n_frames or self.n_frames
        t = self.timeout_s if timeout_s is None else timeout_s
        frames, dropped = self.collect(n, t)
        src = f"serval:{self.client.base_url}"
        if not frames:
            raise NoData(
                f"TimePix {self.client.base_url}: no preview frame within {t:g} s "
                f"({dropped} dropped)",
                device=DEVICE,
                key="preview",
            )
        empty = sum(1 for f in frames if f.n_hits == 0)
        est = estimate_beam_spot(
            frames,
            self.geometry,
            hot_factor=self.hot_factor,
            min_hits=self.min_hits,
            window_nsigma=self.window_nsigma,
            masked_pixels=self.masked_pixels,
            source=f"TimePix {self.client.base_url}",
        )
        return BeamSpot(
            time_utc=datetime.now(timezone.utc),
            x_mm=est.x_mm,
            y_mm=est.y_mm,
            sigma_x_mm=est.sigma_x_mm,
            sigma_y_mm=est.sigma_y_mm,
            frames_used=len(frames) - empty,
            frames_dropped=dropped,
            hits_used=est.hits_used,
            hot_pixels_masked=len(est.hot_pixels),
            frames_empty=empty,
            source=src,
        )
