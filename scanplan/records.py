"""Records shared by the planner, the exports, the store and the step checker.

A plan is data (bluesky style): a list of points you can inspect, save, validate and replay
before anything is set on the machine. The canonical JSON document has a schema version,
units in every field name, provenance and a SHA-256 over its canonical serialisation, so a
hand-edited or corrupted plan is detected on load.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .atomic import atomic_write_text
from .errors import ScanplanError

PLAN_SCHEMA_VERSION = 1

Branch = Literal["ascending", "descending", "unknown"]
PointKind = Literal["on_resonance", "control"]


class _Record(BaseModel):
    # NaN/inf are never a plan value; json would write them, the hash could not (allow_nan)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Point(_Record):
    """One scan point. ``period`` is PADME's scan-point index (0..N-1)."""

    period: int = Field(ge=0)
    pass_index: int = Field(ge=0, description="0 = coarse pass, 1.. = interleaved passes")
    kind: PointKind = "on_resonance"
    e_beam_mev: float = Field(gt=0, description="total beam energy")
    sigma_e_beam_mev: float = Field(ge=0)
    sqrt_s_mev: float = Field(gt=0)
    sigma_sqrt_s_mev: float = Field(ge=0)
    dhstb01_current_a: float
    dhstb02_current_a: float
    calibration: str = Field(description="dipole calibration name@version")
    energy_scale: str = Field(description="energy-scale name@version")
    branch: Branch
    sltb2_mm: float = Field(gt=0)
    sltb3_mm: float = Field(gt=0)
    sltb4_mm: float = Field(gt=0)
    sltb5_mm: float = Field(gt=0)
    q1_current_a: float
    q2_current_a: float
    q3_current_a: float
    q4_current_a: float
    rel_spread: float = Field(ge=0, description="relative rms beam energy spread (BES)")
    target_pot: float = Field(ge=0)
    hours: float = Field(ge=0)
    background_per_pot: float = Field(ge=0)
    signal_efficiency: float = Field(ge=0, le=1)
    signal_yield_per_pot_g2: float = Field(ge=0)
    expected_signal_ref: float = Field(ge=0, description="signal for the plan's reference coupling")


class Provenance(_Record):
    tool: str
    tool_version: str
    lattice_version: str
    settings: str
    settings_version: str
    calibration_version: str
    energy_scale_version: str
    beam: str = ""


class Plan(_Record):
    """A scan plan: inputs, provenance and points. ``content_sha256`` seals it."""

    schema_version: int = PLAN_SCHEMA_VERSION
    created_utc: str
    name: str = ""
    provenance: Provenance
    inputs: dict[str, Any]
    points: list[Point]
    content_sha256: str = ""

    def canonical_json(self) -> str:
        """Canonical serialisation (sorted keys, compact, hash field excluded)."""
        payload = self.model_dump(mode="json", exclude={"content_sha256"})
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def sealed(self) -> Plan:
        """A copy carrying the hash of its content."""
        return self.model_copy(update={"content_sha256": self.compute_hash()})

    def point(self, period: int) -> Point:
        for p in self.points:
            if p.period == period:
                return p
        periods = [p.period for p in self.points]
        raise ScanplanError(
            f"plan has no point {period}; periods are {min(periods)}..{max(periods)}"
            if periods
            else "plan has no points"
        )


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Seal ``plan`` and write it atomically as indented JSON."""
    sealed = plan.sealed()
    text = json.dumps(sealed.model_dump(mode="json"), indent=2, sort_keys=True, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def _reject_non_finite(token: str) -> Any:
    raise ValueError(f"non-finite number {token} (a plan holds finite values only)")


def load_plan(path: str | Path, *, verify: bool = True) -> Plan:
    """Read a plan; a bad file, schema or hash mismatch raises ``ScanplanError``."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"), parse_constant=_reject_non_finite)
    except FileNotFoundError:
        raise ScanplanError(f"plan file {p} not found") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError, NaN
        raise ScanplanError(f"plan file {p} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("schema_version") != PLAN_SCHEMA_VERSION:
        raise ScanplanError(
            f"plan file {p}: unsupported schema_version {raw.get('schema_version') if isinstance(raw, dict) else None!r}"
            f" (this tool reads {PLAN_SCHEMA_VERSION})"
        )
    try:
        plan = Plan.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ScanplanError(f"plan file {p}: invalid field {where}: {first['msg']}") from None
    if verify:
        actual = plan.compute_hash()
        if plan.content_sha256 != actual:
            raise ScanplanError(
                f"plan file {p} was modified after it was written (content hash mismatch: "
                f"stored {plan.content_sha256[:12] or 'none'}, actual {actual[:12]}); "
                "re-create it with 'scanplan plan'"
            )
    return plan
