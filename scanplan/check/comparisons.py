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
from hw_interfaces.errors import HardwareError, NoBeam
from hw_interfaces.timepix import BeamSpot

from ..records import Point
from .dipoles import Magnet, dipoles, quadrupoles
from .predictor import SpotPredictor
from .tolerances import CheckTolerances
from .verdict import (
    FAIL,
    OK,
    WARN,
    Comparison,
    PredictedSpot,
    Prediction,
    shown,
)

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
            f"{what}: {shown(measured, warn)} {unit} vs {shown(expected, warn)} {unit} "
            f"(|diff| {shown(d, warn)} > {limit:.3g} {unit})"
        )
    return Comparison(**base, level=level, reason=reason)


def failed(name: str, measured: str | None, expected: str | None, reason: str) -> Comparison:
    """A FAIL without tolerances (a device error, a model that cannot predict)."""
    return Comparison(name=name, measured=measured, expected=expected, level=FAIL, reason=reason)


def hysteresis_hint(magnet: str, point: Point) -> str:
    """What to do after a trip or reset of ``magnet``: the iron remembers where the current
    came from, so the set point must be approached again from the plan's branch side."""
    if point.branch == "descending":
        side = "from above (overshoot, then down)"
    elif point.branch == "ascending":
        side = "from below (from 0 A, up)"
    else:
        side = "from the side of the calibration branch"
    return (
        f"hysteresis: after the reset, re-approach {magnet} {side}; the field after a trip "
        "is not the field of the same current approached from the plan's branch"
    )


def _supply_comparisons(
    point: Point,
    magnet: Magnet,
    r: PowerSupplyReading | HardwareError,
    limits: tuple[float, float, float, float],
    max_age_s: float,
    *,
    hysteresis: bool,
) -> list[Comparison]:
    """Status, set point vs plan, readback vs set point and record age of one supply;
    ``limits``: set-point warn/fail and readback warn/fail [A]."""
    element = magnet.element
    if isinstance(r, HardwareError):
        return [failed(f"{element} read", type(r).__name__, "record", read_error_text(r))]
    sp_warn, sp_fail, rb_warn, rb_fail = limits
    faults = f", fault bits {list(r.faults)}" if any(r.faults) else ""
    healthy = r.status is PsuState.OPERATIONAL and not any(r.faults)
    reason = ""
    if not healthy:
        reason = f"{element}: status {r.status.name} (code {r.status_code}){faults}"
        if hysteresis:
            reason += "; " + hysteresis_hint(magnet.magnet, point)
    fresh = r.age_s <= max_age_s
    return [
        Comparison(
            name=f"{element} status",
            measured=r.status.name + (f" faults={list(r.faults)}" if any(r.faults) else ""),
            expected=PsuState.OPERATIONAL.name,
            level=OK if healthy else FAIL,
            reason=reason,
        ),
        graded(
            f"{element} set point vs plan",
            r.current_setting_a,
            magnet.planned_current_a(point),
            sp_warn,
            sp_fail,
            "A",
            f"{element} set point",
        ),
        graded(
            f"{element} readback vs set point",
            r.output_current_a,
            r.current_setting_a,
            rb_warn,
            rb_fail,
            "A",
            f"{element} readback",
        ),
        Comparison(
            name=f"{element} readback age",
            measured=round(r.age_s, 3),
            expected=0.0,
            warn=max_age_s,
            fail=max_age_s,
            unit="s",
            level=OK if fresh else FAIL,
            reason="" if fresh else f"{element}: record {r.age_s:.1f} s old",
        ),
    ]


def read_error_text(exc: HardwareError) -> str:
    """The adapter's message, or what the error type means when the message is empty."""
    text = str(exc)
    return text or f"{type(exc).__name__} (the device answered nothing the adapter could read)"


def psu_comparisons(point: Point, readings: Readings, tol: CheckTolerances) -> list[Comparison]:
    """Status, set point vs plan, readback vs set point and record age of both dipoles."""
    ps = tol.power_supply
    limits = ps.limits_a
    return [
        c
        for d in dipoles()
        for c in _supply_comparisons(
            point, d, readings[d.element], limits, ps.max_age_s, hysteresis=True
        )
    ]


def quad_comparisons(point: Point, readings: Readings, tol: CheckTolerances) -> list[Comparison]:
    """The same for the quadrupoles Q1..Q4 (QUATB001..4) with ``[quadrupoles]`` tolerances;
    quads not in ``readings`` (not read) give no comparison."""
    limits = tol.quadrupoles.limits_a
    return [
        c
        for m in quadrupoles()
        if m.element in readings
        for c in _supply_comparisons(
            point, m, readings[m.element], limits, tol.power_supply.max_age_s, hysteresis=False
        )
    ]


def unchecked_comparisons(*, spot: bool, model: bool) -> list[Comparison]:
    """WARN rows for what this check did not look at: without the TimePix the beam was not
    checked, without the model its position was not compared (never a silent OK)."""
    out = []
    if not spot:
        out.append(
            Comparison(
                name="beam not checked",
                measured="no TimePix",
                expected="TimePix spot",
                level=WARN,
                reason="beam not checked: no TimePix (--timepix '')",
            )
        )
    elif not model:
        out.append(
            Comparison(
                name="spot vs model not checked",
                measured="no model",
                expected="model prediction",
                level=WARN,
                reason="beam position not compared with the model (--no-model)",
            )
        )
    return out


