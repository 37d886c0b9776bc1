"""The step checker's judgement: readings, spot and model predictions in, comparisons out.

Pure functions of their arguments (no I/O, no clock): each returns :class:`Comparison`
records with the tolerances of ``lattices/checks/tolerances.toml`` and a reason when the
level is not OK. Hardware errors arrive as values (the exception object) and become FAIL
comparisons carrying the adapter's message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hw_interfaces.btf_records import PowerSupplyReading, PsuState
from hw_interfaces.errors import HardwareError
from hw_interfaces.timepix import BeamSpot

from ..records import Point
from .dipoles import dipoles
from .predictor import SpotPredictor
from .tolerances import CheckTolerances
from .verdict import FAIL, OK, WARN, Comparison, PredictedSpot, Prediction, SettleSummary

#: element -> reading, or the error reading it raised
Readings = Mapping[str, PowerSupplyReading | HardwareError]


def graded(
    name: str,
    measured: float,
    expected: float,
    warn: float,
    fail: float,
    unit: str,
    what: str,
) -> Comparison:
    """A numeric comparison: OK within ``warn``, WARN within ``fail``, FAIL beyond."""
    base = dict(name=name, measured=measured, expected=expected, warn=warn, fail=fail, unit=unit)
    if not (math.isfinite(measured) and math.isfinite(expected)):
        return Comparison(**base, level=FAIL, reason=f"{what}: not finite")
    d = abs(measured - expected)
    level = OK if d <= warn else WARN if d <= fail else FAIL
    reason = ""
    if level != OK:
        limit = warn if level == WARN else fail
        reason = (
            f"{what}: {measured:.6g} {unit} vs {expected:.6g} {unit} "
            f"(|diff| {d:.3g} > {limit:.3g} {unit})"
        )
    return Comparison(**base, level=level, reason=reason)


def failed(name: str, measured: str | None, expected: str | None, reason: str) -> Comparison:
    """A FAIL without tolerances (a device error, a model that cannot predict)."""
    return Comparison(name=name, measured=measured, expected=expected, level=FAIL, reason=reason)


def settled(point: Point, readings: Readings, tol: CheckTolerances) -> bool:
    """Both dipoles operational, not ramping, set points on the plan and readbacks within
    ``readback_warn_a`` of them."""
    ps = tol.power_supply
    for d in dipoles():
        r = readings[d.element]
        if isinstance(r, HardwareError) or not r.ok or r.ramp_on or r.busy:
            return False
        if abs(r.current_setting_a - d.planned_current_a(point)) > ps.setpoint_fail_a:
            return False
        if abs(r.output_current_a - r.current_setting_a) > ps.readback_warn_a:
            return False
    return True


def psu_comparisons(point: Point, readings: Readings, tol: CheckTolerances) -> list[Comparison]:
    """Status, set point vs plan, readback vs set point and record age of both dipoles."""
    ps = tol.power_supply
    out: list[Comparison] = []
    for d in dipoles():
        element, r = d.element, readings[d.element]
        if isinstance(r, HardwareError):
            out.append(failed(f"{element} read", type(r).__name__, "record", str(r)))
            continue
        faults = f", fault bits {list(r.faults)}" if any(r.faults) else ""
        healthy = r.status is PsuState.OPERATIONAL and not any(r.faults)
        out.append(
            Comparison(
                name=f"{element} status",
                measured=r.status.name + (f" faults={list(r.faults)}" if any(r.faults) else ""),
                expected=PsuState.OPERATIONAL.name,
                level=OK if healthy else FAIL,
                reason=""
                if healthy
                else f"{element}: status {r.status.name} (code {r.status_code}){faults}",
            )
        )
        out.append(
            graded(
                f"{element} set point vs plan",
                r.current_setting_a,
                d.planned_current_a(point),
                ps.setpoint_warn_a,
                ps.setpoint_fail_a,
                "A",
                f"{element} set point",
            )
        )
        out.append(
            graded(
                f"{element} readback vs set point",
                r.output_current_a,
                r.current_setting_a,
                ps.readback_warn_a,
                ps.readback_fail_a,
                "A",
                f"{element} readback",
            )
        )
        fresh = r.age_s <= ps.max_age_s
        out.append(
            Comparison(
                name=f"{element} readback age",
                measured=round(r.age_s, 3),
                expected=0.0,
                warn=ps.max_age_s,
                fail=ps.max_age_s,
                unit="s",
                level=OK if fresh else FAIL,
                reason="" if fresh else f"{element}: record {r.age_s:.1f} s old",
            )
        )
    return out


def settle_comparison(settle: SettleSummary) -> list[Comparison]:
    """WARN when the readbacks did not settle before the timeout."""
    if settle.settled:
        return []
    return [
        Comparison(
            name="settled",
            measured=round(settle.elapsed_s, 3),
            expected=None,
            unit="s",
            level=WARN,
            reason=f"readbacks not settled within {settle.elapsed_s:.1f} s ({settle.polls} polls)",
        )
    ]


def energy_comparison(point: Point, readings: Readings, tol: CheckTolerances) -> list[Comparison]:
    """Beam energy from the first dipole's readback (plan branch and energy scale) vs plan."""
    from beamline.energy import energy_from_current
    from beamline.errors import BeamlineInputError

    first = dipoles()[0]
    r = readings[first.element]
    if isinstance(r, HardwareError):
        return []
    name = f"energy from {first.element} readback"
    scale = point.energy_scale.split("@")[0] or None
    branch = point.branch if point.branch != "unknown" else None
    try:
        est = energy_from_current(r.output_current_a, first.magnet, branch=branch, scale=scale)
    except BeamlineInputError as exc:
        return [
            Comparison(
                name=name,
                measured=None,
                expected=point.e_beam_mev,
                unit="MeV",
                level=FAIL,
                reason=f"{name}: {exc}",
            )
        ]
    c = graded(
        name,
        est.energy_mev,
        point.e_beam_mev,
        tol.energy.warn_mev,
        tol.energy.fail_mev,
        "MeV",
        f"beam energy from the {first.element} readback",
    )
    if c.reason:
        c = c.model_copy(update={"reason": c.reason + f" [sigma {est.sigma_energy_mev:.2f} MeV]"})
    return [c]


