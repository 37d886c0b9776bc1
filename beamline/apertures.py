"""Slit settings grids and their vectorised evaluation on recorded particle coordinates.

A slit (SLTB2..SLTB5) is a black absorber of length ``slit_length_m`` with a jaw aperture at
its entry and at its exit (``<slit>_aper``, ``<slit>_exit_aper`` in the lattice). A particle
passes a setting ``(negative_mm, positive_mm)`` when ``lo <= u <= hi`` at both ends (``u``
the coordinate in the slit's plane), i.e. ``lo <= min(u_entry, u_exit)`` and
``max(u_entry, u_exit) <= hi``, the same inclusive test as xtrack's ``LimitRect``.

Evaluation of every combination of settings without looping over them:

1. per slit, the settings list defines a finite number of *pass classes*: the set of
   settings a particle passes depends only on the ranks of ``min``/``max`` among the
   distinct jaw positions (:class:`SlitClasses`); a particle in class ``c`` passes setting
   ``k`` iff ``table[c, k]``;
2. particles are binned by their joint class over the four slits; per cell the sums needed
   (count, sum and sum of squares of the energy deviation and of the positions at the
   target and the TimePix) and a fine energy histogram are accumulated with ``bincount``
   (:class:`CellAccumulator`), chunk by chunk, in bounded memory;
3. the per-combination sums are the contraction of the cell sums with the four class
   tables (exact: sums of 0/1 weights).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import BeamlineInputError
from .lattice import LineSpec
from .names import SLITS

__all__ = ["SLITS", "CellAccumulator", "Jaws", "SlitClasses", "SlitGrid", "check_jaws", "passes"]

#: Largest histogram (cells x energy bins) kept per energy; bins are widened beyond it.
MAX_HISTOGRAM_ENTRIES = 1 << 23


@dataclass(frozen=True)
class Jaws:
    """One slit setting: jaw edges [mm] relative to the axis (``negative_mm < positive_mm``)."""

    negative_mm: float
    positive_mm: float

    @classmethod
    def centred(cls, gap_mm: float, center_mm: float = 0.0) -> Jaws:
        """Jaws at ``center_mm -/+ gap_mm/2`` [mm]."""
        return cls(center_mm - 0.5 * gap_mm, center_mm + 0.5 * gap_mm)

    @property
    def gap_mm(self) -> float:
        """Full gap [mm]."""
        return self.positive_mm - self.negative_mm

    @property
    def center_mm(self) -> float:
        """Centre of the jaws [mm]."""
        return 0.5 * (self.positive_mm + self.negative_mm)

    def bounds_m(self) -> tuple[float, float]:
        """Jaw edges [m]."""
        return self.negative_mm * 1e-3, self.positive_mm * 1e-3


def check_jaws(slit: str, jaws: Jaws, max_gap_mm: float) -> Jaws:
    """Refuse a zero/negative gap or a jaw outside the chamber (one-line error)."""
    values = (jaws.negative_mm, jaws.positive_mm)
    if not all(math.isfinite(v) for v in values):
        raise BeamlineInputError(f"{slit}: jaw positions must be finite numbers of mm")
    if not jaws.gap_mm > 0:
        raise BeamlineInputError(
            f"{slit} gap {jaws.gap_mm:g} mm not allowed: the gap must be > 0 mm"
        )
    half = 0.5 * max_gap_mm
    if jaws.negative_mm < -half - 1e-9 or jaws.positive_mm > half + 1e-9:
        if abs(jaws.center_mm) < 1e-12:
            raise BeamlineInputError(
                f"{slit} gap {jaws.gap_mm:g} mm is wider than the chamber (max {max_gap_mm:g} mm)"
            )
        raise BeamlineInputError(
            f"{slit} jaws {jaws.negative_mm:g}..{jaws.positive_mm:g} mm reach outside the "
            f"chamber (+/-{half:g} mm)"
        )
    return jaws


@dataclass(frozen=True)
class SlitGrid:
    """Settings to evaluate per slit; every combination (cartesian product) is a result row.

    ``settings[slit]`` is a tuple of :class:`Jaws` for each of SLTB2..SLTB5; ``planes`` the
    collimating plane ("x" or "y") of each slit.
    """

    settings: Mapping[str, tuple[Jaws, ...]]
    planes: Mapping[str, str]
    max_gaps_mm: Mapping[str, float]

    @classmethod
    def build(
        cls,
        spec: LineSpec,
        defaults: Mapping[str, Jaws],
        gaps_mm: Mapping[str, Sequence[float]] | None = None,
        jaws_mm: Mapping[str, Sequence[tuple[float, float]]] | None = None,
        centers_mm: Mapping[str, float] | None = None,
    ) -> SlitGrid:
        """Grid from full gaps (centred on ``centers_mm``, default 0) or independent jaw pairs.

        A slit given neither way keeps its ``defaults`` setting. Raises a clear
        ``BeamlineInputError`` for unknown slits, empty lists, zero/negative gaps and gaps
        or jaws beyond the chamber.
        """
        gaps_mm = {k.upper(): v for k, v in (gaps_mm or {}).items()}
        jaws_mm = {k.upper(): v for k, v in (jaws_mm or {}).items()}
        centers = {k.upper(): float(v) for k, v in (centers_mm or {}).items()}
        unknown = sorted((set(gaps_mm) | set(jaws_mm) | set(centers)) - set(SLITS))
        if unknown:
            raise BeamlineInputError(f"unknown slit(s) {unknown}; slits: {', '.join(SLITS)}")
        both = sorted(set(gaps_mm) & set(jaws_mm))
        if both:
            raise BeamlineInputError(f"{both}: give either gaps or jaw pairs per slit, not both")
        settings: dict[str, tuple[Jaws, ...]] = {}
        planes, max_gaps = {}, {}
        for slit in SLITS:
            info = spec.slit(slit)
            planes[slit] = info.plane
            max_gaps[slit] = info.max_gap_mm
            if slit in gaps_mm:
                values = [Jaws.centred(float(g), centers.get(slit, 0.0)) for g in gaps_mm[slit]]
            elif slit in jaws_mm:
                values = []
                for pair in jaws_mm[slit]:
                    neg, pos = (float(v) for v in pair)
                    if not pos > neg:
                        raise BeamlineInputError(
                            f"{slit}: the positive jaw ({pos:g} mm) must be above the negative "
                            f"jaw ({neg:g} mm)"
                        )
                    values.append(Jaws(neg, pos))
            else:
                d = defaults[slit]
                values = [Jaws.centred(d.gap_mm, centers.get(slit, d.center_mm))]
            if not values:
                raise BeamlineInputError(f"{slit}: no settings given (empty list)")
            for j in values:
                check_jaws(slit, j, max_gaps[slit])
            settings[slit] = tuple(dict.fromkeys(values))  # unique, order kept
        return cls(settings=settings, planes=planes, max_gaps_mm=max_gaps)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of settings per slit (SLTB2, SLTB3, SLTB4, SLTB5)."""
        return tuple(len(self.settings[s]) for s in SLITS)

    @property
    def n_combinations(self) -> int:
        return int(np.prod(self.shape))

    def combinations(self) -> list[dict[str, float]]:
        """One dict per combination (C order over SLTB2..SLTB5): ``sltbN_mm`` (gap),
        ``sltbN_center_mm``, ``sltbN_negative_mm``, ``sltbN_positive_mm``."""
        rows = []
        for combo in itertools.product(*(self.settings[s] for s in SLITS)):
            row: dict[str, float] = {}
            for slit, j in zip(SLITS, combo, strict=True):
                key = slit.lower()
                row[f"{key}_mm"] = j.gap_mm
                row[f"{key}_center_mm"] = j.center_mm
                row[f"{key}_negative_mm"] = j.negative_mm
                row[f"{key}_positive_mm"] = j.positive_mm
            rows.append(row)
        return rows

    def index_of(self, setting: Mapping[str, Jaws]) -> tuple[int, ...]:
        """Indices (per slit) of a combination given as ``{slit: Jaws}``."""
        out = []
        for slit in SLITS:
            try:
                out.append(self.settings[slit].index(setting[slit]))
            except (KeyError, ValueError):
                raise BeamlineInputError(
                    f"{slit} setting {setting.get(slit)} is not in the grid"
                ) from None
        return tuple(out)