def energy_comparison(
    point: Point, readings: Readings, tol: CheckTolerances, *, extrapolate: bool = False
) -> list[Comparison]:
    """Beam energy from the first dipole's readback (plan branch and energy scale) vs plan;
    ``extrapolate``: the plan was made with extrapolated calibrations (so is the check)."""
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
        est = energy_from_current(
            r.output_current_a, first.magnet, branch=branch, scale=scale, extrapolate=extrapolate
        )
    except BeamlineInputError as exc:
        return [
            Comparison(
                name=name,
                measured=None,
                expected=point.e_beam_mev,
                unit="MeV",
                level=FAIL,
                reason=f"{name}: {no_cli_advice(str(exc))}",
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


def no_cli_advice(message: str) -> str:
    """A model error without the advice of another command's option: ``check`` has no
    ``--extrapolate`` (the readback is outside the calibrated range: set the supply)."""
    cut = message.replace("; extrapolating needs --extrapolate", "")
    if cut != message:
        cut += " (the readback is outside the calibrated range: the supply is not at the plan)"
    return cut


def spot_comparisons(spot: BeamSpot | HardwareError, tol: CheckTolerances) -> list[Comparison]:
    """Beam present (hits) and dropped frames of the TimePix reading."""
    if isinstance(spot, NoBeam):
        return [failed("TimePix beam", "no beam", "beam", f"no beam on the TimePix ({spot})")]
    if isinstance(spot, HardwareError):
        return [failed("TimePix beam", type(spot).__name__, "beam", read_error_text(spot))]
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
            else f"no beam on the TimePix: {spot.hits_used} hits in the beam window "
            f"(a beam gives at least {st.min_hits})",
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


def measured_quads(point: Point, readings: Readings) -> dict[str, float]:
    """Quadrupole currents for the model (magnet -> A): the readback of each quad read OK,
    else the plan's current (the quad's own comparisons say it was not read)."""
    out = {}
    for m in quadrupoles():
        r = readings.get(m.element)
        if isinstance(r, PowerSupplyReading) and r.ok and math.isfinite(r.output_current_a):
            out[m.magnet] = r.output_current_a
        else:
            out[m.magnet] = m.planned_current_a(point)
    return out


def predictions(
    point: Point, readings: Readings, predictor: SpotPredictor, tol: CheckTolerances
) -> tuple[Prediction, list[Comparison]]:
    """Model spots for the plan's and (when both supplies read OK) the measured currents;
    the comparisons say why a prediction is missing."""
    from beamline.errors import BeamlineInputError

    d1, d2 = dipoles()
    out: list[Comparison] = []
    plan_spot = measured_spot = None
    plan_quads = {m.magnet: m.planned_current_a(point) for m in quadrupoles()}
    try:
        pred = predictor.predict(
            d1.planned_current_a(point), d2.planned_current_a(point), plan_quads, anchor=True
        )
        plan_spot = PredictedSpot.model_validate(pred.as_dict())
    except BeamlineInputError as exc:
        out.append(failed("model (plan currents)", None, None, str(exc)))
    r1, r2 = readings[d1.element], readings[d2.element]
    # no beam to predict when a supply is not read or not OK: the PSU comparisons say why
    if not isinstance(r1, HardwareError) and not isinstance(r2, HardwareError) and r1.ok and r2.ok:
        try:
            pred = predictor.predict(
                r1.output_current_a, r2.output_current_a, measured_quads(point, readings)
            )
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


def with_implied_current(c: Comparison, dx_di_mm_per_a: float) -> Comparison:
    """``c`` (a TimePix x comparison) with the DHSTB02 current error its difference implies
    through the model's dx/dI (the steering dipole is what moves x at the TimePix); the
    reason says it in amperes when the level is not OK."""
    d = c.difference
    if d is None or not (math.isfinite(dx_di_mm_per_a) and dx_di_mm_per_a != 0):
        return c
    magnet = dipoles()[1].magnet
    amps = d / dx_di_mm_per_a
    update: dict[str, object] = {"implied_current_a": amps, "implied_magnet": magnet}
    if c.reason:
        update["reason"] = (
            f"{c.reason}: ≈ {abs(amps):.2f} A on {magnet} (the beam sits where {magnet} "
            f"{amps:+.2f} A would put it, model dx/dI {dx_di_mm_per_a:.1f} mm/A: "
            "a field error or a wrong set point)"
        )
    return c.model_copy(update=update)


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
            c = graded(
                f"TimePix {axis} vs model ({label})",
                measured,
                expected,
                t,
                st.fail_factor * t,
                "mm",
                f"TimePix {axis} vs model for the {label}",
            )
            if axis == "x":
                c = with_implied_current(c, pred.dx_dcurrent_dhstb02_mm_per_a)
            out.append(c)
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
