"""Spread advisor: the transmission-versus-spread front, the best slit setting for a target
spread, and the sensitivity of one setting's spread to the assumed source."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .apertures import Jaws
from .errors import BeamlineInputError
from .lattice import load_settings
from .source import BeamSource, spread_source

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


SPREAD_MEASURES = ("rms", "fwhm")


def tradeoff_curve(table: pd.DataFrame, measure: str = "rms") -> pd.DataFrame:
    """Transmission-versus-spread front per scan point: sorted by spread, the rows whose
    transmission beats every row of smaller (or equal) spread."""
    import pandas as pd

    col = _measure_column(measure)
    keys = ["energy_mev", "dhstb01_current_a", "dhstb02_current_a"]
    parts = []
    for _, group in table.dropna(subset=[col]).groupby(keys, sort=True):
        g = group.sort_values([col, "transmission"], ascending=[True, False])
        previous_best = g["transmission"].cummax().shift(fill_value=-1.0)
        parts.append(g[g["transmission"] > previous_best])
    if not parts:
        return table.iloc[0:0].copy()
    return pd.concat(parts, ignore_index=True)


def _measure_column(measure: str) -> str:
    if measure not in SPREAD_MEASURES:
        raise BeamlineInputError(f"spread measure must be one of {SPREAD_MEASURES}")
    return f"rel_spread_{measure}"


def advise(
    table: pd.DataFrame,
    target_rel_spread: float,
    *,
    measure: str = "rms",
    min_transmitted: int = 100,
) -> pd.DataFrame:
    """Per energy (and currents), the slit setting with the highest transmission whose
    relative spread is at most ``target_rel_spread`` (e.g. 0.0025 for 0.25 %).

    Rows with fewer than ``min_transmitted`` particles are not trusted. Energies with no
    qualifying row are absent from the result.
    """
    if not (math.isfinite(target_rel_spread) and target_rel_spread > 0):
        raise BeamlineInputError("target relative spread must be > 0 (e.g. 0.0025)")
    col = _measure_column(measure)
    ok = table[(table["n_transmitted"] >= min_transmitted) & (table[col] <= target_rel_spread)]
    if ok.empty:
        return ok.copy()
    keys = ["energy_mev", "dhstb01_current_a", "dhstb02_current_a"]
    idx = ok.groupby(keys, sort=True)["transmission"].idxmax()
    return table.loc[idx.to_numpy()].reset_index(drop=True)


# ---- sensitivity -----------------------------------------------------------------------
def spread_sensitivity(
    energy_mev: float,
    setting: Mapping[str, Jaws] | None = None,
    *,
    settings: str | None = None,
    source: BeamSource | None = None,
    divergence_scales: Sequence[float] = (0.5, 1.0, 1.5, 2.0),
    window_thickness_scales: Sequence[float] = (0.0, 1.0, 2.0),
    window_layer: str = "mylar_window",
    energy_loss_modes: Sequence[str] = ("off", "mean", "full"),
    n_particles: int = 200_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Spread of one slit setting (default: the settings' gaps) against the assumed input
    divergence (waist divergence scaled, waist size kept), the window scattering (window
    thickness scaled; 0 = no window layer) and the energy loss in the layers (off, mean only,
    full with fluctuations). One row per variant: ``variant, divergence_scale,
    window_thickness_scale, energy_loss, transmission, rel_spread_rms, rel_spread_fwhm,
    low_tail_fraction, mean_energy_mev``.
    """
    import pandas as pd

    from .spread import compute_spread, make_grid, settings_jaws

    settings_name = load_settings(settings).name
    setting = dict(setting or settings_jaws(settings_name))
    base = source or spread_source(settings_name)
    grid = make_grid(
        settings_name, jaws_mm={s: [(j.negative_mm, j.positive_mm)] for s, j in setting.items()}
    )
    rows = []
    mode0 = base.energy_loss
    variants: list[tuple[str, float, float, str]] = (
        [("divergence", f, 1.0, mode0) for f in divergence_scales]
        + [("window", 1.0, w, mode0) for w in window_thickness_scales]
        + [("energy_loss", 1.0, 1.0, m) for m in energy_loss_modes]
    )
    for kind, fdiv, fwin, mode in variants:
        src = base.with_divergence_scale(fdiv).with_energy_loss(mode)
        if fwin == 0:
            src = src.without_layer(window_layer)
        else:
            thick = {la.name: la.thickness_m for la in base.layers}[window_layer]
            src = src.with_layer(window_layer, thickness_m=thick * fwin)
        res = compute_spread(
            [energy_mev],
            grid=grid,
            settings=settings_name,
            source=src,
            n_particles=n_particles,
            seed=seed,
            scheduler="sync",
        )
        r = res.table.iloc[0]
        rows.append(
            {
                "variant": kind,
                "divergence_scale": fdiv,
                "window_thickness_scale": fwin,
                "energy_loss": mode,
                "transmission": r["transmission"],
                "rel_spread_rms": r["rel_spread_rms"],
                "rel_spread_fwhm": r["rel_spread_fwhm"],
                "low_tail_fraction": r["low_tail_fraction"],
                "mean_energy_mev": r["mean_energy_mev"],
            }
        )
    return pd.DataFrame(rows)
