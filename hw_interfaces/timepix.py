"""TimePix beam monitor: detector geometry, beam-spot estimation and a Serval-style client.

Geometry (facts file section 1/7): 2 rows x 6 Timepix3 chips of 256 x 256 pixels of 55 um,
about 85.4 x 28.5 mm^2. The gaps between chips are not documented; the defaults make the
published outline: gap_x = (85.4 - 6 * 14.08) / 5 = 0.184 mm, gap_y = 28.5 - 2 * 14.08 = 0.34 mm.
Orientation relative to the PADME frame (``flip_x``/``flip_y``) and the detector centre
(``offset_x_mm``/``offset_y_mm``) are named parameters.

Chip numbering: ``chip = row * n_chip_cols + col``; row 0 / col 0 / pixel 0 at the lowest
(unflipped) y / x. A hit is ``(chip, x, y, count)`` with chip-local pixel indices.

Readout. Serval streams frames to a configured destination; this project's simulator (and
any adapter that can) offers them over HTTP as ``GET /measurement/frames?since=K&max=M``:
``{"last_index": N, "dropped_frames": D, "frames": [{"index": i, "time_utc": "...",
"hits": {"chip": [...], "x": [...], "y": [...], "count": [...]}}]}`` with the frames of index
> K, oldest first; without ``since`` no frames are returned, only the cursor. Another readout
stack is a new :class:`BeamSpotSource` adapter, the estimator (:func:`estimate_beam_spot`)
is reused.
"""

from __future__ import annotations

import json
import math
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import ConnectionFailed, DecodeError, DeviceTimeout, NoBeam, NoData, ProtocolError

DEVICE = "TimePix"
RECORDING = "DA_RECORDING"
IDLE = "DA_IDLE"

# Estimator defaults (named parameters).
HOT_FACTOR = 10.0  #: a pixel is hot above HOT_FACTOR x max(1, median of its 8 neighbours)
MIN_HITS = 50  #: fewer hits (after masking, in the window) -> NoBeam
WINDOW_NSIGMA = 4.0  #: iterative window half-width in sigmas
WINDOW_ITERATIONS = 6


