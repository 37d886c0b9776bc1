"""The step checker's records: comparisons, readings, the beam spot, the model prediction and
the verdict, as typed (frozen) pydantic models. Power-supply readings are the adapters' own
typed :class:`~hw_interfaces.btf_records.PowerSupplyReading`.

These are what :class:`scanplan.check.checker.Checker` returns and what
:class:`scanplan.check.recorder.CheckRecorder` writes to the run-conditions store
(``as_payload()``: JSON-ready, NaN/inf as null). Units are in the field names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, computed_field, field_serializer

from beamline.datafiles import DataModel
from beamline.spot import SpotPrediction
from hw_interfaces.btf_records import PowerSupplyReading
from hw_interfaces.clock import iso_utc
from hw_interfaces.errors import HardwareError
from hw_interfaces.timepix import BeamSpot

Level = Literal["OK", "WARN", "FAIL"]
OK: Level = "OK"
WARN: Level = "WARN"
FAIL: Level = "FAIL"
LEVELS: tuple[Level, ...] = (OK, WARN, FAIL)
#: element name of the TimePix in readings
TIMEPIX = "TIMEPIX"


def worst(levels: Iterable[Level]) -> Level:
    """The most severe of ``levels`` (OK if empty)."""
    return max(levels, key=LEVELS.index, default=OK)


def stamp(t: datetime | None = None) -> str:
    """Record time stamp: ISO 8601 UTC with milliseconds and ``Z``."""
    return iso_utc(t, timespec="milliseconds")


def finite_or_none(obj: Any) -> Any:
    """Copy of a JSON-like object with NaN/inf floats replaced by None (store payloads)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def decimals_for(tolerance: float | None, default: int = 3) -> int:
    """Decimals that resolve ``tolerance`` (one more than its first significant digit), so a
    difference beyond it never rounds to equal numbers: 0.011 A -> 3, 1 mm -> 1."""
    if tolerance is None or not (math.isfinite(tolerance) and tolerance > 0):
        return default
    return max(0, math.ceil(-math.log10(tolerance)) + 1)


def shown(value: float, tolerance: float | None) -> str:
    """``value`` with the decimals of :func:`decimals_for` (NaN/inf as they are)."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{decimals_for(tolerance)}f}"


class Record(DataModel):
    """Base of the records: ``as_payload()`` is the JSON document stored."""

    def as_payload(self) -> dict[str, Any]:
        return finite_or_none(self.model_dump(mode="json"))


class ReadError(Record):
    """A device that could not be read: the adapter's error, by type and message."""

    element: str
    time_utc: str
    error: str
    error_type: str
    key: str = ""

    @classmethod
    def of(cls, element: str, exc: HardwareError, time_utc: str) -> ReadError:
        return cls(
            element=element,
            time_utc=time_utc,
            error=str(exc),
            error_type=type(exc).__name__,
            key=exc.key,
        )


class SpotRecord(Record, BeamSpot):
    """The TimePix beam spot as a record: :class:`hw_interfaces.timepix.BeamSpot` (its fields,
    one home) with the element name, the time stored as :func:`stamp` writes it."""

    element: str = TIMEPIX

    @field_serializer("time_utc")
    def _stamp(self, t: datetime) -> str:
        return stamp(t)

    @classmethod
    def of(cls, spot: BeamSpot) -> SpotRecord:
        """The record of ``spot``, its time at the millisecond the store keeps."""
        t = spot.time_utc
        return cls.model_validate(
            {**dict(spot), "time_utc": t.replace(microsecond=t.microsecond // 1000 * 1000)}
        )


PsuReading = PowerSupplyReading | ReadError
SpotReading = SpotRecord | ReadError


class PredictedSpot(Record, SpotPrediction):
    """The model's spot for one pair of dipole currents: :class:`beamline.spot.SpotPrediction`
    (its fields, one home) stored as a record."""


class Prediction(Record):
    """Model predictions for the plan's and the measured currents (None: none possible),
    and the reference offset added to the model's centroid [mm]."""

    reference_x_mm: float
    reference_y_mm: float
    plan: PredictedSpot | None = None
    measured_currents: PredictedSpot | None = None


class Comparison(Record):
    """One checked quantity. ``measured``/``expected`` are numbers (or state names);
    ``warn``/``fail`` the tolerances on |measured - expected| in ``unit``."""

    name: str
    measured: float | str | None
    expected: float | str | None
    warn: float | None = None
    fail: float | None = None
    unit: str = ""
    level: Level
    reason: str = ""
    #: the magnet current error that would explain the difference (model's d/dI), e.g. the
    #: DHSTB02 current a TimePix x offset implies [A]; None when not applicable
    implied_current_a: float | None = None
    implied_magnet: str = ""

    def shown(self, value: float | str | None) -> str:
        """A measured/expected/diff value with the digits the tolerance needs."""
        if value is None:
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.warn is None and self.fail is None:
                return f"{value:.4g}"
            return shown(float(value), self.warn or self.fail)
        return str(value)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def difference(self) -> float | None:
        """measured - expected when both are numbers."""
        m, e = self.measured, self.expected
        if isinstance(m, (int, float)) and isinstance(e, (int, float)):
            return float(m) - float(e)
        return None


class SettlePoll(Record):
    """One poll of the settle loop (``--watch``)."""

    poll: int
    elapsed_s: float
    stable: int
    readings: dict[str, PsuReading]


class SettleSummary(Record):
    """Outcome of the settle loop: settled, settled outside tolerance (steady but off the
    plan: stopped early) or timed out, after ``polls`` polls."""

    settled: bool
    elapsed_s: float
    polls: int
    outside_tolerance: bool = False


class Verdict(Record):
    """Outcome of one check of plan point ``period``.

    ``readings``: the PSU readings the check judged (element -> reading or error);
    ``settle_polls``: the readings of the settle loop before it (recorded, not part of the
    verdict document).
    """

    check_id: str
    plan_sha256: str
    period: int
    time_utc: str
    level: Level
    comparisons: tuple[Comparison, ...]
    reasons: tuple[str, ...]
    readings: dict[str, PsuReading] = Field(default_factory=dict)
    spot: SpotReading | None = None
    prediction: Prediction | None = None
    settle: SettleSummary | None = None
    elapsed_s: float = 0.0
    tolerances_version: str = ""
    settle_polls: tuple[SettlePoll, ...] = Field(default=(), exclude=True)

    @property
    def ok(self) -> bool:
        """OK or WARN: the point may proceed."""
        return self.level != FAIL

    def comparison(self, name: str) -> Comparison:
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(name)

    def output_current_a(self, element: str) -> float | None:
        """The measured output current of ``element`` [A] (None: not read)."""
        r = self.readings.get(element)
        return r.output_current_a if isinstance(r, PowerSupplyReading) else None

    @property
    def beam_spot(self) -> SpotRecord | None:
        """The measured spot (None: no TimePix or it failed)."""
        return self.spot if isinstance(self.spot, SpotRecord) else None

    def as_dict(self) -> dict[str, Any]:
        """The verdict document (JSON-ready; what ``--json`` prints and the store keeps)."""
        return self.as_payload()
