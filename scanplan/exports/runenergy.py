"""``RunEnergy.txt``: one line per run, ``<run> <E_beam MeV>`` with 3 decimals (facts 6).

PADME reads it positionally (whitespace split, column 0 run, column 1 energy; a run that is
not listed reads as 0), so the file needs the run numbers: from the store (runs recorded
against the plan's points) or from a run map file. Lines are sorted by run number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import ScanplanError
from ..records import Plan
from .common import RunMap, check_runs, finite, plan_sha256, select_points

#: decimals of the energy column (facts 6: ``50284  290.460``)
ENERGY_DECIMALS = 3


def write_runenergy(
    plan: Plan,
    runs: RunMap | None,
    *,
    periods: Iterable[int] | None = None,
    energies_mev: Mapping[int, float] | None = None,
) -> str:
    """RunEnergy text for the runs of ``plan``'s points.

    ``runs`` maps period -> run numbers. The energy of a run is its point's planned
    ``e_beam_mev`` unless ``energies_mev`` (run -> MeV, e.g. applied values from the store)
    gives one. No runs at all is an error: the file would be empty.
    """
    points = select_points(plan, periods)
    run_map = check_runs(plan, runs or {})
    lines: list[tuple[int, str]] = []
    overrides = dict(energies_mev or {})
    for point in points:
        for run in run_map.get(point.period, []):
            energy = overrides.get(run, point.e_beam_mev)
            e = finite(energy, f"energy of run {run} (period {point.period})")
            lines.append((run, f"{run:d} {e:.{ENERGY_DECIMALS}f}"))
    if not lines:
        raise ScanplanError(
            f"no run numbers known for plan {plan_sha256(plan)[:12]}: RunEnergy needs runs; "
            "record them in the store (scanplan store record-run) or pass --runs FILE"
        )
    lines.sort()
    return "\n".join(text for _, text in lines) + "\n"
