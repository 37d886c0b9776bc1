"""Spread tables: per-energy candidates (:class:`beamline.spread_engine.Candidates`) to one
row per slit combination, every combination at once (:mod:`beamline.apertures`: cell sums
contracted with the per-slit class tables, O(N) in the particles), the FWHM from fine
histograms, and the TimePix beam spot of one combination.

Row statistics: transmission (fraction of the generated particles), positrons per bunch,
mean energy, rms and FWHM relative energy spread (``sigma_E / <E>``) of the transmitted beam,
centroid and rms size at the target and at the TimePix. No transmitted particle:
transmission 0 and NaN statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .apertures import MOMENTS, CellAccumulator, SlitClasses, SlitGrid, fwhm_from_histogram
from .names import SLITS
from .spread_engine import Candidates, ScanPoint, SpotGrid

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Default fine bin [relative energy] of the histograms the FWHM is taken from.
DEFAULT_EPS_BIN = 2e-5


@dataclass
class SpreadResult:
    """Table (one row per scan point and slit combination), metadata and TimePix spots.

    ``spots[i]`` is the 2D histogram (x by y, counts) at the TimePix of scan point ``i`` for
    the spot combination, with edges ``spot_edges_mm``. Writing files is the caller's job
    (``scanplan.spread.write_table``).
    """

    table: pd.DataFrame
    metadata: dict[str, Any]
    spots: dict[int, np.ndarray] = field(default_factory=dict)
    spot_edges_mm: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class PointStatistics:
    """Per-combination sums (``len(MOMENTS) x n_combinations``) and FWHM of one point."""

    sums: np.ndarray
    fwhm_eps: np.ndarray
    spot: np.ndarray | None
    low_tail: np.ndarray | None = None  # fraction below <E> - 3 rms (line shape)


def point_statistics(
    cand: Candidates,
    grid: SlitGrid,
    *,
    eps_center: float,
    eps_half_width: float,
    eps_bin: float,
    spot_index: tuple[int, ...] | None,
    spot_grid: SpotGrid | None,
) -> PointStatistics:
    """Statistics of every combination of ``grid`` from one point's candidates."""
    classes = [SlitClasses(grid.settings[s]) for s in SLITS]
    v = cand.values
    if v and v["eps"].size:
        # histogram only where the candidates are (bins on the grid of eps_center): the
        # contraction over the slit classes costs cells x bins
        k_lo = math.floor((float(v["eps"].min()) - eps_center) / eps_bin) - 1
        k_hi = math.ceil((float(v["eps"].max()) - eps_center) / eps_bin) + 1
        k_lo, k_hi = (
            max(k_lo, -round(eps_half_width / eps_bin)),
            min(k_hi, round(eps_half_width / eps_bin)),
        )
        eps_center = eps_center + 0.5 * (k_lo + k_hi) * eps_bin
        eps_half_width = 0.5 * max(k_hi - k_lo, 2) * eps_bin
    acc = CellAccumulator(
        classes, eps_center=eps_center, eps_half_width=eps_half_width, eps_bin=eps_bin
    )
    if cand.classes and v["eps"].size:
        cells = acc.cell_index([cand.classes[s] for s in SLITS])
        acc.add(
            cells,
            v["eps"],
            (v["x_target_m"], v["y_target_m"]),
            (v["x_timepix_m"], v["y_timepix_m"]),
        )
    sums, hist = acc.combinations()
    n_comb = grid.n_combinations
    sums = sums.reshape(len(MOMENTS), n_comb)
    hist = hist.reshape(n_comb, -1)
    n = sums[0]
    mean = np.divide(sums[1], n, out=np.full(n_comb, np.nan), where=n > 0)
    var = np.divide(sums[2], n, out=np.full(n_comb, np.nan), where=n > 0) - mean * mean
    sigma = np.sqrt(np.clip(var, 0.0, None, where=n > 0, out=np.full(n_comb, np.nan)))
    fwhm = np.array(
        [
            fwhm_from_histogram(hist[i, 1:-1], acc.eps_bin, sigma[i]) if n[i] > 0 else math.nan
            for i in range(n_comb)
        ]
    )
    # one-sided low-energy tail (energy loss, jaw edges): fraction below mean - 3 rms,
    # 0.13 % for a Gaussian; from the fine histogram (bin centres)
    centres = acc.eps_lo + (np.arange(acc.n_bins) + 0.5) * acc.eps_bin
    low = np.full(n_comb, np.nan)
    for i in range(n_comb):
        if n[i] > 0:
            below = centres < mean[i] - 3.0 * sigma[i]
            low[i] = (hist[i, 0] + hist[i, 1:-1][below].sum()) / n[i]
    spot = None
    if spot_index is not None and spot_grid is not None:
        edges = spot_grid.edges()
        sel = np.ones(v["eps"].size if v else 0, dtype=bool)
        for c, s, k in zip(classes, SLITS, spot_index, strict=True):
            if sel.size:
                sel &= c.table[cand.classes[s], k] > 0
        if sel.size:
            spot, _, _ = np.histogram2d(
                1e3 * v["x_timepix_m"][sel], 1e3 * v["y_timepix_m"][sel], bins=edges
            )
        else:
            spot = np.zeros((edges[0].size - 1, edges[1].size - 1))
    return PointStatistics(sums=sums, fwhm_eps=fwhm, spot=spot, low_tail=low)


