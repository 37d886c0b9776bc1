"""Tolerances of the step checker and the simulator's model wiring.

The numbers live in ``lattices/checks/tolerances.toml`` only: :class:`CheckTolerances`
validates that file table by table (units in the key names), and carries no defaults of its
own, so a value can never be written twice. An unknown or misspelt key, a non-number, a
non-finite or non-positive tolerance, or a warn level above its fail level is a
:class:`scanplan.errors.ScanplanError` naming the file and the key.

``CheckTolerances.load(path)`` reads the shipped file and overlays the keys of ``path`` (a
TOML file with only the keys to change); :meth:`CheckTolerances.updated` does the same from a
mapping (tests, notebooks).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BeforeValidator, model_validator

from beamline.datafiles import DataModel, load_toml_model, read_toml, validate_data

from ..errors import ScanplanError


def _number(value: object) -> object:
    """TOML booleans are not numbers here (pydantic would take ``true`` as 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be finite")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError("must be > 0")
    return value


#: a finite number (offsets, which may be negative or zero)
Finite = Annotated[float, BeforeValidator(_number), AfterValidator(_finite)]
#: a finite number > 0 (tolerances, times, rates)
Positive = Annotated[
    float, BeforeValidator(_number), AfterValidator(_finite), AfterValidator(_positive)
]
#: a count > 0
Count = Annotated[int, BeforeValidator(_number), AfterValidator(_positive)]


def _ordered(model: DataModel, *pairs: tuple[str, str]) -> None:
    for lo, hi in pairs:
        if getattr(model, lo) > getattr(model, hi):
            raise ValueError(f"{lo} must not exceed {hi}")


class SupplyLimits(DataModel):
    """Set point vs plan and readback vs set point, warn and fail [A] (one supply family)."""

    setpoint_warn_a: Positive
    setpoint_fail_a: Positive
    readback_warn_a: Positive
    readback_fail_a: Positive

    @model_validator(mode="after")
    def _levels(self) -> Self:
        _ordered(
            self, ("setpoint_warn_a", "setpoint_fail_a"), ("readback_warn_a", "readback_fail_a")
        )
        return self

    @property
    def limits_a(self) -> tuple[float, float, float, float]:
        """(set-point warn, set-point fail, readback warn, readback fail) [A]."""
        return (
            self.setpoint_warn_a,
            self.setpoint_fail_a,
            self.readback_warn_a,
            self.readback_fail_a,
        )


class PowerSupplyTolerances(SupplyLimits):
    """``[power_supply]``: the dipoles' set point vs plan, readback vs set point [A], and the
    record age of every supply [s]."""

    max_age_s: Positive
    first_read_wait_s: Positive


class QuadrupoleTolerances(SupplyLimits):
    """``[quadrupoles]``: Q1-Q4 set point vs plan, readback vs set point [A]."""


class EnergyTolerances(DataModel):
    """``[energy]``: beam energy from the DHSTB01 readback vs the plan [MeV]."""

    warn_mev: Positive
    fail_mev: Positive

    @model_validator(mode="after")
    def _levels(self) -> Self:
        _ordered(self, ("warn_mev", "fail_mev"))
        return self


class SpotTolerances(DataModel):
    """``[spot]``: TimePix centroid and size vs the model (mm, A, counts, fractions)."""

    alignment_mm: Positive
    current_sigma_a: Positive
    fail_factor: Positive
    size_ratio_warn: Positive
    min_hits: Count
    n_frames: Count
    frames_timeout_s: Positive
    dropped_fraction_warn: Positive
    reference_x_mm: Finite
    reference_y_mm: Finite


class SettleTolerances(DataModel):
    """``[settle]``: polling of ``--watch`` (interval [s], polls in a row, timeout [s], how
    long readbacks steady outside tolerance, or a steady set point off the plan, end the
    watch early [s])."""

    poll_interval_s: Positive
    stable_polls: Count
    timeout_s: Positive
    steady_outside_s: Positive
    wrong_setpoint_wait_s: Positive


class LinearModelTolerances(DataModel):
    """``[linear_model]``: where a check may use the first-order spot model [A]."""

    dipole_range_a: Positive
    quadrupole_range_a: Positive
    dipole_step_a: Positive
    quadrupole_step_a: Positive


class SimulatorTolerances(DataModel):
    """``[simulator]``: model wiring of ``scanplan sim``."""

    cache_resolution_a: Positive
    cache_size: Count
    min_dipole_current_a: Positive
    frame_rate_hz: Positive
    hits_per_frame: Positive


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with the keys of ``over``; tables merge key by key (unknown keys are kept, for
    the model to reject by name)."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


class CheckTolerances(DataModel):
    """The whole of ``lattices/checks/tolerances.toml`` (see that file for each value)."""

    version: str
    power_supply: PowerSupplyTolerances
    quadrupoles: QuadrupoleTolerances
    energy: EnergyTolerances
    spot: SpotTolerances
    settle: SettleTolerances
    linear_model: LinearModelTolerances
    simulator: SimulatorTolerances

    @staticmethod
    def default_path() -> Path:
        """``lattices/checks/tolerances.toml``."""
        from beamline.paths import data_file

        return data_file("checks", "tolerances.toml")

    @classmethod
    def shipped(cls) -> CheckTolerances:
        """The shipped file, validated (read once per process)."""
        return _shipped()

    @classmethod
    def load(cls, path: str | Path | None = None) -> CheckTolerances:
        """The shipped tolerances, overlaid with the keys of the TOML file ``path`` (if given).

        Unknown tables/keys, non-numbers and bad values raise ScanplanError naming the file
        and the key.
        """
        tol = cls.shipped()
        if path is None:
            return tol
        path = Path(path)
        if not path.is_file():
            raise ScanplanError(f"tolerances file {path} not found")
        return tol.updated(read_toml(path, ScanplanError), where=str(path))

    def updated(self, changes: Mapping[str, Any], *, where: str = "tolerance overrides") -> Self:
        """A copy with ``changes`` (``{"spot": {"n_frames": 2}}``) validated like the file."""
        merged = _merge(self.model_dump(), changes)
        return validate_data(merged, type(self), where, ScanplanError)


@functools.cache
def _shipped() -> CheckTolerances:
    return load_toml_model(CheckTolerances.default_path(), CheckTolerances, ScanplanError)
