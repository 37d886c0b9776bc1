"""TimePix frames, the measured beam spot and its estimator (hot pixels, noise, no beam).

A :class:`Frame` holds chip-local hits ``(chip, x, y, count)``; frames read from Serval's
preview stream are built from the count image (:meth:`Frame.from_image`). The estimator
(:func:`estimate_beam_spot`) is shared by every readout stack; a new stack is a new
:class:`BeamSpotSource`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import NoBeam, NoData
from .geometry import TimepixGeometry

DEVICE = "TimePix"

# Estimator defaults (named parameters).
HOT_FACTOR = 10.0  #: a pixel is hot above HOT_FACTOR x max(1, median of its 8 neighbours)
MIN_HITS = 50  #: fewer hits (after masking, in the window) -> NoBeam
WINDOW_NSIGMA = 4.0  #: iterative window half-width in sigmas
WINDOW_ITERATIONS = 6


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
    def from_image(
        cls, index: int, time_utc: str, image: np.ndarray, geometry: TimepixGeometry
    ) -> Frame:
        """A frame from a global count image ``image[gy, gx]`` (Serval's jsonimage payload)."""
        chip, px, py, count = geometry.hits_from_image(image)
        return cls(index, time_utc, chip, px, py, count)

    def image(self, geometry: TimepixGeometry) -> np.ndarray:
        """The frame's counts as the global image ``image[gy, gx]``."""
        return geometry.image_from_hits(self.chip, self.x, self.y, self.count)


class BeamSpot(BaseModel):
    """Beam centroid and rms width at the TimePix, in mm in the PADME frame (a typed, frozen
    record: the checker stores its fields as they are)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
        d = self.model_dump()
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
            f"{source}: no beam: only {int(cnt.sum())} hits in {len(frames)} frames (need {min_hits})",
            device=DEVICE,
            key="frames",
        )
    image = g.image_from_hits(chip, px, py, cnt)
    flat = image.ravel()
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
            f"{source}: no beam: {int(w.sum())} hits left after masking {len(hot_list)} "
            f"hot pixels (need {min_hits})",
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
                f"{source}: no beam: {int(ws.sum())} hits in the beam window (need {min_hits})",
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
