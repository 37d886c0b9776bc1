"""Optics report behind ``scanplan optics`` (callable from notebooks too)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class OpticsReport:
    settings: str
    energy_mev: float
    currents_a: dict[str, float]
    rows: list[dict[str, Any]]
    plot_path: Path | None = None
    tfs_path: Path | None = None


def optics_report(
    settings: str | None = None,
    energy_mev: float | None = None,
    plot_path: Path | None = None,
    tfs_path: Path | None = None,
) -> OpticsReport:
    """Key-point optics for ``settings`` at ``energy_mev`` [MeV] with the dipoles matched.

    Without ``energy_mev`` the settings' reference energy is used, with the dipole currents
    of the settings file as they are. ``tfs_path`` also writes the whole twiss table as TFS.
    """
    from beamline import optics
    from beamline.model import BeamLine

    bl = BeamLine(settings, energy_mev, match_dipoles=energy_mev is not None)
    table = optics.key_points(bl)
    if plot_path is not None:
        from beamline.plots import optics_figure

        from .figures import write_figure

        write_figure(optics_figure(bl), plot_path, dpi=120)
    if tfs_path is not None:
        from scanplan.exports.tfs_export import write_twiss_tfs

        write_twiss_tfs(bl, tfs_path)
    return OpticsReport(
        settings=bl.settings.name,
        energy_mev=bl.energy_mev,
        currents_a=bl.currents_a(),
        rows=table.to_dict(orient="records"),
        plot_path=plot_path,
        tfs_path=tfs_path,
    )
