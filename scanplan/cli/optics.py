"""``scanplan optics``: beta functions, dispersion and R16 at the key points of the line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..figures import check_figure_path
from .common import check_output_path, check_settings, console, guarded, print_json, rich_table


@guarded
def optics(
    settings: Annotated[
        str | None, typer.Option(help="Settings name (lattices/btf_padme/settings).")
    ] = None,
    energy_mev: Annotated[
        float | None,
        typer.Option(
            help="Total beam energy [MeV]; dipoles are matched to it. Default: the settings' reference."
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write a figure (PNG, PDF or SVG): layout, beta and D along s, beam envelope "
            "against the apertures."
        ),
    ] = None,
    tfs: Annotated[
        Path | None,
        typer.Option(help="Write the whole twiss table as a MAD-X TFS file (tfs-pandas)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
) -> None:
    """Optics table at SLTB2..TimePix for a settings entry and beam energy."""
    check_output_path(tfs, "--tfs")
    check_settings(settings)
    from scanplan.optics import optics_report

    if plot is not None:
        check_figure_path(plot)  # before the model is built

    report = optics_report(settings=settings, energy_mev=energy_mev, plot_path=plot, tfs_path=tfs)
    if json_out:
        print_json(report.rows)
        return
    columns = [
        ("name", "point", ""),
        ("s_m", "s [m]", ".3f"),
        ("betx_m", "βx [m]", ".3f"),
        ("bety_m", "βy [m]", ".3f"),
        ("alfx", "αx", ".3f"),
        ("alfy", "αy", ".3f"),
        ("dx_m", "Dx [m]", ".4f"),
        ("dpx", "Dpx", ".4f"),
        ("r16_m", "R16 [m]", ".4f"),
        ("sigma_x_mm", "σx beam [mm]", ".2f"),
        ("sigma_y_mm", "σy beam [mm]", ".2f"),
    ]
    title = (
        f"BTF→PADME optics — settings {report.settings}, E = {report.energy_mev:.3f} MeV, "
        f"DHSTB01 {report.currents_a['DHSTB01']:.3f} A"
    )
    console.print(rich_table(title, report.rows, columns))
    if plot is not None:
        console.print(f"plot written to {plot}")
    if tfs is not None:
        console.print(f"TFS twiss table written to {tfs}")