class SlitClasses:
    """Pass classes of one slit's settings list (see module doc).

    ``table`` (``n_classes x n_settings``, float 0/1): class ``c`` passes setting ``k``.
    Class -1 (returned by :meth:`classify`) passes no setting.
    """

    def __init__(self, jaws: Sequence[Jaws]) -> None:
        lo = np.array([j.negative_mm for j in jaws]) * 1e-3
        hi = np.array([j.positive_mm for j in jaws]) * 1e-3
        self.lo_m, self.hi_m = np.unique(lo), np.unique(hi)
        rank_lo = np.searchsorted(self.lo_m, lo)
        rank_hi = np.searchsorted(self.hi_m, hi)
        a = np.arange(self.lo_m.size + 1)[:, None, None]
        b = np.arange(self.hi_m.size + 1)[None, :, None]
        full = (rank_lo[None, None, :] < a) & (rank_hi[None, None, :] >= b)
        flat = full.reshape(-1, len(jaws))
        uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
        keep = uniq.any(axis=1)
        class_of = np.full(uniq.shape[0], -1, dtype=np.int64)
        class_of[keep] = np.arange(int(keep.sum()))
        self._class_map = class_of[np.asarray(inverse).reshape(-1)]
        self._n_hi = self.hi_m.size + 1
        self.table = uniq[keep].astype(np.float64)

    @property
    def n_classes(self) -> int:
        return self.table.shape[0]

    def classify(self, u_entry_m: np.ndarray, u_exit_m: np.ndarray) -> np.ndarray:
        """Class index per particle from its coordinate at entry and exit [m] (-1: none)."""
        mn = np.minimum(u_entry_m, u_exit_m)
        mx = np.maximum(u_entry_m, u_exit_m)
        a = np.searchsorted(self.lo_m, mn, side="right")
        b = np.searchsorted(self.hi_m, mx, side="left")
        return self._class_map[a * self._n_hi + b]


