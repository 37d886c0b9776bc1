"""Run-level offline table of PADME: one whitespace-separated row per run (facts 6).

Versioned by table format: ``"2022"`` has the 47 columns of :data:`COLUMNS_2022`;
``"2025"`` the same 47 plus two trailing integer flags whose meaning is not documented
(written as 0). Unknown values are ``0.0``. PADME reads the table positionally (whitespace
split, column by index).

Set points and derived values are kept apart: the set-point columns (``RunID``,
``DHSTB01Energy``, ``DHSTB02Energy``, ``period``) come only from the plan and the run map;
the derived/measured columns come only from ``measured`` (run -> {column: value}, e.g. the
latest "measured" records of the store) and are ``0.0`` otherwise.

``DHSTB01Energy`` is the point's planned total beam energy ``e_beam_mev``.
``DHSTB02Energy`` is the label of the DHSTB02 setting on its own scale (facts 4b): the total
energy whose momentum the DHSTB02 set current bends onto the design arc with DHSTB02's
default calibration, without an absolute-scale correction (``dhstb02_label_energy_mev``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
#: columns that come from the plan (set points), never from measurements
SETPOINT_COLUMNS = ("RunID", "DHSTB01Energy", "DHSTB02Energy", "period")
INTEGER_COLUMNS = frozenset({"RunID", "period", "nFiles", *FLAG_COLUMNS_2025})

assert len(COLUMNS_2022) == 47


def table_columns(table_format: str) -> tuple[str, ...]:
    """Column names of a table format ("2022": 47, "2025": 49)."""
    try:
        return TABLE_FORMATS[str(table_format)]
    except KeyError:
        raise ScanplanError(
            f"unknown offline table format {table_format!r}; known: {', '.join(TABLE_FORMATS)}"
        ) from None


def dhstb02_label_energy_mev(point: Point) -> float:
    """Total energy [MeV] matching the DHSTB02 set current on its default calibration."""
    from beamline import calibration
    from beamline.constants import energy_mev_from_momentum

    p_mev = calibration.dipole_momentum_mev("DHSTB02", point.dhstb02_current_a)
    return energy_mev_from_momentum(p_mev)


def _cell(column: str, value: float | int) -> str:
    if column in INTEGER_COLUMNS:
        f = finite(value, column)
        if f != int(f):
            raise ScanplanError(f"column {column} must be an integer, got {value!r}")
        return str(int(f))
    return fmt_float(value, column)


def write_offline_db(
    plan: Plan,
    runs: RunMap | None = None,
    *,
    table_format: str = "2022",
    periods: Iterable[int] | None = None,
    measured: Mapping[int, Mapping[str, float]] | None = None,
    energies_mev: Mapping[int, float] | None = None,
    header: bool = False,
) -> str:
    """Run-level table text. With ``runs`` one row per run (sorted by run number); without,
    one planned row per point with ``RunID`` 0. ``energies_mev`` (run -> applied total
    energy [MeV]) replaces the planned ``DHSTB01Energy`` of those runs; ``DHSTB02Energy``
    stays the label of the planned DHSTB02 current. ``header`` adds a ``#`` name line."""
    columns = table_columns(table_format)
    points = select_points(plan, periods)
    run_map = check_runs(plan, runs) if runs else None
    measured = measured or {}
    rows: list[tuple[int, int, str]] = []
    for point in points:
        run_numbers = run_map.get(point.period, []) if run_map is not None else [0]
        setpoints = {
            "DHSTB01Energy": point.e_beam_mev,
            "DHSTB02Energy": dhstb02_label_energy_mev(point),
            "period": point.period,
        }
        for run in run_numbers:
            values: dict[str, float | int] = {c: 0.0 for c in columns}
            for c in INTEGER_COLUMNS.intersection(columns):
                values[c] = 0
            for key, value in measured.get(run, {}).items() if run else ():
                if key in values and key not in SETPOINT_COLUMNS:
                    values[key] = value
            values.update(setpoints)
            if run and energies_mev and run in energies_mev:
                values["DHSTB01Energy"] = energies_mev[run]
            values["RunID"] = run
            cells = [_cell(c, values[c]) for c in columns]
            rows.append((run, point.period, " ".join(cells)))
    if not rows:
        raise ScanplanError("none of the selected points has a run in the run map")
    rows.sort(key=lambda r: (r[0], r[1]))
    lines = ["# " + " ".join(columns)] if header else []
    lines += [text for _, _, text in rows]
    return "\n".join(lines) + "\n"
