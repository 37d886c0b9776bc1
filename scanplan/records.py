"""Records shared by the planner, the exports, the store and the step checker.

A plan is data (bluesky style): a list of points you can inspect, save, validate and replay
before anything is set on the machine. The canonical JSON document has a schema version,
units in every field name, provenance and a SHA-256 over its canonical serialisation, so a
hand-edited or corrupted plan is detected on load.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .analysis.replan_info import ReplanInfo
from .analysis.spacing import SpacingInfo
from .atomic import atomic_write_text
from .errors import ScanplanError
from .physics.params import (
    ControlPosition,
    ControlSideName,
    Direction,
    OptimiseObjective,
    PhysicsModel,
    QuadScaling,
    WidthReference,
)

PLAN_SCHEMA_VERSION = 2

Branch = Literal["ascending", "descending", "unknown"]
PointKind = Literal["on_resonance", "control"]
RangeKind = Literal["mass", "sqrt_s", "energy"]
PotMode = Literal["pot_per_point", "budget", "optimised"]
BesSource = Literal["given", "spread_engine"]

#: What the per-point yield columns mean (written into every plan).
YIELD_DEFINITION = (
    "on-peak: signal_yield_per_pot_g2 = Y * V(0) for a resonance at the point's sqrt(s); "
    "expected_signal_ref = g_ref^2 * target_pot * signal_efficiency * signal_yield_per_pot_g2"
)
#: Which hysteresis branch a point is on, and why (written into every plan).
BRANCH_ASSUMPTION = (
    "branch = pass direction; the first point of each pass is approached with the overshoot "
    "recipe of beamline.hysteresis"
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    def current_a(self, magnet: str) -> float:
        """Set current [A] of ``magnet`` (DHSTB01, DHSTB02, Q1..Q4)."""
        value: float = getattr(self, current_field(magnet))
        return value

    def gap_mm(self, slit: str) -> float:
        """Gap [mm] of ``slit`` (SLTB2..SLTB5)."""
        value: float = getattr(self, gap_field(slit))
        return value


def current_field(magnet: str) -> str:
    """The :class:`Point` field holding the set current [A] of ``magnet`` (e.g. ``DHSTB01``)."""
    return f"{magnet.lower()}_current_a"


def gap_field(slit: str) -> str:
    """The :class:`Point` field holding the gap [mm] of ``slit`` (e.g. ``SLTB4``)."""
    return f"{slit.lower()}_mm"


class SpreadEngineInfo(_Record):
    """BES from the spread engine: the energies tracked [MeV], the rms relative spread of
    the transmitted beam there, particles transmitted and e+ per bunch, the tracking
    particles per energy and seed (the BES is linear in beam energy in between)."""

    energies_mev: list[float]
    rel_spread_rms: list[float]
    n_transmitted: list[int]
    positrons_per_bunch: list[float]
    particles: int = Field(ge=1)
    seed: int


class OptimisationInfo(_Record):
    """How :func:`scanplan.optimise.optimise_plan` redistributed the beam time: the mass
    window [MeV], objective, beam hours shared [h], minimum hours per point [h], window
    masses, the source plan's hash and the expected g limits before and after."""

    window_mev: tuple[float, float]
    objective: OptimiseObjective
    total_beam_hours: float = Field(ge=0)
    min_hours_per_point: float = Field(ge=0)
    n_masses: int = Field(ge=2)
    source_plan_sha256: str
    before_mean_g: float
    before_max_g: float
    after_mean_g: float
    after_max_g: float
    method: str


class PlanInputs(_Record):
    """Everything a plan was made from and the rule values it obeys (was a 45-key dict).

    Range: ``range_kind`` and ``range_mev`` as requested, ``e_beam_range_mev`` the beam-energy
    range [MeV]. Spacing: ``step_fraction`` of the line FWHM ``rule_width_mev`` [MeV] taken at
    ``width_reference``; ``max_step_mev``, ``combined_step_mev`` (all passes) and
    ``coarse_step_mev`` (one pass) [MeV]; ``passes`` in ``direction``. Control: ``control``
    side, ``control_energies_mev`` [MeV], ``control_position``. Beam time: ``pot_mode``,
    ``pot_per_point`` (None unless the same for every point), ``budget_hours`` [h],
    ``positrons_per_bunch``, ``repetition_rate_hz`` [Hz], ``uptime_fraction``,
    ``overhead_hours_per_point`` [h], ``pot_rate_per_hour`` [1/h], ``start_utc`` (ISO or
    None), ``total_hours`` [h]. Physics: ``bes`` relative beam-energy spread (None when it
    comes from the spread engine, ``spread_engine``), ``physics`` the full model used.
    Machine: ``quad_scaling``, ``dhstb02_relative_offset``, ``dhstb02_calibration``,
    ``extrapolate``. Validation: ``duplicate_tolerance_mev`` [MeV],
    ``control_min_distance_fwhm`` [line FWHM]. ``optimisation`` is set by the optimiser.
    """

    range_kind: RangeKind
    range_mev: tuple[float, float]
    e_beam_range_mev: tuple[float, float]
    step_fraction: float = Field(gt=0)
    width_reference: WidthReference
    rule_width_mev: float = Field(gt=0)
    max_step_mev: float = Field(gt=0)
    combined_step_mev: float = Field(ge=0)
    coarse_step_mev: float = Field(ge=0)
    spacing: SpacingInfo | None = None
    passes: int = Field(ge=1)
    direction: Direction
    control: ControlSideName
    control_energies_mev: list[float]
    control_position: ControlPosition
    pot_mode: PotMode
    pot_per_point: float | None = Field(gt=0)
    budget_hours: float | None = Field(gt=0)
    positrons_per_bunch: float = Field(gt=0)
    repetition_rate_hz: float = Field(gt=0)
    uptime_fraction: float = Field(gt=0, le=1)
    overhead_hours_per_point: float = Field(ge=0)
    pot_rate_per_hour: float = Field(gt=0)
    start_utc: str | None
    total_hours: float = Field(ge=0)
    bes: float | None = Field(ge=0)
    bes_source: BesSource
    spread_engine: SpreadEngineInfo | None = None
    physics: PhysicsModel
    scan_defaults_version: str
    quad_scaling: QuadScaling
    dhstb02_relative_offset: float
    dhstb02_calibration: str
    extrapolate: bool
    duplicate_tolerance_mev: float = Field(gt=0)
    control_min_distance_fwhm: float = Field(ge=0)
    yield_definition: str = YIELD_DEFINITION
    branch_assumption: str = BRANCH_ASSUMPTION
    notes: list[str] = Field(default_factory=list)
    optimisation: OptimisationInfo | None = None
    replan: ReplanInfo | None = None


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
    """A scan plan: inputs, provenance and points. ``content_sha256`` seals it (SHA-256 of
    the canonical JSON of everything else)."""

    schema_version: int = PLAN_SCHEMA_VERSION
    created_utc: str
    name: str = ""
    provenance: Provenance
    inputs: PlanInputs
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


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Seal ``plan`` and write it atomically as indented JSON."""
    sealed = plan.sealed()
    text = json.dumps(sealed.model_dump(mode="json"), indent=2, sort_keys=True, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def load_plan(path: str | Path, *, verify: bool = True) -> Plan:
    """Read a plan; a bad file, schema or hash mismatch raises ``ScanplanError``."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScanplanError(f"plan file {p} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
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
