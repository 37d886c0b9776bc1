"""Run-level offline table of PADME: one row per run, read by PADME's ``OfflineServer``.

PADME reads the file (``UserAnalysis/AnalysisBase/src/OfflineServer.cc`` in
PADME-Experiment/padme-fw) with ``while (!eof()) { in >> RunID >> runStartTime >> ... }``
into a ``RunInfo`` struct: ``int RunID``, ``long long runStartTime/runStopTime`` (UTC
seconds), ``float`` energies, ``int nFiles``, ``double runPOT``, ``float`` for the rest,
``int period``, ``float LGCorr``. So this writer follows the real 2022 file
(``run_level_offline_db_2022_witherr_patch_RIGHT_periods_lgcorr.txt``):

* tab-separated, no header line (a ``#`` line or a ``0.0`` in an integer column puts the
  stream in a failed state that ``eof()`` never ends: the reader loops for ever);
* integer columns (RunID, times, nFiles, period, the 2025 flags) as integers;
* ``DHSTB01Energy``/``DHSTB02Energy`` with 2 decimals; other values as Python ``repr``;
* unknown values as that file carries them: ``0.0``, ``0`` for integers, ``LGCorr`` 1.0;
* rows only for real runs (no run numbers: refused, as for RunEnergy).

Versioned by table format: ``"2022"`` has the 47 columns of :data:`COLUMNS_2022`;
``"2025"`` the same 47 plus two trailing integer flags (meaning not documented, written 0).

Set points and derived values are kept apart: ``DHSTB01Energy`` is the planned (or applied)
total beam energy; ``DHSTB02Energy`` the label of the DHSTB02 set current on its own scale
(:mod:`beamline.labels`, 2022 and 2025 conventions); ``period`` the plan's. ``runPOT`` and the
other derived columns come only from the store's ``measured`` records; a planned POT
(``target_pot`` shared over the point's runs) is written only when asked, and the rows that
carry it are listed in :attr:`OfflineTable.planned_pot_runs` so that callers mark them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ScanplanError
from ..records import Plan, Point
from .common import RunMap, check_runs, finite, fmt_float, select_points

COLUMNS_2022: tuple[str, ...] = tuple(
    """RunID runStartTime runStopTime DHSTB01Energy DHSTB02Energy nFiles runPOT bunchLength
    beamStart tgx tgy cogx cogy calibEnergyFactor calibTimeEnergyFactor tempQuadTL corrQuadTL
    tempQuadTR corrQuadTR tempQuadBR corrQuadBR tempQuadBL corrQuadBL errCOGX errCOGY newTargX
    newTargY errnewTargX errnewTargY sigmaDPhi errsigmaDPhi sigmaDTheta errsigmaDTheta sigmaCOGX
    errsigmaCOGX sigmaCOGY errsigmaCOGY E1E2 errE1E2 dt errdt sigmaE1E2 errsigmaE1E2 dsigmadt
    errsigmadt period LGCorr""".split()
)
#: names given here to the two undocumented trailing integer flags of the 2025 table
FLAG_COLUMNS_2025: tuple[str, ...] = ("flag47", "flag48")
TABLE_FORMATS: dict[str, tuple[str, ...]] = {
    "2022": COLUMNS_2022,
    "2025": COLUMNS_2022 + FLAG_COLUMNS_2025,
}
#: columns that come from the plan and the run map (set points), never from measurements
SETPOINT_COLUMNS = frozenset({"RunID", "DHSTB01Energy", "DHSTB02Energy", "period"})
#: columns that come from the store's run events (start/stop), never from measurements
TIME_COLUMNS = frozenset({"runStartTime", "runStopTime"})
#: columns PADME reads into int / long long
INTEGER_COLUMNS = frozenset({"RunID", "nFiles", "period", *TIME_COLUMNS, *FLAG_COLUMNS_2025})
#: energies written with 2 decimals like the real file
ENERGY_COLUMNS = frozenset({"DHSTB01Energy", "DHSTB02Energy"})
#: value of an unknown column where PADME's files do not carry 0 (the 2022 file: LGCorr 1.0)
UNKNOWN_VALUES: Mapping[str, float] = {"LGCorr": 1.0}
#: aliases accepted in the store's ``measured`` payloads
MEASURED_ALIASES: Mapping[str, str] = {"pot": "runPOT", "n_files": "nFiles"}
POT_SOURCES = ("store", "planned")

assert len(COLUMNS_2022) == 47


def table_columns(table_format: str) -> tuple[str, ...]:
    """Column names of a table format ("2022": 47, "2025": 49)."""
    try:
        return TABLE_FORMATS[str(table_format)]
    except KeyError:
        raise ScanplanError(
            f"unknown offline table format {table_format!r}; known: {', '.join(TABLE_FORMATS)}"
        ) from None


def dhstb02_label_energy_mev(point: Point, convention: str) -> float:
    """``DHSTB02Energy`` label [MeV] of the point's DHSTB02 set current (facts 4b)."""
    from beamline.errors import BeamlineInputError
    from beamline.labels import dhstb02_label_mev

    try:
        return dhstb02_label_mev(point.dhstb02_current_a, convention)
    except BeamlineInputError as exc:
        raise ScanplanError(str(exc)) from None


