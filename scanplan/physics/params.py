"""Parameters of the X17 signal/background model and of the scan planner (data, not code).

``lattices/physics/padme_x17_run3.toml`` holds the signal model (Y, w_L, BES, efficiency and
background tables, systematics); ``lattices/physics/scan_defaults.toml`` the planner
defaults (spacing rule, control points, beam-time conversion, sensitivity and optimiser
settings). Each file is validated by the typed model below (unknown or misspelt keys are an
error naming the file and the key); every default lives in its data file, not here. Both
files are versioned; the version strings go into every plan's inputs.
"""

from __future__ import annotations

import functools
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from beamline.datafiles import (
    DataModel,
    data_names,
    load_toml_model,
    read_toml,
    validate_data,
    validation_message,
)
from beamline.paths import lattices_dir

from ..errors import ScanplanError

PHYSICS_DIR = "physics"
DEFAULT_MODEL = "padme_x17_run3"
SCAN_DEFAULTS = "scan_defaults"

LorentzConvention = Literal["hwhm", "fwhm"]
Direction = Literal["descending", "ascending"]
WidthReference = Literal["min", "centre"]
ControlSideName = Literal["below", "above", "none"]
ControlPosition = Literal["after_first_pass", "start", "end"]
QuadScaling = Literal["momentum", "fixed"]
OptimiseObjective = Literal["mean", "max"]


def physics_file(name: str) -> Path:
    """``lattices/physics/<name>.toml``; an unknown name lists the files available."""
    path = lattices_dir() / PHYSICS_DIR / f"{name}.toml"
    if not path.is_file():
        known = data_names(PHYSICS_DIR)
        raise ScanplanError(f"unknown physics data '{name}'; available: {', '.join(known)}")
    return path


# --- the signal/background model --------------------------------------------------------


class Signal(DataModel):
    """``[signal]``: Y [MeV], w_L [MeV of beam energy] and its convention, default BES
    (relative Gaussian beam-energy spread), reference coupling g."""

    yield_mev: float = Field(gt=0, allow_inf_nan=False)
    yield_sigma_mev: float = Field(0.0, ge=0)
    lorentz_width_mev: float = Field(ge=0, allow_inf_nan=False)
    lorentz_width_sigma_mev: float = Field(0.0, ge=0)
    lorentz_width_convention: LorentzConvention
    default_bes: float = Field(ge=0, lt=0.1, allow_inf_nan=False)
    bes_sigma: float = Field(0.0, ge=0)
    reference_coupling: float = Field(gt=0, allow_inf_nan=False)


class Selection(DataModel):
    """``[selection]``: background per POT and signal efficiency at beam-energy nodes [MeV]."""

    e_beam_nodes_mev: tuple[float, ...]
    background_per_pot: tuple[float, ...]
    signal_efficiency: tuple[float, ...]

    @model_validator(mode="after")
    def _tables(self) -> Selection:
        n = len(self.e_beam_nodes_mev)
        if n < 2 or len(self.background_per_pot) != n or len(self.signal_efficiency) != n:
            raise ValueError("node, background and efficiency tables need equal lengths >= 2")
        if any(b <= a for a, b in pairwise(self.e_beam_nodes_mev)):
            raise ValueError("e_beam_nodes_mev must increase")
        if min(self.background_per_pot) < 0 or not all(0 <= e <= 1 for e in self.signal_efficiency):
            raise ValueError("background must be >= 0 and efficiencies in [0, 1]")
        return self


class Systematics(DataModel):
    """``[systematics]``: per-point relative POT and background uncertainties, POT scale."""

    pot_rel: float = Field(ge=0)
    background_rel: float = Field(ge=0)
    pot_scale_rel: float = Field(0.0, ge=0)


class Statistics(DataModel):
    """``[statistics]``: confidence level of the limits, coupling and mass grids [MeV]."""

    cl: float = Field(gt=0.5, lt=1)
    coupling_grid: tuple[float, float]
    mass_grid_mev: tuple[float, float]


class Target(DataModel):
    """``[target]``: active-target thickness [um] and electron density [1/cm^3]."""

    thickness_um: float = Field(gt=0)
    electron_density_per_cm3: float = Field(gt=0)


