"""``scanplan spread``: energy spread and transmission against slit gaps, per energy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ScanplanError
from ..spread import DEFAULT_N_PARTICLES
from .common import (
    MAX_PARTICLES,
    FloatRange,
    check_number,
    check_output_path,
    check_settings,
    console,
    err_console,
    guarded,
    print_json,
    range_option,
    rich_table,
)

MAX_TABLE_ROWS = 60


def parse_jaws(values: list[str]) -> dict[str, list[tuple[float, float]]]:
    """``SLIT=NEG:POS`` (repeatable) -> ``{slit: [(neg_mm, pos_mm), ...]}``."""
    from beamline.names import SLITS  # numpy: not at import (scanplan --help stays fast)

    out: dict[str, list[tuple[float, float]]] = {}
    for text in values:
        try:
            slit, pair = text.split("=", 1)
            neg, pos = (float(v) for v in pair.split(":"))
        except ValueError:
            raise ScanplanError(
                f"--jaws: cannot read '{text}'; use SLIT=NEG:POS in mm, e.g. SLTB4=-1.2:0.8"
            ) from None
        key = slit.strip().upper()
        if key not in SLITS:
            raise ScanplanError(f"--jaws: unknown slit '{slit}'; slits: {', '.join(SLITS)}")
        out.setdefault(key, []).append((neg, pos))
    return out


@guarded
def spread(
    energy_mev: Annotated[
        FloatRange | None,
        range_option("Beam energies [MeV] (default: the reference energy of the settings)."),
    ] = None,
    sltb2_mm: Annotated[
        FloatRange | None, range_option("SLTB2 full gaps [mm] (default: the settings' gap).")
    ] = None,
    sltb3_mm: Annotated[
        FloatRange | None, range_option("SLTB3 full gaps [mm] (default: the settings' gap).")
    ] = None,
    sltb4_mm: Annotated[
        FloatRange | None, range_option("SLTB4 full gaps [mm] (default: the settings' gap).")
    ] = None,
    sltb5_mm: Annotated[
        FloatRange | None, range_option("SLTB5 full gaps [mm] (default: the settings' gap).")
    ] = None,
    jaws: Annotated[
        list[str] | None,
        typer.Option(help="Independent jaws SLIT=NEG:POS in mm; repeat for more settings."),
    ] = None,
    dhstb01_offset_a: Annotated[
        FloatRange, range_option("DHSTB01 current offsets from the matched current [A].")
    ] = FloatRange([0.0]),
    dhstb02_rel_offset: Annotated[
        float, typer.Option(help="DHSTB02 momentum setting relative to the beam, e.g. -0.006.")
    ] = 0.0,
    beam_delta_offset: Annotated[
        float | None,
        typer.Option(help="Mean relative momentum offset of the source beam (e.g. 0.002)."),
    ] = None,
    sigma_delta: Annotated[
        float | None, typer.Option(help="Relative rms momentum spread of the source beam.")
    ] = None,
    particles: Annotated[
        float, typer.Option(help="Particles per scan point (a whole number, e.g. 1e5).")
    ] = DEFAULT_N_PARTICLES,
    seed: Annotated[int, typer.Option(help="Base random seed.")] = 0,
    scattering: Annotated[
        bool, typer.Option(help="Highland scattering in the Mylar window and the target.")
    ] = True,
    target_spread: Annotated[
        float | None,
        typer.Option(
            help="Target relative spread for the advisor (a fraction; default: the beam-energy "
            "spread of the physics model, default_bes in lattices/physics/)."
        ),
    ] = None,
    measure: Annotated[str, typer.Option(help="Spread measure: rms or fwhm.")] = "rms",
    settings: Annotated[str | None, typer.Option(help="Settings name.")] = None,
    energy_loss: Annotated[
        str,
        typer.Option(
            help="Energy loss in the window and target: full (mean and fluctuations), mean, off."
        ),
    ] = "full",
    source: Annotated[
        str | None,
        typer.Option(
            help="Beam source file (lattices/btf_padme/beams): default the settings' spread "
            "source (padme_mc_run3: PADME's beam after the selection); linac_positron_run3 "
            "for the LINAC beam the slits select from."
        ),
    ] = None,
    scheduler: Annotated[
        str, typer.Option(help="Dask: local (default), sync, or a scheduler address.")
    ] = "local",
    workers: Annotated[int | None, typer.Option(help="Local worker processes.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the table (.csv or .parquet).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the plots (PNG).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
) -> None:
    """Energy spread and transmission for every energy and slit setting; advisor for a
    target spread. Slit jaws are black absorbers."""
    check_output_path(out, "--out", suffixes=(".csv", ".parquet", ".pq"))
    check_output_path(plot, "--plot", suffixes=(".png",))
    check_number(particles, "--particles", low=1, high=MAX_PARTICLES)
    check_number(target_spread, "--target-spread", low=0, high=1, low_open=True)
    check_number(sigma_delta, "--sigma-delta", low=0, high=1)
    check_number(beam_delta_offset, "--beam-delta-offset", low=-1, high=1)
    check_number(dhstb02_rel_offset, "--dhstb02-rel-offset", low=-1, high=1)
    check_settings(settings)
    from rich.progress import Progress

    from beamline.names import SLITS
    from scanplan.spread import spread_report

    options = {"SLTB2": sltb2_mm, "SLTB3": sltb3_mm, "SLTB4": sltb4_mm, "SLTB5": sltb5_mm}
    gaps = {slit: values for slit in SLITS if (values := options.get(slit)) is not None}
    beam_changes = {
        k: v
        for k, v in (("delta_offset", beam_delta_offset), ("sigma_delta", sigma_delta))
        if v is not None
    }
    if measure not in ("rms", "fwhm"):
        raise ScanplanError(f"--measure must be rms or fwhm, got '{measure}'")
    with Progress(console=err_console, transient=True, disable=json_out) as prog:
        task = prog.add_task("tracking scan points", total=None)

        def tick(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        report = spread_report(
            energy_mev,
            gaps_mm=gaps,
            jaws_mm=parse_jaws(jaws or []),
            settings=settings,
            source=source,
            energy_loss=energy_loss,
            n_particles=particles,
            seed=seed,
            scattering=scattering,
            beam_changes=beam_changes,
            dhstb01_offsets_a=dhstb01_offset_a,
            dhstb02_relative_offset=dhstb02_rel_offset,
            target_rel_spread=target_spread,
            measure=measure,
            out=out,
            plot=plot,
            scheduler=scheduler,
            n_workers=workers,
            progress=tick,
        )
    if json_out:
        print_json(report.rows)
        return
    columns = [
        ("energy_mev", "E [MeV]", ".2f"),
        ("dhstb01_current_a", "DHSTB01 [A]", ".3f"),
        ("sltb2_mm", "SLTB2", ".2f"),
        ("sltb3_mm", "SLTB3", ".2f"),
        ("sltb4_mm", "SLTB4", ".2f"),
        ("sltb5_mm", "SLTB5", ".2f"),
        ("transmission", "transm.", ".2e"),
        ("positrons_per_bunch", "e+/bunch", ".0f"),
        ("mean_energy_mev", "<E> [MeV]", ".3f"),
        ("rel_spread_rms", "σE/E rms", ".5f"),
        ("rel_spread_fwhm", "FWHM/E", ".5f"),
        ("x_timepix_mm", "x TPX [mm]", ".2f"),
        ("sigma_x_timepix_mm", "σx TPX", ".2f"),
    ]
    meta = report.metadata
    console.print(
        f"{len(report.rows)} rows, {meta['n_particles']:.3g} particles per scan point, "
        f"seed {meta['seed']}, scattering: {meta['scattering_model']}; {meta['slit_model']}",
        highlight=False,
    )
    console.print(
        f"source: {meta['source_definition']}; engine: {meta['engine']}; energy loss: "
        f"{meta['energy_loss']}",
        highlight=False,
    )
    if len(report.rows) <= MAX_TABLE_ROWS:
        console.print(rich_table("Energy spread and transmission", report.rows, columns))
    else:
        console.print(
            f"(full table of {len(report.rows)} rows: use --out FILE or --json)", highlight=False
        )
    title = f"Best setting per energy for {measure} spread <= {100 * report.target_rel_spread:g} %"
    if report.advice:
        console.print(rich_table(title, report.advice, columns))
    else:
        console.print(f"{title}: no setting reaches the target", highlight=False)
    for label, path in (("table", out), ("plot", plot)):
        if path is not None:
            console.print(f"{label} written to {path}", highlight=False)