def passes(u_entry_m: np.ndarray, u_exit_m: np.ndarray, jaws: Jaws) -> np.ndarray:
    """Direct test (no classes): particle passes ``jaws`` at entry and exit."""
    lo, hi = jaws.bounds_m()
    return (u_entry_m >= lo) & (u_entry_m <= hi) & (u_exit_m >= lo) & (u_exit_m <= hi)


#: Order of the per-cell sums kept by :class:`CellAccumulator`.
MOMENTS = (
    "n",
    "eps",
    "eps2",
    "x_target",
    "x2_target",
    "y_target",
    "y2_target",
    "x_timepix",
    "x2_timepix",
    "y_timepix",
    "y2_timepix",
)


class CellAccumulator:
    """Per-cell sums and fine energy histogram, accumulated chunk by chunk.

    ``eps_center``, ``eps_half_width`` and ``eps_bin`` define the fine histogram of the
    relative energy deviation (bins widened if cells x bins would exceed
    :data:`MAX_HISTOGRAM_ENTRIES`); values outside go to under/overflow bins (still counted
    in the sums).
    """

    def __init__(
        self,
        classes: Sequence[SlitClasses],
        eps_center: float,
        eps_half_width: float,
        eps_bin: float,
    ) -> None:
        self.classes = list(classes)
        self.cell_shape = tuple(c.n_classes for c in self.classes)
        self.n_cells = int(np.prod(self.cell_shape))
        n_bins = max(1, math.ceil(2 * eps_half_width / eps_bin))
        if self.n_cells * (n_bins + 2) > MAX_HISTOGRAM_ENTRIES:
            n_bins = max(1, MAX_HISTOGRAM_ENTRIES // max(self.n_cells, 1) - 2)
        self.n_bins = n_bins
        self.eps_lo = eps_center - eps_half_width
        self.eps_bin = 2 * eps_half_width / n_bins
        self.sums = np.zeros((len(MOMENTS), self.n_cells))
        self.hist = np.zeros((self.n_cells, n_bins + 2))

    def cell_index(self, class_indices: Sequence[np.ndarray]) -> np.ndarray:
        """Flat cell index from per-slit class indices (all >= 0)."""
        return np.ravel_multi_index(tuple(class_indices), self.cell_shape)

    def add(
        self,
        cell: np.ndarray,
        eps: np.ndarray,
        target_m: tuple[np.ndarray, np.ndarray],
        timepix_m: tuple[np.ndarray, np.ndarray],
    ) -> None:
        """Add transmitted-candidate particles: cell index, energy deviation, x/y [m]."""
        if cell.size == 0:
            return
        nc = self.n_cells
        xt, yt = (1e3 * v for v in target_m)
        xp, yp = (1e3 * v for v in timepix_m)
        weights = (None, eps, eps * eps, xt, xt * xt, yt, yt * yt, xp, xp * xp, yp, yp * yp)
        for i, w in enumerate(weights):
            self.sums[i] += np.bincount(cell, weights=w, minlength=nc)
        b = np.floor((eps - self.eps_lo) / self.eps_bin).astype(np.int64) + 1
        np.clip(b, 0, self.n_bins + 1, out=b)
        nb = self.n_bins + 2
        self.hist += np.bincount(cell * nb + b, minlength=nc * nb).reshape(nc, nb)

    def combinations(self) -> tuple[np.ndarray, np.ndarray]:
        """Sums per combination ``(len(MOMENTS), K2, K3, K4, K5)`` and histograms
        ``(K2, K3, K4, K5, n_bins + 2)``."""
        sums = self.sums.reshape((len(MOMENTS), *self.cell_shape))
        hist = np.moveaxis(self.hist.reshape((*self.cell_shape, self.n_bins + 2)), -1, 0)
        for c in self.classes:
            sums = np.tensordot(sums, c.table, axes=([1], [0]))
            hist = np.tensordot(hist, c.table, axes=([1], [0]))
        return sums, np.moveaxis(hist, 0, -1)


def fwhm_from_histogram(counts: np.ndarray, bin_width: float, sigma: float) -> float:
    """FWHM of a fine histogram (no under/overflow bins) of a sample of rms ``sigma``.

    Method: rebin to about sigma/5 (never finer than ``bin_width``), peak = highest bin,
    each half-maximum crossing found walking out from the peak and interpolated linearly
    between bin centres. Returns NaN for an empty histogram.
    """
    total = counts.sum()
    if total <= 0 or not math.isfinite(sigma):
        return math.nan
    r = max(1, int(sigma / (5.0 * bin_width))) if sigma > 0 else 1
    n = counts.size
    pad = (-n) % r
    c = np.concatenate([counts, np.zeros(pad)]).reshape(-1, r).sum(axis=1)
    w = bin_width * r
    ip = int(np.argmax(c))
    half = 0.5 * c[ip]
    left = ip
    while left > 0 and c[left - 1] >= half:
        left -= 1
    right = ip
    while right < c.size - 1 and c[right + 1] >= half:
        right += 1
    # crossing between bin left-1 (below half) and left (above): centre positions
    if left > 0:
        x_left = (left - 1) + (half - c[left - 1]) / (c[left] - c[left - 1])
    else:
        x_left = -0.5
    if right < c.size - 1:
        x_right = right + (c[right] - half) / (c[right] - c[right + 1])
    else:
        x_right = c.size - 0.5
    return float((x_right - x_left) * w)