class PhysicsModel(DataModel):
    """Signal/background model of the final analysis (facts 5): the file
    ``lattices/physics/<name>.toml`` with its sections, ``name`` its stem."""

    name: str
    schema_version: int = 1
    version: str
    description: str = ""
    signal: Signal
    selection: Selection
    systematics: Systematics
    statistics: Statistics
    target: Target

    @property
    def lorentz_gamma_mev(self) -> float:
        """HWHM [MeV] of the Lorentzian (scipy ``voigt_profile`` gamma)."""
        if self.signal.lorentz_width_convention == "hwhm":
            return self.signal.lorentz_width_mev
        return 0.5 * self.signal.lorentz_width_mev

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def with_overrides(self, **changes: Any) -> PhysicsModel:
        """A copy with some parameters replaced by their key (e.g. ``lorentz_width_mev``,
        looked up in the sections), validated by the same model as the data file."""
        data = self.model_dump()
        sections = [k for k, v in data.items() if isinstance(v, dict)]
        for key, value in changes.items():
            home = [s for s in sections if key in data[s]]
            if not home:
                raise ScanplanError(f"physics model {self.name}: no parameter '{key}'")
            data[home[0]][key] = value
        try:
            return PhysicsModel.model_validate(data)
        except ValidationError as exc:
            raise ScanplanError(validation_message(f"physics model {self.name}", exc)) from None


@functools.cache
def load_physics(name: str = DEFAULT_MODEL) -> PhysicsModel:
    """The signal/background model ``lattices/physics/<name>.toml``."""
    path = physics_file(name)
    raw = read_toml(path, ScanplanError)
    if "name" in raw:
        raise ScanplanError(f"{path}: unknown key 'name' (the model's name is its file name)")
    return validate_data({**raw, "name": name}, PhysicsModel, str(path), ScanplanError)


# --- the planner defaults ---------------------------------------------------------------


class Spacing(DataModel):
    """``[spacing]``: the spacing rule, passes and their direction."""

    step_fraction: float = Field(gt=0, allow_inf_nan=False)
    width_reference: WidthReference
    passes: int = Field(ge=1)
    direction: Direction


class ControlSide(DataModel):
    """Default control block on one side: ``count`` points, the nearest ``offset_mev`` [MeV]
    from the range edge, ``step_mev`` [MeV] apart."""

    count: int = Field(ge=0)
    offset_mev: float = Field(gt=0)
    step_mev: float = Field(gt=0)


class ControlDefaults(DataModel):
    """``[control]``: the side, blocks below/above the range, where the block goes and how
    far it must stay from the scanned line shapes [line FWHM]."""

    side: ControlSideName
    below: ControlSide
    above: ControlSide
    position: ControlPosition
    min_distance_fwhm: float = Field(ge=0)


class BeamTime(DataModel):
    """``[beam_time]``: POT-to-hours conversion and the default POT per point."""

    positrons_per_bunch: float = Field(gt=0)
    repetition_rate_hz: float = Field(gt=0)
    uptime_fraction: float = Field(gt=0, le=1)
    overhead_hours_per_point: float = Field(ge=0)
    pot_per_point: float = Field(gt=0)


class SpreadEngineDefaults(DataModel):
    """``[spread_engine]``: tracking settings when the BES comes from the spread engine."""

    particles: int = Field(ge=1000)
    seed: int = 0


class CurrentsDefaults(DataModel):
    """``[currents]``: how quadrupole currents follow the beam energy."""

    quad_scaling: QuadScaling


class ValidationDefaults(DataModel):
    """``[validation]``: two points closer than ``duplicate_tolerance_mev`` [MeV] are one."""

    duplicate_tolerance_mev: float = Field(gt=0)


class SensitivityDefaults(DataModel):
    """``[sensitivity]``: default mass-grid points and toy-MC grid of ``scanplan sensitivity``."""

    masses: int = Field(ge=2)
    toy_masses: int = Field(ge=1)
    toy_couplings: int = Field(ge=2)


class OptimiseDefaults(DataModel):
    """``[optimise]``: objective, minimum beam hours per point [h] and window masses."""

    objective: OptimiseObjective
    min_hours: float = Field(ge=0)
    window_masses: int = Field(ge=2)


class ScanDefaults(DataModel):
    """Planner defaults ``lattices/physics/scan_defaults.toml`` (see that file)."""

    schema_version: int = 1
    version: str
    spacing: Spacing
    control: ControlDefaults
    beam_time: BeamTime
    spread_engine: SpreadEngineDefaults
    currents: CurrentsDefaults
    validation: ValidationDefaults
    sensitivity: SensitivityDefaults
    optimise: OptimiseDefaults

    def control_side(self, side: str) -> ControlSide:
        """The default block ``below`` or ``above`` the range."""
        if side not in ("below", "above"):
            raise ScanplanError(f"control must be 'below', 'above' or 'none', got {side!r}")
        return self.control.below if side == "below" else self.control.above


@functools.cache
def load_scan_defaults(name: str = SCAN_DEFAULTS) -> ScanDefaults:
    """Planner defaults ``lattices/physics/<name>.toml``."""
    return load_toml_model(physics_file(name), ScanDefaults, ScanplanError)
