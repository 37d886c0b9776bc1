"""Step checker: is the machine where the plan says, and does the beam land where the model
says for the currents actually measured?

For one plan point (``period``) :func:`check_point` / :class:`Checker` reads the DHSTB001 and
DHSTB002 power-supply records (status, set point, output-current readback, age) and the
TimePix beam spot, predicts the spot from the beam-line model
(:func:`beamline.spot.predict_spot`) for the measured currents and for the plan's currents,
and returns a :class:`Verdict`: OK / WARN / FAIL with every comparison (measured, expected,
tolerances, unit, level) and the reasons. Tolerances are named parameters in
``lattices/checks/tolerances.toml`` (:class:`CheckTolerances`).

Every reading (including the settle polls of ``watch``) and the verdict are appended to the
run-conditions store (kinds ``reading`` and ``verdict``) with idempotency keys derived from a
per-check id, so a retried append never duplicates a record.

Hardware problems (dead server, stale record, NaN, tripped supply, no beam...) are not
exceptions here: they become FAIL comparisons with the adapter's message as the reason.
Store errors and bad input (unknown period, malformed tolerances) raise
:class:`scanplan.errors.ScanplanError`.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from hw_interfaces.btf_controls import PowerSupplyReading, PowerSupplySource, PsuState
from hw_interfaces.errors import (
    ConnectionFailed,
    DecodeError,
    DeviceTimeout,
    HardwareError,
    InvalidValue,
    MissingKey,
    StaleReading,
)
from hw_interfaces.timepix import BeamSpot, BeamSpotSource

from ..errors import ScanplanError
from ..records import Plan, Point
from .tolerances import CheckTolerances

if TYPE_CHECKING:  # heavy (xtrack) imports only when a model is built
    from beamline.model import BeamLine
    from beamline.spot import SpotPrediction

    from ..store.base import RunConditionsStore

OK, WARN, FAIL = "OK", "WARN", "FAIL"
LEVELS = (OK, WARN, FAIL)

#: plan field -> memcached element of the two dipoles
DIPOLES: tuple[tuple[str, str, str], ...] = (
    ("DHSTB001", "dhstb01_current_a", "DHSTB01"),
    ("DHSTB002", "dhstb02_current_a", "DHSTB02"),
)
TIMEPIX = "TIMEPIX"
DEFAULT_SETTINGS = "run3_2022"


def worst(levels: Any) -> str:
    """The most severe of ``levels`` (OK if empty)."""
    return max(levels, key=LEVELS.index, default=OK)


def iso_utc(t: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``."""
    t = t or datetime.now(timezone.utc)
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def finite_or_none(obj: Any) -> Any:
    """Copy of a JSON-like object with NaN/inf floats replaced by None (store payloads)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


# ---- tolerances ---------------------------------------------------------------------------


# ---- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One checked quantity. ``measured``/``expected`` are numbers (or state names);
    ``warn``/``fail`` the tolerances on |measured - expected| in ``unit``."""

    name: str
    measured: float | str | None
    expected: float | str | None
    warn: float | None
    fail: float | None
    unit: str
    level: str
    reason: str = ""

    @property
    def difference(self) -> float | None:
        if isinstance(self.measured, (int, float)) and isinstance(self.expected, (int, float)):
            return float(self.measured) - float(self.expected)
        return None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["difference"] = self.difference
        return finite_or_none(d)


