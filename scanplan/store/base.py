"""The run-conditions store interface and its record.

History is append-only: planned, applied and measured values, verdicts and run starts are
events; nothing is ever updated or deleted. "Current state" is a query (latest event per
key). Each event has an idempotency key so a resumed run never records the same thing
twice: appending an event whose key exists is a no-op if the content is the same and an
error if it differs.
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ScanplanError
from ..records import Plan

#: event kinds used by scanplan (others are allowed if they are lower-case identifiers)
KIND_PLANNED = "planned"
KIND_APPLIED = "applied"
KIND_MEASURED = "measured"
KIND_READING = "reading"
KIND_VERDICT = "verdict"
KIND_RUN_STARTED = "run_started"
KIND_RUN_STOPPED = "run_stopped"
KIND_PADME_PUSH = "padme_push"
KNOWN_KINDS = (
    KIND_PLANNED,
    KIND_APPLIED,
    KIND_MEASURED,
    KIND_READING,
    KIND_VERDICT,
    KIND_RUN_STARTED,
    KIND_RUN_STOPPED,
    KIND_PADME_PUSH,
)
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Event:
    """One history record. ``time_utc`` ISO 8601 with ``Z``; ``payload`` a JSON object."""

    id: int
    kind: str
    plan_sha256: str | None
    period: int | None
    run_number: int | None
    time_utc: str
    payload: dict[str, Any]
    idempotency_key: str
    recorded_utc: str = ""
    created: bool = field(default=True, compare=False)

    def as_row(self) -> dict[str, Any]:
        """Flat dict for tables and JSON."""
        return {
            "id": self.id,
            "kind": self.kind,
            "plan_sha256": self.plan_sha256,
            "period": self.period,
            "run_number": self.run_number,
            "time_utc": self.time_utc,
            "payload": self.payload,
            "idempotency_key": self.idempotency_key,
            "recorded_utc": self.recorded_utc,
        }


def canonical_payload(payload: Mapping[str, Any]) -> str:
    """Canonical JSON of a payload (sorted keys, compact); NaN/inf refused."""
    if not isinstance(payload, Mapping):
        raise ScanplanError(f"event payload must be a mapping, got {type(payload).__name__}")

    def check(o: Any, where: str) -> None:
        if isinstance(o, float) and not math.isfinite(o):
            raise ScanplanError(f"event payload {where} is not finite ({o!r})")
        if isinstance(o, Mapping):
            for k, v in o.items():
                check(v, f"{where}.{k}" if where else str(k))
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                check(v, f"{where}[{i}]")

    check(payload, "")
    try:
        return json.dumps(dict(payload), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ScanplanError(f"event payload is not JSON-serialisable: {exc}") from None


#: Largest period or run number: PadmeDAQ keeps run numbers in a signed 32-bit column.
MAX_INDEX = 2**31 - 1


def check_event_fields(
    kind: str, plan_sha256: str | None, period: int | None, run_number: int | None
) -> None:
    """Validate the indexed fields of an event (clear errors)."""
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise ScanplanError(
            f"event kind must be a lower-case identifier (e.g. {', '.join(KNOWN_KINDS[:4])}), "
            f"got {kind!r}"
        )
    if plan_sha256 is not None and not _SHA_RE.match(plan_sha256):
        raise ScanplanError(f"plan_sha256 must be 64 lower-case hex digits, got {plan_sha256!r}")
    if period is not None and (
        isinstance(period, bool) or int(period) != period or not 0 <= period <= MAX_INDEX
    ):
        raise ScanplanError(f"period must be an integer in 0..{MAX_INDEX}, got {period!r}")
    if run_number is not None and (
        isinstance(run_number, bool)
        or int(run_number) != run_number
        or not 0 < run_number <= MAX_INDEX
    ):
        raise ScanplanError(f"run number must be an integer in 1..{MAX_INDEX}, got {run_number!r}")


def check_time_utc(time_utc: str) -> str:
    """``time_utc`` if it is an ISO 8601 time with a UTC offset (``Z`` or ``+00:00``)."""
    from datetime import datetime, timedelta

    try:
        parsed = datetime.fromisoformat(str(time_utc).replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() != timedelta(0):
        raise ScanplanError(
            f"time_utc must be ISO 8601 in UTC (e.g. 2026-11-25T12:00:00Z), got {time_utc!r}"
        )
    return str(time_utc)


def default_idempotency_key(
    kind: str,
    plan_sha256: str | None,
    period: int | None,
    run_number: int | None,
    time_utc: str,
    payload_json: str,
) -> str:
    """Key derived from the whole content: the same record appended twice is stored once."""
    text = json.dumps([kind, plan_sha256, period, run_number, time_utc, payload_json])
    return "auto:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class RunConditionsStore(abc.ABC):
    """Append-only history of planned / applied / measured values per point and run."""

    @abc.abstractmethod
    def record_plan(self, plan: Plan) -> list[Event]:
        """Store the plan and one ``planned`` event per point (idempotent)."""

    @abc.abstractmethod
    def append(
        self,
        kind: str,
        *,
        plan_sha256: str | None = None,
        period: int | None = None,
        run_number: int | None = None,
        payload: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        time_utc: str | None = None,
    ) -> Event:
        """Append one event; an existing idempotency key with equal content returns the
        stored event (``created`` False); with different content it is an error."""

    @abc.abstractmethod
    def history(
        self,
        *,
        plan_sha256: str | None = None,
        period: int | None = None,
        run_number: int | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[Event]:
        """Events matching all given filters, oldest first."""

    def latest(
        self,
        *,
        plan_sha256: str | None = None,
        period: int | None = None,
        run_number: int | None = None,
        kinds: Iterable[str] | None = None,
    ) -> dict[tuple[str, int | None, int | None], Event]:
        """Current state: the latest event per (kind, period, run_number)."""
        out: dict[tuple[str, int | None, int | None], Event] = {}
        for ev in self.history(
            plan_sha256=plan_sha256, period=period, run_number=run_number, kinds=kinds
        ):
            out[(ev.kind, ev.period, ev.run_number)] = ev
        return out

    def runs_by_period(self, plan_sha256: str) -> dict[int, list[int]]:
        """period -> run numbers recorded for the plan (events carrying both)."""
        out: dict[int, set[int]] = {}
        for ev in self.history(plan_sha256=plan_sha256):
            if ev.period is not None and ev.run_number is not None:
                out.setdefault(ev.period, set()).add(ev.run_number)
        return {p: sorted(r) for p, r in sorted(out.items())}