def label_convention_for(table_format: str, convention: str | None) -> str:
    """The DHSTB02 label convention: ``convention`` or the table format's default."""
    from beamline.errors import BeamlineInputError
    from beamline.labels import default_convention, versioned_name

    try:
        name = convention or default_convention(table_format)
        versioned_name(name)
    except BeamlineInputError as exc:
        raise ScanplanError(str(exc)) from None
    return name


def _cell(column: str, value: float | int) -> str:
    if column in INTEGER_COLUMNS:
        f = finite(value, column)
        if f != int(f):
            raise ScanplanError(f"column {column} must be an integer, got {value!r}")
        return str(int(f))
    if column in ENERGY_COLUMNS:
        return f"{finite(value, column):.2f}"
    return fmt_float(float(value), column)


@dataclass(frozen=True)
class OfflineTable:
    """The table text and what the caller must report about it."""

    text: str
    columns: tuple[str, ...]
    label_convention: str
    n_rows: int
    #: runs whose runPOT is the planned share of target_pot, not a recorded POT
    planned_pot_runs: tuple[int, ...] = field(default=())
    #: runs with no recorded POT (written 0.0)
    missing_pot_runs: tuple[int, ...] = field(default=())
    #: runs with no recorded start or stop time (written 0)
    missing_time_runs: tuple[int, ...] = field(default=())


def offline_table(
    plan: Plan,
    runs: RunMap | None,
    *,
    table_format: str = "2022",
    periods: Iterable[int] | None = None,
    measured: Mapping[int, Mapping[str, float]] | None = None,
    energies_mev: Mapping[int, float] | None = None,
    run_times_s: Mapping[int, tuple[int | None, int | None]] | None = None,
    pot: str = "store",
    dhstb02_label: str | None = None,
    comment_header: bool = False,
) -> OfflineTable:
    """Build the table. ``runs`` period -> run numbers (required); ``measured`` run ->
    {column: value} (the store's measured records; ``pot`` is an alias of ``runPOT``);
    ``energies_mev`` run -> applied total energy replacing the planned ``DHSTB01Energy``;
    ``run_times_s`` run -> (start, stop) integer UTC seconds (None: unknown, written 0);
    ``pot`` "store" (recorded only) or "planned" (target_pot / runs of the point where no POT
    is recorded); ``dhstb02_label`` a convention of :mod:`beamline.labels` (default: the
    table format's); ``comment_header`` adds a ``#`` name line PADME's reader cannot read."""
    columns = table_columns(table_format)
    if pot not in POT_SOURCES:
        raise ScanplanError(f"runPOT source must be one of {', '.join(POT_SOURCES)}, got {pot!r}")
    if not runs:
        raise ScanplanError(
            "the offline table needs run numbers (rows are runs): give --runs FILE or a store "
            "with this plan's runs"
        )
    convention = label_convention_for(table_format, dhstb02_label)
    points = select_points(plan, periods)
    run_map = check_runs(plan, runs)
    measured = measured or {}
    times = run_times_s or {}
    rows: list[tuple[int, str]] = []
    planned_pot: list[int] = []
    missing_pot: list[int] = []
    missing_time: list[int] = []
    for point in points:
        numbers = run_map.get(point.period, [])
        label = dhstb02_label_energy_mev(point, convention)
        for run in numbers:
            values: dict[str, float | int] = {
                c: (0 if c in INTEGER_COLUMNS else UNKNOWN_VALUES.get(c, 0.0)) for c in columns
            }
            recorded = {MEASURED_ALIASES.get(k, k): v for k, v in measured.get(run, {}).items()}
            for key, value in recorded.items():
                if key in values and key not in SETPOINT_COLUMNS | TIME_COLUMNS:
                    values[key] = value
            if "runPOT" not in recorded:
                if pot == "planned":
                    values["runPOT"] = point.target_pot / len(numbers)
                    planned_pot.append(run)
                else:
                    missing_pot.append(run)
            start, stop = times.get(run, (None, None))
            if start is None or stop is None:
                missing_time.append(run)
            values["runStartTime"] = start or 0
            values["runStopTime"] = stop or 0
            values["RunID"] = run
            values["DHSTB01Energy"] = (energies_mev or {}).get(run, point.e_beam_mev)
            values["DHSTB02Energy"] = label
            values["period"] = point.period
            rows.append((run, "\t".join(_cell(c, values[c]) for c in columns)))
    if not rows:
        raise ScanplanError("none of the selected points has a run in the run map")
    rows.sort()
    lines = ["# " + "\t".join(columns)] if comment_header else []
    lines += [text for _, text in rows]
    return OfflineTable(
        text="\n".join(lines) + "\n",
        columns=columns,
        label_convention=convention,
        n_rows=len(rows),
        planned_pot_runs=tuple(sorted(planned_pot)),
        missing_pot_runs=tuple(sorted(missing_pot)),
        missing_time_runs=tuple(sorted(missing_time)),
    )


def write_offline_db(plan: Plan, runs: RunMap | None = None, **options: Any) -> str:
    """Table text of :func:`offline_table` (same keyword options)."""
    return offline_table(plan, runs, **options).text
