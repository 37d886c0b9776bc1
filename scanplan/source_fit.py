"""``scanplan calib source``: the beam-based source fit (:mod:`beamline.source_fit`) on what
the step checker recorded (a run-conditions store) or on a CSV of measured spots.

From a store: every ``verdict`` event with a TimePix spot gives one observation: the plan
point's energy, the DHSTB001/DHSTB002 output currents read back, the spot centroid minus the
TimePix reference offset of the check tolerances, its widths and hits.

CSV columns (one measured spot per row): ``point`` (target or timepix), ``energy_mev``,
``dhstb01_current_a``, ``dhstb02_current_a``, ``x_mm``, ``y_mm``, ``sigma_x_mm``,
``sigma_y_mm``, ``hits``; centroids relative to the reference (PADME axis).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from .errors import ScanplanError

CSV_COLUMNS = (
    "point",
    "energy_mev",
    "dhstb01_current_a",
    "dhstb02_current_a",
    "x_mm",
    "y_mm",
    "sigma_x_mm",
    "sigma_y_mm",
    "hits",
)
#: Largest number of observations read (bounds the fit's work).
MAX_OBSERVATIONS = 2000


def observations_from_csv(path: Path | str) -> list[Any]:
    """Observations from a CSV of measured spots (module doc)."""
    from beamline.source_fit import SpotObservation

    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ScanplanError(f"cannot read {p}: {exc}") from None
    if not rows:
        raise ScanplanError(f"{p}: no measured spots")
    missing = sorted(set(CSV_COLUMNS) - set(rows[0]))
    if missing:
        raise ScanplanError(f"{p}: missing column(s) {', '.join(missing)}")
    if len(rows) > MAX_OBSERVATIONS:
        raise ScanplanError(f"{p}: more than {MAX_OBSERVATIONS} spots")
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            values = {k: float(r[k]) for k in CSV_COLUMNS if k != "point"}
        except ValueError as exc:
            raise ScanplanError(f"{p} line {i}: {exc}") from None
        if not all(math.isfinite(v) for v in values.values()):
            raise ScanplanError(f"{p} line {i}: values must be finite")
        point = r["point"].strip().lower()
        if point not in ("target", "timepix"):
            raise ScanplanError(f"{p} line {i}: point must be target or timepix")
        hits = int(values.pop("hits"))
        out.append(SpotObservation(point=point, hits=hits, **values))
    return out


def observations_from_store(path: Path | str) -> list[Any]:
    """TimePix observations from the checker's verdicts in a SQLite run-conditions store."""
    from beamline.source_fit import SpotObservation

    from .check import CheckTolerances
    from .store.sqlite import SQLiteStore

    p = Path(path)
    if not p.exists():
        raise ScanplanError(f"store {p} does not exist")
    store = SQLiteStore(p, read_only=True)
    tol = CheckTolerances.load()
    plans: dict[str, Any] = {}
    out = []
    for ev in store.history(kinds=["verdict"]):
        spot = ev.payload.get("spot") or {}
        readings = ev.payload.get("readings") or {}
        if ev.plan_sha256 is None or ev.period is None or "x_mm" not in spot:
            continue
        try:
            i1 = float(readings["DHSTB001"]["output_current_a"])
            i2 = float(readings["DHSTB002"]["output_current_a"])
        except (KeyError, TypeError, ValueError):
            continue  # a check without both current readings
        if ev.plan_sha256 not in plans:
            plans[ev.plan_sha256] = store.get_plan(ev.plan_sha256)
        pt = next((q for q in plans[ev.plan_sha256].points if q.period == ev.period), None)
        values = [spot.get(k) for k in ("x_mm", "y_mm", "sigma_x_mm", "sigma_y_mm")]
        if pt is None or any(v is None for v in values):
            continue
        out.append(
            SpotObservation(
                point="timepix",
                energy_mev=pt.e_beam_mev,
                dhstb01_current_a=i1,
                dhstb02_current_a=i2,
                x_mm=float(spot["x_mm"]) - tol.spot.reference_x_mm,
                y_mm=float(spot["y_mm"]) - tol.spot.reference_y_mm,
                sigma_x_mm=float(spot["sigma_x_mm"]),
                sigma_y_mm=float(spot["sigma_y_mm"]),
                hits=int(spot.get("hits_used") or 0),
            )
        )
        if len(out) > MAX_OBSERVATIONS:
            raise ScanplanError(f"store {p}: more than {MAX_OBSERVATIONS} checked spots")
    if len(out) < 2:
        raise ScanplanError(
            f"store {p}: {len(out)} checked TimePix spot(s) with both dipole readings; a "
            "source fit needs at least two"
        )
    return out


def fit_source(
    observations: list[Any],
    *,
    settings: str | None = None,
    source: str | None = None,
    tracked: bool = True,
    n_particles: int = 20_000,
    seed: int = 0,
) -> Any:
    """Fit the source (default: the settings' spread source) to the observations; the
    tracked model by default, the Gaussian linear-optics model with ``tracked=False``."""
    from beamline import source_fit
    from beamline.source import load_source, spread_source
    from beamline.spread import line_for

    if not 1_000 <= n_particles <= 1_000_000:
        raise ScanplanError("--particles must be between 1000 and 1e6")
    src = spread_source(settings) if source is None else load_source(source)
    if src.beam.definition != "after_selection":
        raise ScanplanError(
            f"source {src.name} is defined before the selection; the fit needs a source "
            "defined after it (e.g. padme_mc_run3)"
        )
    if tracked:
        return source_fit.fit_source_tracked(
            observations, src, settings=settings, n_particles=n_particles, seed=seed
        )
    return source_fit.fit_source(
        observations,
        line_for(settings),
        injection=src.beam.injection_element or "mylar_window",
        layers=src.active_layers,
    )
