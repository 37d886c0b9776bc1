"""What to plan: :class:`PlanRequest`, a typed, validated request whose defaults come from
``lattices/physics/scan_defaults.toml`` (:class:`scanplan.physics.params.ScanDefaults`) and the
physics model, and the beam-energy range it asks for."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from beamline.datafiles import validation_message
from beamline.kinematics import e_beam_for_sqrt_s_mev, resonance_energy_mev
from beamline.lattice import line_spec
from hw_interfaces.clock import parse_utc

from ..errors import ScanplanError
from ..physics.params import (
    DEFAULT_MODEL,
    ControlPosition,
    ControlSideName,
    Direction,
    QuadScaling,
    ScanDefaults,
    WidthReference,
    load_physics,
    load_scan_defaults,
)
from ..records import RangeKind

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Range = tuple[Positive, Positive]


def _defaults() -> ScanDefaults:
    return load_scan_defaults()


def _side_default(data: dict[str, Any], key: str) -> Any:
    """The data file's ``key`` of the control block on the requested side (None for none)."""
    side = data.get("control")  # absent when the side given was invalid
    if side is None or side == "none":
        return None
    return getattr(_defaults().control_side(side), key)


class PlanRequest(BaseModel):
    """What to plan. Exactly one of ``mass_range_mev``, ``sqrt_s_range_mev`` and
    ``energy_range_mev`` [MeV, (low, high)]. A field not given (or given as None) takes its
    default from ``lattices/physics/scan_defaults.toml`` (section in brackets).

    Spacing [spacing]: ``step_fraction`` of the line FWHM (``width_reference`` "min"/"centre"),
    ``step_mev`` an explicit maximum combined spacing [MeV] (must obey the rule), ``passes``
    interleaved passes in ``direction``; ``spacing_rule`` "robust" (the signal lost midway
    between points stays within ``lattices/physics/spacing_rule.toml`` under the pessimistic
    line shape, :mod:`scanplan.analysis.spacing`) or "published" (the half-width rule alone;
    default: that file's). Control [control]: ``control`` side
    "below"/"above"/"none", explicit ``control_energies_mev`` [MeV] or
    ``control_count``/``control_offset_mev`` [MeV]/``control_step_mev`` [MeV] (defaults of the
    chosen side), ``control_position``. Beam time [beam_time]: ``pot_per_point`` (default
    unless ``budget_hours`` [h] is given) or ``budget_hours``; ``positrons_per_bunch``,
    ``repetition_rate_hz`` [Hz], ``uptime_fraction``, ``overhead_hours_per_point`` [h],
    ``start_utc`` (ISO time of the first changeover, for the calendar). Physics: ``bes``
    relative beam-energy spread (default: the physics model's ``default_bes``), or
    ``bes_from_spread`` to take it from the spread engine [spread_engine]
    (``spread_particles`` per energy, ``spread_seed``, ``spread_scheduler``);
    ``lorentz_width_mev`` and ``reference_coupling`` override the physics model named
    ``physics``. Machine: ``settings`` name, ``quad_scaling`` [currents] "momentum"/"fixed",
    ``energy_scale`` name, ``dhstb02_relative_offset`` (p_02 = (1 + offset) p_beam; default
    the DHSTB02 calibration's), ``extrapolate`` to allow currents outside the calibrations'
    trusted ranges. Invalid values raise :class:`ScanplanError` naming the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mass_range_mev: Range | None = None
    sqrt_s_range_mev: Range | None = None
    energy_range_mev: Range | None = None
    step_fraction: Positive = Field(default_factory=lambda: _defaults().spacing.step_fraction)
    step_mev: Positive | None = None
    width_reference: WidthReference = Field(
        default_factory=lambda: _defaults().spacing.width_reference
    )
    passes: int = Field(default_factory=lambda: _defaults().spacing.passes, ge=1)
    direction: Direction = Field(default_factory=lambda: _defaults().spacing.direction)
    control: ControlSideName = Field(default_factory=lambda: _defaults().control.side)
    control_energies_mev: tuple[Positive, ...] | None = None
    control_count: int | None = Field(default_factory=lambda d: _side_default(d, "count"), ge=0)
    control_offset_mev: Positive | None = Field(
        default_factory=lambda d: _side_default(d, "offset_mev")
    )
    control_step_mev: Positive | None = Field(
        default_factory=lambda d: _side_default(d, "step_mev")
    )
    control_position: ControlPosition = Field(default_factory=lambda: _defaults().control.position)
    budget_hours: Positive | None = None
    pot_per_point: Positive | None = Field(
        default_factory=lambda d: (
            None if d.get("budget_hours") is not None else _defaults().beam_time.pot_per_point
        )
    )
    positrons_per_bunch: Positive = Field(
        default_factory=lambda: _defaults().beam_time.positrons_per_bunch
    )
    repetition_rate_hz: Positive = Field(
        default_factory=lambda: _defaults().beam_time.repetition_rate_hz
    )
    uptime_fraction: float = Field(
        default_factory=lambda: _defaults().beam_time.uptime_fraction, gt=0, le=1
    )
    overhead_hours_per_point: NonNegative = Field(
        default_factory=lambda: _defaults().beam_time.overhead_hours_per_point
    )
    start_utc: str | None = None
    physics: str = DEFAULT_MODEL
    bes_from_spread: bool = False
    bes: float | None = Field(
        default_factory=lambda d: (
            None
            if d.get("bes_from_spread")
            else load_physics(d.get("physics", DEFAULT_MODEL)).signal.default_bes
        ),
        ge=0,
        lt=0.1,
        allow_inf_nan=False,
    )
    spread_particles: int = Field(
        default_factory=lambda: _defaults().spread_engine.particles, ge=1000
    )
    spread_seed: int = Field(default_factory=lambda: _defaults().spread_engine.seed)
    spread_scheduler: str | None = None
    lorentz_width_mev: NonNegative | None = None
    reference_coupling: Positive | None = None
    spacing_rule: Literal["robust", "published"] | None = None
    settings: str | None = None
    quad_scaling: QuadScaling = Field(default_factory=lambda: _defaults().currents.quad_scaling)
    energy_scale: str | None = None
    dhstb02_relative_offset: float | None = Field(None, allow_inf_nan=False)
    extrapolate: bool = False
    name: str = ""
    notes: tuple[str, ...] = ()

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            # a default derived from a field that failed is not a second error to report
            errors = [
                e
                for e in exc.errors(include_url=False)
                if e["type"] != "default_factory_not_called"
            ]
            own = errors[0].get("ctx", {}).get("error") if len(errors) == 1 else None
            if isinstance(own, ScanplanError):  # a consistency check below: its own message
                raise ScanplanError(str(own)) from None
            details: list[Any] = [{k: v for k, v in e.items() if k != "msg"} for e in errors]
            causes = ValidationError.from_exception_data(exc.title, details)
            raise ScanplanError(validation_message("plan request", causes)) from None

    @model_validator(mode="before")
    @classmethod
    def _none_is_default(cls, data: Any) -> Any:
        """A field given as None takes its default (the CLI passes unset options as None)."""
        if isinstance(data, dict):
            if isinstance(data.get("direction"), str):
                data = {**data, "direction": data["direction"].lower()}
            return {k: v for k, v in data.items() if v is not None}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> PlanRequest:
        given = self.model_fields_set
        if "pot_per_point" in given and self.budget_hours is not None:
            raise ScanplanError("give either POT per point or a beam-time budget, not both")
        if self.bes_from_spread and "bes" in given:
            raise ScanplanError("give either a BES or --bes-from-spread, not both")
        if self.control == "none" and self.control_energies_mev:
            raise ScanplanError("control energies given with --control none")
        if self.start_utc is not None:
            start_time(self.start_utc)
        return self

    def given(self) -> dict[str, Any]:
        """The fields set explicitly (what to rebuild the request from with changes)."""
        return self.model_dump(include=self.model_fields_set)

    def replaced(self, **changes: Any) -> PlanRequest:
        """A new request with ``changes`` on top of the given fields; the defaults that depend
        on other fields (control block, POT per point, BES) are derived again."""
        return PlanRequest(**{**self.given(), **changes})


@functools.cache
def _field_adapter(key: str) -> TypeAdapter[Any]:
    info = PlanRequest.model_fields[key]
    if not info.metadata:
        return TypeAdapter(info.annotation)
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)])  # constraints kept


def parse_request_value(key: str, text: str) -> Any:
    """Convert the text ``text`` to the type of request field ``key`` (for sweeps); a bad
    value is a ScanplanError naming the field."""
    if key not in PlanRequest.model_fields:
        raise ScanplanError(
            f"unknown plan option '{key}'; known: {', '.join(sorted(PlanRequest.model_fields))}"
        )
    try:
        return _field_adapter(key).validate_python(text)
    except ValidationError as exc:
        msg = exc.errors()[0].get("msg", "invalid")
        raise ScanplanError(f"plan option {key}: '{text}' is not valid ({msg})") from None


def start_time(text: str) -> datetime:
    """A calendar start time (ISO 8601, UTC if naive) as aware UTC; else a ScanplanError."""
    try:
        return parse_utc(text)
    except ValueError:
        raise ScanplanError(
            f"start time '{text}' is not an ISO date/time (e.g. 2026-03-01T08:00Z)"
        ) from None


def resolve_energy_range(
    req: PlanRequest,
) -> tuple[RangeKind, tuple[float, float], tuple[float, float]]:
    """Which range was given, its (low, high) values and the beam-energy range [MeV]."""
    ranges: tuple[tuple[RangeKind, tuple[float, float] | None], ...] = (
        ("mass", req.mass_range_mev),
        ("sqrt_s", req.sqrt_s_range_mev),
        ("energy", req.energy_range_mev),
    )
    given = [(k, v) for k, v in ranges if v is not None]
    if len(given) != 1:
        raise ScanplanError("give exactly one of a mass, a sqrt(s) or a beam-energy range")
    kind, (lo, hi) = given[0]
    if hi < lo:
        raise ScanplanError(f"{kind} range {lo:g}:{hi:g} MeV has its high end below its low end")
    try:
        if kind == "energy":
            e = (lo, hi)
        elif kind == "mass":
            e = (resonance_energy_mev(lo), resonance_energy_mev(hi))
        else:
            e = (e_beam_for_sqrt_s_mev(lo), e_beam_for_sqrt_s_mev(hi))
    except ValueError as exc:
        raise ScanplanError(f"{kind} range {lo:g}:{hi:g} MeV: {exc}") from None
    spec = line_spec()
    for x in e:
        if not (spec.energy_range_mev[0] <= x <= spec.energy_range_mev[1]):
            raise ScanplanError(
                f"{kind} range {lo:g}:{hi:g} MeV needs beam energies {e[0]:.2f}..{e[1]:.2f} MeV, "
                f"outside what the line delivers ({spec.energy_range_mev[0]:g}.."
                f"{spec.energy_range_mev[1]:g} MeV)"
            )
    return kind, (lo, hi), e
