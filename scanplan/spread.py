"""Spread report behind ``scanplan spread`` (callable from notebooks too): runs the engine
(:func:`beamline.spread.compute_spread`) with the TimePix spot grid built from the
detector's geometry (:func:`timepix_spot_grid`), and writes tables atomically
(:func:`write_table`; beamline writes no files)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ScanplanError

#: particles tracked per scan point unless asked otherwise (the sample size of the full-table
#: benchmark in benchmarks/bench_spread.py)
DEFAULT_N_PARTICLES = 1_000_000

#: Columns every JSON row carries first (the rest of the table follows).
KEY_COLUMNS = (
    "energy_mev",
    "dhstb01_current_a",
    "dhstb02_current_a",
    "sltb2_mm",
    "sltb3_mm",
    "sltb4_mm",
    "sltb5_mm",
    "transmission",
    "positrons_per_bunch",
    "rel_spread_rms",
    "rel_spread_fwhm",
    "mean_energy_mev",
)


@dataclass
class SpreadReport:
    """Result of :func:`spread_report`: the engine result, JSON-ready rows, advice rows."""

    result: Any  # beamline.spread.SpreadResult
    rows: list[dict[str, Any]]
    advice: list[dict[str, Any]]
    target_rel_spread: float
    out_path: Path | None = None
    plot_path: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


#: Beam-spot histogram bin at the TimePix, in pixels (8 pixels of 55 um = 0.44 mm).
SPOT_BIN_PIXELS = 8


def timepix_spot_grid(geometry: Any = None, bin_pixels: int = SPOT_BIN_PIXELS) -> Any:
    """Spot grid of the engine over the TimePix active area (``hw_interfaces.timepix``
    geometry, default: the 2 x 6 chip array), bins of ``bin_pixels`` pixels, centred on the
    PADME axis plus the geometry's offset."""
    from beamline.spread import SpotGrid
    from hw_interfaces.timepix import TimepixGeometry

    g = geometry or TimepixGeometry()
    half_w, half_h = 0.5 * g.width_mm, 0.5 * g.height_mm
    bin_mm = bin_pixels * g.pixel_mm
    grid = SpotGrid.uniform(half_w, half_h, bin_mm)
    return SpotGrid(
        tuple(x + g.offset_x_mm for x in grid.x_edges_mm),
        tuple(y + g.offset_y_mm for y in grid.y_edges_mm),
    )


def write_table(result: Any, path: Path | str) -> Path:
    """Write a spread table as CSV (``.csv``) or Parquet (``.parquet``/``.pq``, metadata in
    the table attributes), atomically (``scanplan.atomic``)."""
    import io

    from .atomic import atomic_write_bytes, atomic_write_text

    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ScanplanError(f"output file {out} must end in .csv or .parquet")
    if not out.parent.exists():
        raise ScanplanError(f"output folder {out.parent} does not exist")
    if suffix == ".csv":
        return atomic_write_text(out, result.table.to_csv(index=False))
    table = result.table.copy()
    table.attrs = {k: str(v) for k, v in result.metadata.items()}
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return atomic_write_bytes(out, buf.getvalue())


def _particles(n: float) -> int:
    if not (n >= 1 and float(n).is_integer()):
        raise ScanplanError(f"--particles must be a whole number >= 1, got {n:g}")
    return int(n)


def spread_report(
    energies_mev: Sequence[float] | None = None,
    *,
    gaps_mm: Mapping[str, Sequence[float]] | None = None,
    jaws_mm: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    settings: str | None = None,
    source: str | None = None,
    energy_loss: str = "full",
    n_particles: float = DEFAULT_N_PARTICLES,
    seed: int = 0,
    scattering: bool = True,
    beam_changes: Mapping[str, float] | None = None,
    dhstb01_offsets_a: Sequence[float] = (0.0,),
    dhstb02_relative_offset: float = 0.0,
    target_rel_spread: float | None = None,
    measure: str = "rms",
    out: Path | None = None,
    plot: Path | None = None,
    scheduler: str | None = "local",
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SpreadReport:
    """Spread/transmission table for ``energies_mev`` [MeV] (default: the settings'
    reference energy) x DHSTB01 current offsets [A] x every slit combination.

    ``gaps_mm``/``jaws_mm`` per slit (``{"SLTB4": [...]}``; others at the settings'
    values); ``target_rel_spread`` (a fraction) for the advisor, by default the beam-energy
    spread the physics model assumes (``default_bes`` of ``lattices/physics/``); ``out`` a
    ``.csv``/``.parquet`` file (written atomically); ``plot`` a PNG; ``beam_changes`` overrides
    beam parameters (``BeamParameters`` field names, e.g. ``delta_offset``, ``sigma_delta``);
    ``source`` a beam file name (default: the settings' spread source, see
    :func:`beamline.source.spread_source`); ``energy_loss`` "full", "mean" or "off".
    """
    from beamline import spread
    from beamline.lattice import load_settings
    from beamline.source import load_source, spread_source

    n = _particles(n_particles)
    if seed < 0:
        raise ScanplanError(f"--seed must be >= 0, got {seed}")
    s = load_settings(settings)
    energies = list(energies_mev) if energies_mev else [s.reference_energy_mev]
    offsets = list(dhstb01_offsets_a)
    if not offsets:
        raise ScanplanError("--dhstb01-offset-a: no values given")
    for path, kinds in ((out, (".csv", ".parquet", ".pq")), (plot, (".png",))):
        if path is not None:
            if Path(path).suffix.lower() not in kinds:
                raise ScanplanError(f"output file {path} must end in {' or '.join(kinds)}")
            if not Path(path).parent.exists():
                raise ScanplanError(f"folder {Path(path).parent} does not exist")
    grid = spread.make_grid(s.name, gaps_mm=gaps_mm, jaws_mm=jaws_mm)
    points = [
        spread.ScanPoint(
            float(e), dhstb01_offset_a=float(o), dhstb02_relative_offset=dhstb02_relative_offset
        )
        for e in energies
        for o in offsets
    ]
    src = (
        spread_source(s.name, scattering=scattering)
        if source is None
        else load_source(source, scattering=scattering)
    )
    if energy_loss not in ("full", "mean", "off"):
        raise ScanplanError(f"--energy-loss must be full, mean or off, got '{energy_loss}'")
    src = src.with_energy_loss(energy_loss)
    if beam_changes:
        src = src.with_beam(**beam_changes)
    result = spread.compute_spread(
        points=points,
        grid=grid,
        settings=s.name,
        source=src,
        n_particles=n,
        seed=seed,
        scheduler=scheduler,
        n_workers=n_workers,
        progress=progress,
        spot_grid=timepix_spot_grid(),
    )
    table = result.table
    ordered = [*KEY_COLUMNS, *[c for c in table.columns if c not in KEY_COLUMNS]]
    rows = table[ordered].to_dict(orient="records")
    if target_rel_spread is None:
        from .physics.params import load_physics

        target_rel_spread = load_physics().signal.default_bes
    advice = spread.advise(table, target_rel_spread, measure=measure).to_dict(orient="records")
    if out is not None:
        write_table(result, out)
    if plot is not None:
        from beamline.spread_plots import spread_figure

        from .figures import write_figure

        fig = spread_figure(result, measure=measure, target_rel_spread=target_rel_spread)
        write_figure(fig, plot, dpi=110)
    return SpreadReport(
        result=result,
        rows=rows,
        advice=advice,
        target_rel_spread=target_rel_spread,
        out_path=out,
        plot_path=plot,
        metadata=result.metadata,
    )