@dataclass(frozen=True)
class Verdict:
    """Outcome of one check of plan point ``period`` (see the module docstring)."""

    check_id: str
    plan_sha256: str
    period: int
    time_utc: str
    level: str
    comparisons: tuple[Comparison, ...]
    reasons: tuple[str, ...]
    readings: dict[str, dict[str, Any]] = field(default_factory=dict)
    spot: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    settle: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    tolerances_version: str = ""

    @property
    def ok(self) -> bool:
        """OK or WARN: the point may proceed."""
        return self.level != FAIL

    def comparison(self, name: str) -> Comparison:
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return finite_or_none(
            {
                "check_id": self.check_id,
                "plan_sha256": self.plan_sha256,
                "period": self.period,
                "time_utc": self.time_utc,
                "level": self.level,
                "reasons": list(self.reasons),
                "comparisons": [c.as_dict() for c in self.comparisons],
                "readings": self.readings,
                "spot": self.spot,
                "prediction": self.prediction,
                "settle": self.settle,
                "elapsed_s": self.elapsed_s,
                "tolerances_version": self.tolerances_version,
            }
        )


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
    if not (math.isfinite(measured) and math.isfinite(expected)):
        return Comparison(name, measured, expected, warn, fail, unit, FAIL, f"{what}: not finite")
    d = abs(measured - expected)
    level = OK if d <= warn else WARN if d <= fail else FAIL
    reason = ""
    if level != OK:
        limit = warn if level == WARN else fail
        reason = (
            f"{what}: {measured:.6g} {unit} vs {expected:.6g} {unit} "
            f"(|diff| {d:.3g} > {limit:.3g} {unit})"
        )
    return Comparison(name, measured, expected, warn, fail, unit, level, reason)


# ---- model prediction ---------------------------------------------------------------------


class SpotPredictor:
    """Thread-safe, cached wrapper of :func:`beamline.spot.predict_spot` on one BeamLine.

    Currents are rounded to ``resolution_a`` for the cache key (LRU of ``cache_size``), so
    repeated predictions (simulator frames, polling) cost a dictionary look-up. The
    BeamLine is built on first use (~1 s, most of it importing xtrack) unless given.
    """

    def __init__(
        self,
        settings: str | None = DEFAULT_SETTINGS,
        *,
        beamline: BeamLine | None = None,
        rel_spread: float | None = None,
        resolution_a: float | None = None,
        cache_size: int | None = None,
    ) -> None:
        shipped = CheckTolerances.shipped()
        self.settings = settings
        self.rel_spread = shipped.spot.rel_spread if rel_spread is None else rel_spread
        self.resolution_a = (
            shipped.simulator.cache_resolution_a if resolution_a is None else resolution_a
        )
        self.cache_size = shipped.simulator.cache_size if cache_size is None else cache_size
        self._bl = beamline
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, int], SpotPrediction] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def beamline(self) -> BeamLine:
        with self._lock:
            return self._beamline()

    def _beamline(self) -> BeamLine:
        if self._bl is None:
            from beamline.model import BeamLine

            self._bl = BeamLine(self.settings)
        return self._bl

    def predict(self, dhstb01_current_a: float, dhstb02_current_a: float) -> SpotPrediction:
        """Predicted spot for the DHSTB01/DHSTB02 currents [A] (model input errors raise
        :class:`beamline.errors.BeamlineInputError`)."""
        from beamline.spot import predict_spot

        if not (math.isfinite(dhstb01_current_a) and math.isfinite(dhstb02_current_a)):
            from beamline.errors import BeamlineInputError

            raise BeamlineInputError("dipole currents must be finite to predict the beam spot")
        key = (
            round(dhstb01_current_a / self.resolution_a),
            round(dhstb02_current_a / self.resolution_a),
        )
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return hit
            self.misses += 1
            i1, i2 = key[0] * self.resolution_a, key[1] * self.resolution_a
            try:
                with np.errstate(all="raise"):  # numpy's error state is per thread
                    pred = predict_spot(self._beamline(), i1, i2, rel_spread=self.rel_spread)
            except FloatingPointError as exc:
                from beamline.errors import BeamlineInputError

                raise BeamlineInputError(
                    f"no model prediction for DHSTB01 {i1:.3f} A, DHSTB02 {i2:.3f} A "
                    f"(optics undefined: {exc})"
                ) from None
            self._cache[key] = pred
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return pred


# ---- the checker --------------------------------------------------------------------------

PollCallback = Callable[[dict[str, Any]], None]