@dataclass(frozen=True)
class TimepixGeometry:
    """Pixel -> PADME-frame millimetres for the 2 x 6 chip array."""

    n_chip_rows: int = 2
    n_chip_cols: int = 6
    chip_pixels: int = 256
    pixel_mm: float = 0.055
    gap_x_mm: float = 0.184
    gap_y_mm: float = 0.34
    flip_x: bool = False
    flip_y: bool = False
    offset_x_mm: float = 0.0
    offset_y_mm: float = 0.0

    @property
    def chip_mm(self) -> float:
        return self.chip_pixels * self.pixel_mm

    @property
    def width_mm(self) -> float:
        return self.n_chip_cols * self.chip_mm + (self.n_chip_cols - 1) * self.gap_x_mm

    @property
    def height_mm(self) -> float:
        return self.n_chip_rows * self.chip_mm + (self.n_chip_rows - 1) * self.gap_y_mm

    @property
    def n_chips(self) -> int:
        return self.n_chip_rows * self.n_chip_cols

    @property
    def shape(self) -> tuple[int, int]:
        """Global pixel image shape (rows of pixels, columns of pixels)."""
        return (self.n_chip_rows * self.chip_pixels, self.n_chip_cols * self.chip_pixels)

    def global_pixel(
        self, chip: np.ndarray, px: np.ndarray, py: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Chip-local -> global pixel indices (gx, gy), gaps ignored."""
        chip = np.asarray(chip, dtype=np.int64)
        row, col = np.divmod(chip, self.n_chip_cols)
        return col * self.chip_pixels + np.asarray(px), row * self.chip_pixels + np.asarray(py)

    def pixel_to_mm(
        self, chip: np.ndarray, px: np.ndarray, py: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centres in mm in the PADME frame (origin at the detector centre + offset)."""
        chip = np.asarray(chip, dtype=np.int64)
        row, col = np.divmod(chip, self.n_chip_cols)
        x = col * (self.chip_mm + self.gap_x_mm) + (np.asarray(px) + 0.5) * self.pixel_mm
        y = row * (self.chip_mm + self.gap_y_mm) + (np.asarray(py) + 0.5) * self.pixel_mm
        x = x - self.width_mm / 2
        y = y - self.height_mm / 2
        if self.flip_x:
            x = -x
        if self.flip_y:
            y = -y
        return x + self.offset_x_mm, y + self.offset_y_mm

    def mm_to_pixel(
        self, x_mm: np.ndarray, y_mm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Inverse of :meth:`pixel_to_mm`: ``(chip, px, py, inside)``; ``inside`` is False
        for points in a gap or off the detector (their chip/pixel values are meaningless)."""
        x = np.asarray(x_mm, dtype=float) - self.offset_x_mm
        y = np.asarray(y_mm, dtype=float) - self.offset_y_mm
        if self.flip_x:
            x = -x
        if self.flip_y:
            y = -y
        x = x + self.width_mm / 2
        y = y + self.height_mm / 2
        pitch_x, pitch_y = self.chip_mm + self.gap_x_mm, self.chip_mm + self.gap_y_mm
        col = np.floor(x / pitch_x).astype(np.int64)
        row = np.floor(y / pitch_y).astype(np.int64)
        px = np.floor((x - col * pitch_x) / self.pixel_mm).astype(np.int64)
        py = np.floor((y - row * pitch_y) / self.pixel_mm).astype(np.int64)
        inside = (
            (col >= 0)
            & (col < self.n_chip_cols)
            & (row >= 0)
            & (row < self.n_chip_rows)
            & (px >= 0)
            & (px < self.chip_pixels)
            & (py >= 0)
            & (py < self.chip_pixels)
        )
        return row * self.n_chip_cols + col, px, py, inside

    def as_layout(self) -> dict[str, Any]:
        """The ``/detector/layout`` document the simulator serves for this geometry."""
        return {
            "Original": {"Width": self.shape[1], "Height": self.shape[0]},
            "Rotated": {"Width": self.shape[1], "Height": self.shape[0]},
            "Chips": [
                {"Index": c, "Row": c // self.n_chip_cols, "Col": c % self.n_chip_cols}
                for c in range(self.n_chips)
            ],
            "PixelSizeMm": self.pixel_mm,
            "GapXMm": self.gap_x_mm,
            "GapYMm": self.gap_y_mm,
        }


@dataclass
class Frame:
    """One readout frame: chip-local hits and their counts."""

    index: int
    time_utc: str
    chip: np.ndarray
    x: np.ndarray
    y: np.ndarray
    count: np.ndarray

    @property
    def n_hits(self) -> int:
        return int(self.count.sum())

    @classmethod
    def from_json(cls, doc: dict[str, Any], source: str = DEVICE) -> Frame:
        try:
            hits = doc["hits"]
            chip = np.asarray(hits["chip"], dtype=np.int64)
            x = np.asarray(hits["x"], dtype=np.int64)
            y = np.asarray(hits["y"], dtype=np.int64)
            count = np.asarray(hits.get("count", np.ones_like(chip)), dtype=np.int64)
            index = int(doc["index"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(
                f"{source}: malformed frame: {exc!r}", device=DEVICE, key="frames"
            ) from None
        if not (chip.shape == x.shape == y.shape == count.shape) or chip.ndim != 1:
            raise DecodeError(
                f"{source}: frame {index} has hit columns of different lengths",
                device=DEVICE,
                key="frames",
            )
        return cls(index, str(doc.get("time_utc", "")), chip, x, y, count)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time_utc": self.time_utc,
            "hits": {
                "chip": self.chip.tolist(),
                "x": self.x.tolist(),
                "y": self.y.tolist(),
                "count": self.count.tolist(),
            },
        }


@dataclass(frozen=True)
class BeamSpot:
    """Beam centroid and rms width at the TimePix, in mm in the PADME frame."""

    time_utc: datetime
    x_mm: float
    y_mm: float
    sigma_x_mm: float
    sigma_y_mm: float
    frames_used: int
    frames_dropped: int
    hits_used: int = 0
    hot_pixels_masked: int = 0
    frames_empty: int = 0
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time_utc"] = self.time_utc.isoformat()
        return d


@runtime_checkable
class BeamSpotSource(Protocol):
    """Anything that measures a beam spot (Serval HTTP, another readout stack, a replay)."""

    def read_beam_spot(
        self, n_frames: int | None = None, timeout_s: float | None = None
    ) -> BeamSpot: ...


@dataclass
class SpotEstimate:
    x_mm: float
    y_mm: float
    sigma_x_mm: float
    sigma_y_mm: float
    hits_used: int
    hot_pixels: list[tuple[int, int]] = field(default_factory=list)


def _weighted_median(v: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cw, cw[-1] / 2.0)])


def estimate_beam_spot(
    frames: Iterable[Frame],
    geometry: TimepixGeometry | None = None,
    *,
    hot_factor: float = HOT_FACTOR,
    min_hits: int = MIN_HITS,
    window_nsigma: float = WINDOW_NSIGMA,
    masked_pixels: Sequence[tuple[int, int]] = (),
    source: str = DEVICE,
) -> SpotEstimate:
    """Centroid and rms width from the summed hits of ``frames``.

    Robust to hot pixels (a pixel whose summed count exceeds ``hot_factor`` x max(1, median of
    its 8 neighbours) is masked, as are ``masked_pixels`` given as global ``(gx, gy)``) and to
    uniform noise (the moments are computed in a window of +-``window_nsigma`` sigma, iterated
    from a weighted median / MAD start). Fewer than ``min_hits`` hits -> :class:`NoBeam`.
    """
    g = geometry or TimepixGeometry()
    ny, nx = g.shape
    frames = list(frames)
    if not frames:
        raise NoData(f"{source}: no frames to measure the beam spot", device=DEVICE, key="frames")
    chip = np.concatenate([f.chip for f in frames])
    px = np.concatenate([f.x for f in frames])
    py = np.concatenate([f.y for f in frames])
    cnt = np.concatenate([f.count for f in frames])
    ok = (chip >= 0) & (chip < g.n_chips) & (px >= 0) & (px < g.chip_pixels)
    ok &= (py >= 0) & (py < g.chip_pixels) & (cnt > 0)
    chip, px, py, cnt = chip[ok], px[ok], py[ok], cnt[ok]
    if cnt.sum() < min_hits:
        raise NoBeam(
            f"{source}: only {int(cnt.sum())} hits in {len(frames)} frames (need {min_hits})",
            device=DEVICE,
            key="frames",
        )
    gx, gy = g.global_pixel(chip, px, py)
    flat = np.bincount(gy * nx + gx, weights=cnt, minlength=nx * ny)
    image = flat.reshape(ny, nx)
    nz = np.flatnonzero(flat)
    zy, zx = np.divmod(nz, nx)
    padded = np.pad(image, 1)
    neigh = np.stack(
        [
            padded[zy + 1 + dy, zx + 1 + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)
        ]
    )
    nmed = np.median(neigh, axis=0)
    hot = flat[nz] > hot_factor * np.maximum(nmed, 1.0)
    for mx, my in masked_pixels:
        if 0 <= mx < nx and 0 <= my < ny:
            hot |= (zx == mx) & (zy == my)
    keep = nz[~hot]
    hot_list = [(int(a), int(b)) for a, b in zip(zx[hot], zy[hot], strict=True)]
    w = flat[keep]
    ky, kx = np.divmod(keep, nx)
    row_c, px_c = np.divmod(kx, g.chip_pixels)
    row_r, py_c = np.divmod(ky, g.chip_pixels)
    xs, ys = g.pixel_to_mm(row_r * g.n_chip_cols + row_c, px_c, py_c)
    if w.sum() < min_hits:
        raise NoBeam(
            f"{source}: {int(w.sum())} hits left after masking {len(hot_list)} hot pixels "
            f"(need {min_hits})",
            device=DEVICE,
            key="frames",
        )
    cx, cy = _weighted_median(xs, w), _weighted_median(ys, w)
    sx = max(1.4826 * _weighted_median(np.abs(xs - cx), w), g.pixel_mm)
    sy = max(1.4826 * _weighted_median(np.abs(ys - cy), w), g.pixel_mm)
    sel = np.ones_like(w, dtype=bool)
    for _ in range(WINDOW_ITERATIONS):
        sel = (np.abs(xs - cx) <= window_nsigma * sx) & (np.abs(ys - cy) <= window_nsigma * sy)
        ws = w[sel]
        if ws.sum() < min_hits:
            raise NoBeam(
                f"{source}: {int(ws.sum())} hits in the beam window (need {min_hits})",
                device=DEVICE,
                key="frames",
            )
        cx = float(np.average(xs[sel], weights=ws))
        cy = float(np.average(ys[sel], weights=ws))
        sx = max(
            math.sqrt(float(np.average((xs[sel] - cx) ** 2, weights=ws))),
            g.pixel_mm / math.sqrt(12),
        )
        sy = max(
            math.sqrt(float(np.average((ys[sel] - cy) ** 2, weights=ws))),
            g.pixel_mm / math.sqrt(12),
        )
    return SpotEstimate(cx, cy, sx, sy, int(w[sel].sum()), hot_list)


class ServalClient:
    """Minimal HTTP/JSON client of a Serval-style TimePix server (urllib, bounded timeouts).

    Proxies from the environment are ignored: the server is contacted directly.
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
        self.timeout_s = timeout_s
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

    def dashboard(self) -> dict[str, Any]:
        """``GET /dashboard``."""
        doc = self._request("/dashboard")
        if not isinstance(doc, dict):
            raise DecodeError(
                f"TimePix {self.base_url}: /dashboard is not an object",
                device=DEVICE,
                key="/dashboard",
            )
        return doc

    def measurement_status(self) -> str:
        meas = self.dashboard().get("Measurement") or {}
        return str(meas.get("Status", IDLE))

    def start_measurement(self) -> None:
        self._request("/measurement/start")

    def stop_measurement(self) -> None:
        self._request("/measurement/stop")

    def detector_info(self) -> dict[str, Any]:
        return self._request("/detector/info")

    def detector_layout(self) -> dict[str, Any]:
        return self._request("/detector/layout")

    def detector_config(self) -> dict[str, Any]:
        return self._request("/detector/config")

    def frames(self, since: int | None, max_frames: int = 50) -> tuple[list[Frame], int, int]:
        """Frames with index > ``since`` -> ``(frames, last_index, dropped_total)``."""
        doc = self._request("/measurement/frames", {"since": since, "max": max_frames})
        try:
            frames = [Frame.from_json(f, self.base_url) for f in doc.get("frames", [])]
            return frames, int(doc["last_index"]), int(doc.get("dropped_frames", 0))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DecodeError(
                f"TimePix {self.base_url}: malformed frames answer: {exc!r}",
                device=DEVICE,
                key="/measurement/frames",
            ) from None


class ServalBeamMonitor:
    """:class:`BeamSpotSource` over a :class:`ServalClient`.

    Collects ``n_frames`` *new* frames (produced after the call), detects dropped frames by
    gaps in the frame index and ignores duplicates, then runs :func:`estimate_beam_spot`.
    """

    def __init__(
        self,
        client: ServalClient,
        geometry: TimepixGeometry | None = None,
        *,
        n_frames: int = 10,
        timeout_s: float = 5.0,
        poll_interval_s: float = 0.02,
        hot_factor: float = HOT_FACTOR,
        min_hits: int = MIN_HITS,
        window_nsigma: float = WINDOW_NSIGMA,
        masked_pixels: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.client = client
        self.geometry = geometry or TimepixGeometry()
        self.n_frames = n_frames
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.hot_factor = hot_factor
        self.min_hits = min_hits
        self.window_nsigma = window_nsigma
        self.masked_pixels = tuple(masked_pixels)

    def collect(self, n_frames: int, timeout_s: float) -> tuple[list[Frame], int]:
        """``n_frames`` new frames (or fewer at the deadline) and the number dropped."""
        status = self.client.measurement_status()
        if status != RECORDING:
            raise NoData(
                f"TimePix {self.client.base_url}: measurement status {status}, not {RECORDING} "
                "(start the measurement first)",
                device=DEVICE,
                key="/dashboard",
            )
        _, cursor, _ = self.client.frames(None, 0)
        deadline = time.monotonic() + timeout_s
        got: dict[int, Frame] = {}
        dropped = 0
        while len(got) < n_frames and time.monotonic() < deadline:
            frames, last, _ = self.client.frames(cursor, n_frames - len(got))
            for f in frames:
                if f.index <= cursor or f.index in got:
                    continue  # duplicate
                dropped += f.index - cursor - 1
                cursor = f.index
                got[f.index] = f
            if not frames:
                dropped += max(0, last - cursor)  # indices the server skipped: dropped frames
                cursor = max(cursor, last)
                time.sleep(self.poll_interval_s)
        return [got[i] for i in sorted(got)], dropped

    def read_beam_spot(
        self, n_frames: int | None = None, timeout_s: float | None = None
    ) -> BeamSpot:
        n = n_frames or self.n_frames
        t = self.timeout_s if timeout_s is None else timeout_s
        frames, dropped = self.collect(n, t)
        src = f"serval:{self.client.base_url}"
        if not frames:
            raise NoData(
                f"TimePix {self.client.base_url}: no frame within {t:g} s ({dropped} dropped)",
                device=DEVICE,
                key="/measurement/frames",
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