def spot_comparisons(spot: BeamSpot | HardwareError, tol: CheckTolerances) -> list[Comparison]:
    """Beam present (hits) and dropped frames of the TimePix reading."""
    if isinstance(spot, HardwareError):
        return [failed("TimePix beam", type(spot).__name__, "beam", str(spot))]
    st = tol.spot
    present = spot.hits_used >= st.min_hits
    total = spot.frames_used + spot.frames_empty + spot.frames_dropped
    frac = spot.frames_dropped / total if total else 0.0
    few = frac <= st.dropped_fraction_warn
    return [
        Comparison(
            name="TimePix beam hits",
            measured=float(spot.hits_used),
            expected=float(st.min_hits),
            unit="hits",
            level=OK if present else FAIL,
            reason=""
            if present
            else f"TimePix: only {spot.hits_used} beam hits (need {st.min_hits})",
        ),
        Comparison(
            name="TimePix dropped frames",
            measured=round(frac, 4),
            expected=0.0,
            warn=st.dropped_fraction_warn,
            unit="fraction",
            level=OK if few else WARN,
            reason="" if few else f"TimePix: {spot.frames_dropped} of {total} frames dropped",
        ),
    ]


def predictions(
    point: Point, readings: Readings, predictor: SpotPredictor, tol: CheckTolerances
) -> tuple[Prediction, list[Comparison]]:
    """Model spots for the plan's and (when both supplies read OK) the measured currents;
    the comparisons say why a prediction is missing."""
    from beamline.errors import BeamlineInputError

    d1, d2 = dipoles()
    out: list[Comparison] = []
    plan_spot = measured_spot = None
    try:
        pred = predictor.predict(d1.planned_current_a(point), d2.planned_current_a(point))
        plan_spot = PredictedSpot.model_validate(pred.as_dict())
    except BeamlineInputError as exc:
        out.append(failed("model (plan currents)", None, None, str(exc)))
    r1, r2 = readings[d1.element], readings[d2.element]
    # no beam to predict when a supply is not read or not OK: the PSU comparisons say why
    if not isinstance(r1, HardwareError) and not isinstance(r2, HardwareError) and r1.ok and r2.ok:
        try:
            pred = predictor.predict(r1.output_current_a, r2.output_current_a)
            measured_spot = PredictedSpot.model_validate(pred.as_dict())
        except BeamlineInputError as exc:
            out.append(
                failed(
                    "model (measured currents)",
                    None,
                    None,
                    f"model cannot predict the spot for the measured currents: {exc}",
                )
            )
    prediction = Prediction(
        reference_x_mm=tol.spot.reference_x_mm,
        reference_y_mm=tol.spot.reference_y_mm,
        plan=plan_spot,
        measured_currents=measured_spot,
    )
    return prediction, out


def model_comparisons(
    spot: BeamSpot, prediction: Prediction, tol: CheckTolerances
) -> list[Comparison]:
    """TimePix centroid vs the model (measured and plan currents) and size vs the model.

    x tolerance: sqrt(alignment^2 + (dx/dI_DHSTB02 * current_sigma)^2 + statistical^2); y:
    alignment and statistics only; FAIL at ``fail_factor`` times the tolerance.
    """
    st = tol.spot
    out: list[Comparison] = []
    stat_x = spot.sigma_x_mm / math.sqrt(max(spot.hits_used, 1))
    stat_y = spot.sigma_y_mm / math.sqrt(max(spot.hits_used, 1))
    for label, pred in (
        ("measured currents", prediction.measured_currents),
        ("plan", prediction.plan),
    ):
        if pred is None:
            continue
        dxdi = abs(pred.dx_dcurrent_dhstb02_mm_per_a)
        tol_x = math.sqrt(st.alignment_mm**2 + (dxdi * st.current_sigma_a) ** 2 + stat_x**2)
        tol_y = math.sqrt(st.alignment_mm**2 + stat_y**2)
        for axis, measured, expected, t in (
            ("x", spot.x_mm, pred.x_timepix_mm + prediction.reference_x_mm, tol_x),
            ("y", spot.y_mm, pred.y_timepix_mm + prediction.reference_y_mm, tol_y),
        ):
            out.append(
                graded(
                    f"TimePix {axis} vs model ({label})",
                    measured,
                    expected,
                    t,
                    st.fail_factor * t,
                    "mm",
                    f"TimePix {axis} vs model for the {label}",
                )
            )
    m = prediction.measured_currents
    if m is not None:
        k = st.size_ratio_warn
        for axis, meas, pred_sigma in (
            ("x", spot.sigma_x_mm, m.sigma_x_timepix_mm),
            ("y", spot.sigma_y_mm, m.sigma_y_timepix_mm),
        ):
            ratio = meas / pred_sigma if pred_sigma > 0 else math.inf
            inside = 1.0 / k <= ratio <= k
            out.append(
                Comparison(
                    name=f"TimePix sigma_{axis} / model",
                    measured=round(ratio, 4) if math.isfinite(ratio) else None,
                    expected=1.0,
                    warn=k,
                    unit="ratio",
                    level=OK if inside else WARN,
                    reason=""
                    if inside
                    else f"TimePix sigma_{axis} {meas:.2f} mm vs model {pred_sigma:.2f} mm",
                )
            )
    return out