def table_rows(
    point: ScanPoint,
    currents_a: dict[str, float],
    stats: PointStatistics,
    grid: SlitGrid,
    n_particles: int,
    intensity: float,
) -> list[dict[str, Any]]:
    """One row per slit combination of a scan point (module doc)."""
    s = stats.sums
    n = s[0]
    safe = np.where(n > 0, n, 1.0)

    def mean(i: int) -> np.ndarray:
        return np.where(n > 0, s[i] / safe, np.nan)

    def rms(i: int) -> np.ndarray:
        m = s[i] / safe
        return np.where(n > 0, np.sqrt(np.clip(s[i + 1] / safe - m * m, 0.0, None)), np.nan)

    e0 = point.energy_mev
    eps_mean = mean(1)
    mean_energy = e0 * (1.0 + eps_mean)
    scale = np.where(n > 0, e0 / np.where(n > 0, mean_energy, 1.0), np.nan)
    columns = {
        "n_transmitted": n.astype(np.int64),
        "transmission": n / n_particles,
        "positrons_per_bunch": n / n_particles * intensity,
        "mean_energy_mev": mean_energy,
        "rel_spread_rms": rms(1) * scale,
        "rel_spread_fwhm": stats.fwhm_eps * scale,
        "low_tail_fraction": stats.low_tail
        if stats.low_tail is not None
        else np.full(n.size, np.nan),
        "x_target_mm": mean(3),
        "y_target_mm": mean(5),
        "sigma_x_target_mm": rms(3),
        "sigma_y_target_mm": rms(5),
        "x_timepix_mm": mean(7),
        "y_timepix_mm": mean(9),
        "sigma_x_timepix_mm": rms(7),
        "sigma_y_timepix_mm": rms(9),
    }
    rows = []
    for i, combo in enumerate(grid.combinations()):
        row: dict[str, Any] = {
            "energy_mev": e0,
            "dhstb01_current_a": currents_a["DHSTB01"],
            "dhstb02_current_a": currents_a["DHSTB02"],
        }
        row.update(combo)
        for k, col in columns.items():
            row[k] = col[i].item()
        rows.append(row)
    return rows


def spot_setting_index(grid: SlitGrid, defaults: dict[str, Any]) -> tuple[int, ...]:
    """Per slit: the index of the default setting if it is in the grid, else the middle."""
    return tuple(
        grid.settings[s].index(defaults[s])
        if defaults[s] in grid.settings[s]
        else len(grid.settings[s]) // 2
        for s in SLITS
    )


def concat_rows(parts: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for part in parts for row in part]