class Checker:
    """Checks plan points against the machine; keep one per session (it remembers which
    records it has seen, so staleness is measured between calls).

    ``psu``: a :class:`PowerSupplySource` (``BtfControls`` on the BTF or the simulator);
    ``spot``: a :class:`BeamSpotSource` or None (no TimePix comparisons); ``predictor``: a
    :class:`SpotPredictor` or None (no model comparisons); ``store``: a run-conditions store
    or None (nothing recorded).
    """

    def __init__(
        self,
        *,
        psu: PowerSupplySource,
        spot: BeamSpotSource | None = None,
        predictor: SpotPredictor | None = None,
        store: RunConditionsStore | None = None,
        tolerances: CheckTolerances | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.psu = psu
        self.spot_source = spot
        self.predictor = predictor
        self.store = store
        self.tol = tolerances or CheckTolerances.load()
        self._sleep = sleep
        self._seen: set[str] = set()
        self._recorded_plans: set[str] = set()

    # -- reads ----------------------------------------------------------------------------
    def read_psu(self, element: str) -> PowerSupplyReading:
        """One PSU record; the first read of an element proves the publisher alive."""
        from hw_interfaces.btf_controls import BtfControls

        if isinstance(self.psu, BtfControls) and element not in self._seen:
            try:
                reading = self.psu.read_power_supply(
                    element, wait_change_s=self.tol.power_supply.first_read_wait_s
                )
            except StaleReading as stale:
                self._diagnose_frozen(element, stale)
                raise
        else:
            try:
                reading = self.psu.read_power_supply(element)
            except StaleReading as stale:
                self._diagnose_frozen(element, stale)
                raise
        self._seen.add(element)
        return reading

    def _diagnose_frozen(self, element: str, stale: StaleReading) -> None:
        """A frozen record may also be an invalid one (NaN, garbage): raise that instead,
        it says more to the crew. Returns if the frozen record itself looks valid."""
        from hw_interfaces.btf_controls import DYN_SUFFIX, BtfControls
        from hw_interfaces.labview import decode

        if not isinstance(self.psu, BtfControls):
            return
        try:
            raw = self.psu.get_raw(element + DYN_SUFFIX, element)
            rec = decode(raw, self.psu.layout, device=element, key=stale.key)
        except DecodeError as exc:
            raise DecodeError(
                f"{exc} (record also frozen)", device=element, key=stale.key
            ) from None
        except HardwareError:
            return
        for name in ("currentSetting", "outputCurr"):
            v = rec.get(name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InvalidValue(
                    f"{element}: field '{name}' of '{stale.key}' is {v!r} (not a finite number; "
                    "record also frozen)",
                    device=element,
                    key=stale.key,
                ) from None

    def _read_all(self) -> dict[str, PowerSupplyReading | HardwareError]:
        out: dict[str, PowerSupplyReading | HardwareError] = {}
        for element, _, _ in DIPOLES:
            try:
                out[element] = self.read_psu(element)
            except HardwareError as exc:
                if isinstance(exc, (ConnectionFailed, DeviceTimeout, MissingKey, StaleReading)):
                    self._seen.discard(element)  # liveness must be proven again
                out[element] = exc
        return out

    # -- store ----------------------------------------------------------------------------
    def _ensure_plan(self, plan: Plan) -> str:
        sha = plan.content_sha256 or plan.compute_hash()
        if self.store is not None and sha not in self._recorded_plans:
            self.store.record_plan(plan)
            self._recorded_plans.add(sha)
        return sha

    def _record_readings(
        self,
        sha: str,
        period: int,
        check_id: str,
        poll: int,
        phase: str,
        readings: Mapping[str, PowerSupplyReading | HardwareError],
    ) -> None:
        if self.store is None:
            return
        for element, r in readings.items():
            payload = _reading_payload(element, r)
            payload.update(check_id=check_id, phase=phase, poll=poll)
            self.store.append(
                "reading",
                plan_sha256=sha,
                period=period,
                payload=finite_or_none(payload),
                idempotency_key=f"check:{check_id}:{poll}:{element}",
                time_utc=payload.get("time_utc") or iso_utc(),
            )

    # -- settle ---------------------------------------------------------------------------
    def _settled(self, point: Point, readings: Mapping[str, Any]) -> bool:
        for element, attr, _ in DIPOLES:
            r = readings[element]
            if isinstance(r, HardwareError) or not r.ok or r.ramp_on or r.busy:
                return False
            if (
                abs(r.current_setting_a - getattr(point, attr))
                > self.tol.power_supply.setpoint_fail_a
            ):
                return False
            if (
                abs(r.output_current_a - r.current_setting_a)
                > self.tol.power_supply.readback_warn_a
            ):
                return False
        return True

    def wait_settled(
        self,
        plan: Plan,
        period: int,
        *,
        timeout_s: float | None = None,
        check_id: str | None = None,
        on_poll: PollCallback | None = None,
    ) -> dict[str, Any]:
        """Poll the dipoles until set points match the plan and readbacks are within
        ``readback_warn_a`` of them, not ramping, for ``settle_stable_polls`` polls in a row,
        or until ``timeout_s``. Every poll is recorded. Returns a summary dict."""
        point = plan.point(period)
        sha = self._ensure_plan(plan)
        check_id = check_id or uuid.uuid4().hex
        timeout = self.tol.settle.timeout_s if timeout_s is None else timeout_s
        t0 = time.monotonic()
        stable = polls = 0
        while True:
            readings = self._read_all()
            self._record_readings(sha, period, check_id, polls, "settle", readings)
            polls += 1
            stable = stable + 1 if self._settled(point, readings) else 0
            elapsed = time.monotonic() - t0
            if on_poll is not None:
                on_poll(
                    {
                        "elapsed_s": elapsed,
                        "polls": polls,
                        "stable": stable,
                        "readings": {e: _reading_payload(e, r) for e, r in readings.items()},
                    }
                )
            if stable >= self.tol.settle.stable_polls:
                return {"settled": True, "elapsed_s": elapsed, "polls": polls}
            if elapsed >= timeout:
                return {"settled": False, "elapsed_s": elapsed, "polls": polls}
            self._sleep(min(self.tol.settle.poll_interval_s, max(0.0, timeout - elapsed)))

    # -- check ----------------------------------------------------------------------------
    def check(
        self,
        plan: Plan,
        period: int,
        *,
        watch: bool = False,
        settle_timeout_s: float | None = None,
        n_frames: int | None = None,
        on_poll: PollCallback | None = None,
        record: bool = True,
    ) -> Verdict:
        """Check plan point ``period`` now (after settling if ``watch``); see the module
        docstring. ``record=False`` skips the store (benchmarks)."""
        t_start = time.perf_counter()
        point = plan.point(period)
        sha = self._ensure_plan(plan) if record else (plan.content_sha256 or plan.compute_hash())
        check_id = uuid.uuid4().hex
        settle: dict[str, Any] = {}
        store, self.store = self.store, (self.store if record else None)
        try:
            if watch:
                settle = self.wait_settled(
                    plan, period, timeout_s=settle_timeout_s, check_id=check_id, on_poll=on_poll
                )
            readings = self._read_all()
            self._record_readings(sha, period, check_id, -1, "check", readings)
            comparisons = self._psu_comparisons(point, readings)
            if watch and not settle.get("settled", True):
                comparisons.append(
                    Comparison(
                        "settled",
                        round(settle["elapsed_s"], 3),
                        None,
                        None,
                        None,
                        "s",
                        WARN,
                        f"readbacks not settled within {settle['elapsed_s']:.1f} s "
                        f"({settle['polls']} polls)",
                    )
                )
            comparisons.extend(self._energy_comparison(point, readings))
            spot_doc: dict[str, Any] | None = None
            pred_doc: dict[str, Any] | None = None
            if self.spot_source is not None:
                spot, spot_cmp, spot_doc = self._read_spot(n_frames)
                comparisons.extend(spot_cmp)
                self._record_spot(sha, period, check_id, spot_doc)
                if self.predictor is not None:
                    model_cmp, pred_doc = self._model_comparisons(point, readings, spot)
                    comparisons.extend(model_cmp)
            elif self.predictor is not None:
                _, pred_doc = self._model_comparisons(point, readings, None)
            level = worst(c.level for c in comparisons)
            verdict = Verdict(
                check_id=check_id,
                plan_sha256=sha,
                period=period,
                time_utc=iso_utc(),
                level=level,
                comparisons=tuple(comparisons),
                reasons=tuple(c.reason for c in comparisons if c.level != OK and c.reason),
                readings={e: finite_or_none(_reading_payload(e, r)) for e, r in readings.items()},
                spot=spot_doc,
                prediction=pred_doc,
                settle=settle,
                elapsed_s=time.perf_counter() - t_start,
                tolerances_version=self.tol.version,
            )
            if self.store is not None:
                self.store.append(
                    "verdict",
                    plan_sha256=sha,
                    period=period,
                    payload=verdict.as_dict(),
                    idempotency_key=f"check:{check_id}:verdict",
                    time_utc=verdict.time_utc,
                )
            return verdict
        finally:
            self.store = store

    # -- comparisons ----------------------------------------------------------------------
    def _psu_comparisons(
        self, point: Point, readings: Mapping[str, PowerSupplyReading | HardwareError]
    ) -> list[Comparison]:
        t = self.tol
        out: list[Comparison] = []
        for element, attr, _ in DIPOLES:
            r = readings[element]
            planned = float(getattr(point, attr))
            if isinstance(r, HardwareError):
                out.append(
                    Comparison(
                        f"{element} read", type(r).__name__, "record", None, None, "", FAIL, str(r)
                    )
                )
                continue
            healthy = r.status is PsuState.OPERATIONAL and not any(r.faults)
            out.append(
                Comparison(
                    f"{element} status",
                    r.status.name + (f" faults={list(r.faults)}" if any(r.faults) else ""),
                    PsuState.OPERATIONAL.name,
                    None,
                    None,
                    "",
                    OK if healthy else FAIL,
                    ""
                    if healthy
                    else f"{element}: status {r.status.name} (code {r.status_code})"
                    + (f", fault bits {list(r.faults)}" if any(r.faults) else ""),
                )
            )
            out.append(
                graded(
                    f"{element} set point vs plan",
                    r.current_setting_a,
                    planned,
                    t.power_supply.setpoint_warn_a,
                    t.power_supply.setpoint_fail_a,
                    "A",
                    f"{element} set point",
                )
            )
            out.append(
                graded(
                    f"{element} readback vs set point",
                    r.output_current_a,
                    r.current_setting_a,
                    t.power_supply.readback_warn_a,
                    t.power_supply.readback_fail_a,
                    "A",
                    f"{element} readback",
                )
            )
            out.append(
                Comparison(
                    f"{element} readback age",
                    round(r.age_s, 3),
                    0.0,
                    t.power_supply.max_age_s,
                    t.power_supply.max_age_s,
                    "s",
                    OK if r.age_s <= t.power_supply.max_age_s else FAIL,
                    ""
                    if r.age_s <= t.power_supply.max_age_s
                    else f"{element}: record {r.age_s:.1f} s old",
                )
            )
        return out

    def _energy_comparison(
        self, point: Point, readings: Mapping[str, PowerSupplyReading | HardwareError]
    ) -> list[Comparison]:
        from beamline.energy import energy_from_current
        from beamline.errors import BeamlineInputError

        r = readings["DHSTB001"]
        if isinstance(r, HardwareError):
            return []
        name = "energy from DHSTB001 readback"
        scale = point.energy_scale.split("@")[0] or None
        branch = point.branch if point.branch != "unknown" else None
        try:
            est = energy_from_current(r.output_current_a, "DHSTB01", branch=branch, scale=scale)
        except BeamlineInputError as exc:
            return [
                Comparison(name, None, point.e_beam_mev, None, None, "MeV", FAIL, f"{name}: {exc}")
            ]
        c = graded(
            name,
            est.energy_mev,
            point.e_beam_mev,
            self.tol.energy.warn_mev,
            self.tol.energy.fail_mev,
            "MeV",
            "beam energy from the DHSTB001 readback",
        )
        if c.reason:
            c = replace(c, reason=c.reason + f" [sigma {est.sigma_energy_mev:.2f} MeV]")
        return [c]

    def _read_spot(
        self, n_frames: int | None
    ) -> tuple[BeamSpot | None, list[Comparison], dict[str, Any]]:
        assert self.spot_source is not None
        t = self.tol
        n = n_frames or t.spot.n_frames
        try:
            spot = self.spot_source.read_beam_spot(n, t.spot.frames_timeout_s)
        except HardwareError as exc:
            doc = {"element": TIMEPIX, "error": str(exc), "error_type": type(exc).__name__}
            doc["time_utc"] = iso_utc()
            return (
                None,
                [
                    Comparison(
                        "TimePix beam", type(exc).__name__, "beam", None, None, "", FAIL, str(exc)
                    )
                ],
                doc,
            )
        doc = finite_or_none(spot.as_dict())
        doc["element"] = TIMEPIX
        doc["time_utc"] = iso_utc(spot.time_utc)
        out = []
        present = spot.hits_used >= t.spot.min_hits
        out.append(
            Comparison(
                "TimePix beam hits",
                float(spot.hits_used),
                float(t.spot.min_hits),
                None,
                None,
                "hits",
                OK if present else FAIL,
                ""
                if present
                else f"TimePix: only {spot.hits_used} beam hits (need {t.spot.min_hits})",
            )
        )
        total = spot.frames_used + spot.frames_empty + spot.frames_dropped
        frac = spot.frames_dropped / total if total else 0.0
        out.append(
            Comparison(
                "TimePix dropped frames",
                round(frac, 4),
                0.0,
                t.spot.dropped_fraction_warn,
                None,
                "fraction",
                OK if frac <= t.spot.dropped_fraction_warn else WARN,
                ""
                if frac <= t.spot.dropped_fraction_warn
                else f"TimePix: {spot.frames_dropped} of {total} frames dropped",
            )
        )
        return spot, out, doc

    def _record_spot(self, sha: str, period: int, check_id: str, doc: dict[str, Any]) -> None:
        if self.store is None:
            return
        self.store.append(
            "reading",
            plan_sha256=sha,
            period=period,
            payload=dict(doc, check_id=check_id, phase="check", poll=-1),
            idempotency_key=f"check:{check_id}:-1:{TIMEPIX}",
            time_utc=doc["time_utc"],
        )

    def _model_comparisons(
        self,
        point: Point,
        readings: Mapping[str, PowerSupplyReading | HardwareError],
        spot: BeamSpot | None,
    ) -> tuple[list[Comparison], dict[str, Any] | None]:
        from beamline.errors import BeamlineInputError

        assert self.predictor is not None
        t = self.tol
        r1, r2 = readings["DHSTB001"], readings["DHSTB002"]
        out: list[Comparison] = []
        doc: dict[str, Any] = {
            "reference_x_mm": t.spot.reference_x_mm,
            "reference_y_mm": t.spot.reference_y_mm,
        }
        try:
            planned = self.predictor.predict(point.dhstb01_current_a, point.dhstb02_current_a)
            doc["plan"] = planned.as_dict()
        except BeamlineInputError as exc:
            out.append(
                Comparison("model (plan currents)", None, None, None, None, "", FAIL, str(exc))
            )
            planned = None
        measured_pred = None
        if isinstance(r1, HardwareError) or isinstance(r2, HardwareError) or not (r1.ok and r2.ok):
            pass  # no beam to predict: the PSU comparisons already say why
        else:
            try:
                measured_pred = self.predictor.predict(r1.output_current_a, r2.output_current_a)
                doc["measured_currents"] = measured_pred.as_dict()
            except BeamlineInputError as exc:
                out.append(
                    Comparison(
                        "model (measured currents)",
                        None,
                        None,
                        None,
                        None,
                        "",
                        FAIL,
                        f"model cannot predict the spot for the measured currents: {exc}",
                    )
                )
        if spot is None:
            return out, doc
        stat_x = spot.sigma_x_mm / math.sqrt(max(spot.hits_used, 1))
        stat_y = spot.sigma_y_mm / math.sqrt(max(spot.hits_used, 1))
        for label, pred in (("measured currents", measured_pred), ("plan", planned)):
            if pred is None:
                continue
            dxdi = abs(pred.dx_dcurrent_dhstb02_mm_per_a)
            tol_x = math.sqrt(
                t.spot.alignment_mm**2 + (dxdi * t.spot.current_sigma_a) ** 2 + stat_x**2
            )
            tol_y = math.sqrt(t.spot.alignment_mm**2 + stat_y**2)
            out.append(
                graded(
                    f"TimePix x vs model ({label})",
                    spot.x_mm,
                    pred.x_timepix_mm + t.spot.reference_x_mm,
                    tol_x,
                    t.spot.fail_factor * tol_x,
                    "mm",
                    f"TimePix x vs model for the {label}",
                )
            )
            out.append(
                graded(
                    f"TimePix y vs model ({label})",
                    spot.y_mm,
                    pred.y_timepix_mm + t.spot.reference_y_mm,
                    tol_y,
                    t.spot.fail_factor * tol_y,
                    "mm",
                    f"TimePix y vs model for the {label}",
                )
            )
        if measured_pred is not None:
            for axis, meas, pred_sigma in (
                ("x", spot.sigma_x_mm, measured_pred.sigma_x_timepix_mm),
                ("y", spot.sigma_y_mm, measured_pred.sigma_y_timepix_mm),
            ):
                ratio = meas / pred_sigma if pred_sigma > 0 else math.inf
                k = t.spot.size_ratio_warn
                inside = 1.0 / k <= ratio <= k
                out.append(
                    Comparison(
                        f"TimePix sigma_{axis} / model",
                        round(ratio, 4) if math.isfinite(ratio) else None,
                        1.0,
                        k,
                        None,
                        "ratio",
                        OK if inside else WARN,
                        ""
                        if inside
                        else f"TimePix sigma_{axis} {meas:.2f} mm vs model {pred_sigma:.2f} mm",
                    )
                )
        return out, doc


def _reading_payload(element: str, r: PowerSupplyReading | HardwareError) -> dict[str, Any]:
    if isinstance(r, HardwareError):
        return {
            "element": element,
            "time_utc": iso_utc(),
            "error": str(r),
            "error_type": type(r).__name__,
            "key": r.key,
        }
    d = r.as_dict()
    d["time_utc"] = iso_utc(r.time_utc)
    return finite_or_none(d)


def check_point(
    plan: Plan,
    period: int,
    *,
    psu: PowerSupplySource,
    spot: BeamSpotSource | None = None,
    model: SpotPredictor | BeamLine | None = None,
    store: RunConditionsStore | None = None,
    tolerances: CheckTolerances | None = None,
    watch: bool = False,
    settle_timeout_s: float | None = None,
) -> Verdict:
    """One-shot check of plan point ``period`` (see :class:`Checker`). ``model`` is a
    :class:`SpotPredictor` or a :class:`beamline.model.BeamLine` (wrapped, not cached
    across calls)."""
    tol = tolerances or CheckTolerances.load()
    predictor = model
    if model is not None and not isinstance(model, SpotPredictor):
        predictor = SpotPredictor(None, beamline=model, rel_spread=tol.spot.rel_spread)
    checker = Checker(psu=psu, spot=spot, predictor=predictor, store=store, tolerances=tol)
    return checker.check(plan, period, watch=watch, settle_timeout_s=settle_timeout_s)


@dataclass
class Connections:
    """Clients of the BTF memcached and the TimePix server built from addresses (close
    them, or use as a context manager)."""

    psu: Any
    spot: Any

    def close(self) -> None:
        self.psu.close()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    memcached: str,
    timepix_url: str | None,
    *,
    key_prefix: str = "",
    tolerances: CheckTolerances | None = None,
    timeout_s: float = 1.0,
) -> Connections:
    """Read-only :class:`BtfControls` on ``memcached`` (``HOST:PORT``) and a
    :class:`ServalBeamMonitor` on ``timepix_url`` (None: no TimePix). Bad addresses raise
    ScanplanError; nothing is contacted yet."""
    from hw_interfaces.btf_controls import BtfControls
    from hw_interfaces.timepix import ServalBeamMonitor, ServalClient

    tol = tolerances or CheckTolerances.load()
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ScanplanError("the hardware timeout must be > 0 s")
    try:
        psu = BtfControls.from_address(
            memcached,
            timeout_s=timeout_s,
            key_prefix=key_prefix,
            max_age_s=tol.power_supply.max_age_s,
        )
    except ValueError as exc:
        raise ScanplanError(f"memcached address: {exc}") from None
    monitor = None
    if timepix_url:
        try:
            client = ServalClient(timepix_url, timeout_s=timeout_s, retries=1)
        except ValueError as exc:
            raise ScanplanError(str(exc)) from None
        monitor = ServalBeamMonitor(
            client,
            n_frames=tol.spot.n_frames,
            timeout_s=tol.spot.frames_timeout_s,
            min_hits=tol.spot.min_hits,
        )
    return Connections(psu, monitor)
