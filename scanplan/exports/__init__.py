"""Exports of a plan to PADME's bookkeeping formats (facts file section 6).

Each format is one small module whose writer returns text; the CLI writes it atomically.
The registry :data:`FORMATS` maps the ``--format`` names to them; :func:`export_text` is the
one entry point a notebook or the CLI calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..errors import ScanplanError
from ..records import Plan
from .common import RunMap, parse_runs_text, read_runs_file
from .csv_export import write_csv
from .mc_macro import McMacroOptions, write_mc_macro
from .offline_db import TABLE_FORMATS, OfflineTable, offline_table, write_offline_db
from .runenergy import write_runenergy
from .sor_tag import format_sor_tag, parse_sor_tag, write_sor_tags


@dataclass(frozen=True)
class ExportOptions:
    """Everything a writer may need; each format uses the fields that apply to it.

    ``runs`` period -> run numbers; ``table_format`` of the offline table ("2022"/"2025");
    ``periods`` restricts the points; ``measured`` run -> {offline column: value};
    ``energies_mev`` run -> applied energy for RunEnergy; ``mc`` the MC macro choices;
    ``run_times_s`` run -> (start, stop) UTC seconds; ``pot`` "store" or "planned";
    ``dhstb02_label`` the DHSTB02 label convention; ``header`` adds a commented column line
    to the offline table (PADME's reader does not accept it).
    """

    runs: RunMap | None = None
    table_format: str = "2022"
    periods: Iterable[int] | None = None
    measured: Mapping[int, Mapping[str, float]] | None = None
    energies_mev: Mapping[int, float] | None = None
    mc: McMacroOptions | None = None
    header: bool = False
    run_times_s: Mapping[int, tuple[int | None, int | None]] | None = None
    pot: str = "store"
    dhstb02_label: str | None = None


@dataclass(frozen=True)
class ExportFormat:
    name: str
    description: str
    needs_runs: bool
    write: Callable[[Plan, ExportOptions], str]


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "runenergy",
            "RunEnergy.txt: '<run> <E_beam MeV>' per run",
            True,
            lambda plan, o: write_runenergy(
                plan, o.runs, periods=o.periods, energies_mev=o.energies_mev
            ),
        ),
        ExportFormat(
            "offline-db",
            "run-level offline table (47 columns '2022', 49 columns '2025'), one row per run",
            True,
            lambda plan, o: offline_table_of(plan, o).text,
        ),
        ExportFormat(
            "mc-macro",
            "Geant4 macro blocks per point (dipole fields, slits, quads, beam)",
            False,
            lambda plan, o: write_mc_macro(plan, periods=o.periods, options=o.mc),
        ),
        ExportFormat(
            "csv",
            "all point fields as CSV",
            False,
            lambda plan, o: write_csv(plan, periods=o.periods),
        ),
        ExportFormat(
            "sor-tag",
            "start-of-run tag per point for the RunControl comment",
            False,
            lambda plan, o: write_sor_tags(plan, periods=o.periods),
        ),
    )
}


def offline_table_of(plan: Plan, o: ExportOptions) -> OfflineTable:
    """The offline table of ``plan`` under ``o`` (text and the rows to mark)."""
    return offline_table(
        plan,
        o.runs,
        table_format=o.table_format,
        periods=o.periods,
        measured=o.measured,
        energies_mev=o.energies_mev,
        run_times_s=o.run_times_s,
        pot=o.pot,
        dhstb02_label=o.dhstb02_label,
        comment_header=o.header,
    )


def export_text(plan: Plan, fmt: str, options: ExportOptions | None = None) -> str:
    """Text of ``plan`` in format ``fmt`` (one of :data:`FORMATS`)."""
    try:
        spec = FORMATS[fmt]
    except KeyError:
        raise ScanplanError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}") from None
    return spec.write(plan, options or ExportOptions())


__all__ = [
    "FORMATS",
    "TABLE_FORMATS",
    "ExportFormat",
    "ExportOptions",
    "McMacroOptions",
    "OfflineTable",
    "RunMap",
    "export_text",
    "format_sor_tag",
    "offline_table",
    "offline_table_of",
    "parse_runs_text",
    "parse_sor_tag",
    "read_runs_file",
    "write_csv",
    "write_mc_macro",
    "write_offline_db",
    "write_runenergy",
    "write_sor_tags",
]
