"""Typed models of the calibration files ``lattices/calibrations/{dipoles,quadrupoles,
energy_scale}.toml`` (see :mod:`beamline.schemas` for the conventions; read by
:mod:`beamline.calibration`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, Field, field_validator, model_validator

from .datafiles import DataModel
from .schemas import Range, with_names, within

BRANCHES = ("ascending", "descending")
#: keys of ``branch_calibrations``: the two branches and "unknown" (history not known)
BRANCH_KEYS = (*BRANCHES, "unknown")
FIELD_REFERENCES = ("design", "hall_probe")


def _check_branch(value: str | None) -> str | None:
    if value is not None and value not in BRANCHES:
        raise ValueError(f"branch must be one of {BRANCHES}, got {value!r}")
    return value


def _check_field_reference(value: str) -> str:
    if value not in FIELD_REFERENCES:
        raise ValueError(f"field_reference must be one of {FIELD_REFERENCES}, got {value!r}")
    return value


class MagnetSpec(DataModel):
    """A magnet of ``[magnets.<NAME>]``: its names, supply limits and default calibration.

    Names (one spelling map): ``name`` is the model/BTF magnet name (``DHSTB01``, ``Q1``),
    ``supply_element`` the control-system element of its supply (``DHSTB001``, memcached
    keys), :attr:`lattice_element` the element in the MAD-X sequence (``dhstb01``) and
    :attr:`knob` the current variable of the deck (``i_dhstb01_a``).
    """

    name: str
    supply_element: str = Field(pattern=r"^[A-Z0-9_]+$")
    current_limits_a: Range
    default_calibration: str

    @property
    def lattice_element(self) -> str:
        """Element name in the sequence file (lower case of ``name``, as MAD-X spells it)."""
        return self.name.lower()

    @property
    def knob(self) -> str:
        """Deck variable holding the current [A]: ``i_<lattice element>_a``."""
        return f"i_{self.lattice_element}_a"

    def check_current(self, current_a: float) -> float:
        """Return ``current_a`` [A] if the supply can deliver it, else raise a clear error."""
        return within(
            current_a, self.current_limits_a, f"{self.name} current", "the supply range", "A"
        )


class DipoleSpec(MagnetSpec):
    """A dipole: ``default_relative_offset`` is the relative momentum offset of its setting
    w.r.t. the beam (DHSTB02 steering); ``branch_calibrations`` maps "ascending" /
    "descending" / "unknown" to its Hall-probe calibrations (absent: no Hall-probe data)."""

    default_relative_offset: float
    branch_calibrations: dict[str, str] | None = None

    @field_validator("branch_calibrations")
    @classmethod
    def _branch_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        bad = sorted(set(value or {}) - set(BRANCH_KEYS))
        if bad:
            raise ValueError(f"unknown branch(es) {bad} in branch_calibrations")
        return value

    def branch_calibration_name(self, key: str) -> str | None:
        """Calibration name for branch key ``key`` (None: none for this magnet)."""
        return (self.branch_calibrations or {}).get(key)


class _Curve(DataModel):
    description: str
    source: str | None = None
    field_reference: Annotated[str, AfterValidator(_check_field_reference)]


def _positive_slope(value: float) -> float:
    if not value > 0:
        raise ValueError(f"slope must be > 0, got {value!r}")
    return value


Slope = Annotated[float, AfterValidator(_positive_slope)]
Branch = Annotated[str | None, AfterValidator(_check_branch)]


class DipoleLinear(_Curve):
    """``field_g = offset_g + slope_g_per_a * current_a``, trusted on ``valid_current_a``;
    ``field_rms_g`` [G] scatter of single measurements; ``branch`` absent: not determined."""

    kind: Literal["linear"]
    offset_g: float
    slope_g_per_a: Slope
    valid_current_a: Range
    #: field range [G] of the data the curve was fitted on (Hall-probe curves; issue 14)
    valid_field_g: Range | None = None
    field_rms_g: float = Field(ge=0)
    branch: Branch = None


class DipoleMean(_Curve):
    """Offset and slope the means of those of ``members`` (linear), range their intersection."""

    kind: Literal["mean"]
    members: tuple[str, ...] = Field(min_length=1)
    field_rms_g: float = Field(ge=0)
    branch: Branch = None


class QuadrupoleLinear(_Curve):
    """``gradient_tpm = offset_tpm + slope_tpm_per_a * current_a`` (magnitude [T/m])."""

    kind: Literal["linear"]
    offset_tpm: float
    slope_tpm_per_a: Slope
    valid_current_a: Range
    gradient_rms_tpm: float = Field(ge=0)


class HysteresisParameters(DataModel):
    """``[hysteresis]`` of dipoles.toml. Fields [G] / [A]: ``pass_to_pass_g`` field difference
    between passes at equal current, ``sigma_known_branch_g`` / ``sigma_unknown_branch_g``
    field sigma for a set point approached from a known / unknown side, ``preferred_branch``
    the side to approach from, ``overshoot_a`` the overshoot before approaching,
    ``standardisation_cycles`` cycles to the supply maximum before a scan, ``min_step_a``
    the smallest change counted as a move."""

    pass_to_pass_g: float = Field(ge=0)
    sigma_known_branch_g: float = Field(ge=0)
    sigma_unknown_branch_g: float = Field(ge=0)
    preferred_branch: str
    overshoot_a: float = Field(ge=0)
    standardisation_cycles: int = Field(ge=0)
    min_step_a: float = Field(ge=0)

    @field_validator("preferred_branch")
    @classmethod
    def _preferred(cls, value: str) -> str:
        if value not in BRANCHES:
            raise ValueError(f"preferred_branch must be one of {BRANCHES}, got {value!r}")
        return value


class ReadbackResolution(DataModel):
    """Readback quantisation: PSU current [A] and Hall probe [G] (sigma = resolution/sqrt 12)."""

    current_resolution_a: float = Field(ge=0)
    hall_resolution_g: float = Field(ge=0)

    @property
    def sigma_current_a(self) -> float:
        return self.current_resolution_a / 12.0**0.5

    @property
    def sigma_field_g(self) -> float:
        return self.hall_resolution_g / 12.0**0.5


def _check_calibration_names(
    magnets: Mapping[str, MagnetSpec], calibrations: Mapping[str, object]
) -> None:
    for spec in magnets.values():
        names = [spec.default_calibration]
        if isinstance(spec, DipoleSpec):
            names += list((spec.branch_calibrations or {}).values())
        for name in names:
            if name not in calibrations:
                raise ValueError(f"magnet {spec.name} names unknown calibration {name}")


class _MagnetFile(DataModel):
    """A calibration file of one magnet family: ``[magnets.<NAME>]`` entries named by key."""

    schema_version: int
    version: str

    @field_validator("magnets", mode="before", check_fields=False)
    @classmethod
    def _names(cls, value: Any) -> Any:
        return with_names(value)


class DipolesFile(_MagnetFile):
    """``lattices/calibrations/dipoles.toml``: bending power [MeV/c per G], magnets,
    calibrations (linear or means of linear ones), hysteresis and readback parameters."""

    bending_power_mev_per_g: float = Field(gt=0)
    magnets: dict[str, DipoleSpec] = Field(min_length=1)
    calibrations: dict[str, Annotated[DipoleLinear | DipoleMean, Field(discriminator="kind")]]
    hysteresis: HysteresisParameters
    readback: ReadbackResolution

    @model_validator(mode="after")
    def _cross_references(self) -> DipolesFile:
        for name, c in self.calibrations.items():
            if isinstance(c, DipoleMean):
                members = [self.calibrations.get(m) for m in c.members]
                linear = [m for m in members if isinstance(m, DipoleLinear)]
                if len(linear) != len(members):
                    bad = [m for m, v in zip(c.members, members, strict=True) if v not in linear]
                    raise ValueError(
                        f"calibrations.{name}: members must be linear calibrations, not {bad}"
                    )
                lo = max(m.valid_current_a[0] for m in linear)
                hi = min(m.valid_current_a[1] for m in linear)
                if not lo < hi:
                    raise ValueError(
                        f"calibrations.{name}: the members' valid ranges do not overlap"
                    )
        _check_calibration_names(self.magnets, self.calibrations)
        return self


class QuadrupolesFile(_MagnetFile):
    """``lattices/calibrations/quadrupoles.toml``: magnets and gradient calibrations."""

    magnets: dict[str, MagnetSpec] = Field(min_length=1)
    calibrations: dict[str, QuadrupoleLinear]

    @model_validator(mode="after")
    def _cross_references(self) -> QuadrupolesFile:
        _check_calibration_names(self.magnets, self.calibrations)
        return self


class HasFieldReference(Protocol):
    """Anything with a ``field_reference`` ("design" / "hall_probe"), e.g. a calibration."""

    @property
    def field_reference(self) -> str: ...


class EnergyScale(DataModel):
    """Absolute energy scale ``[scales.<name>]``: ``E = sqrt(p_magnet^2 + m_e^2) + offset_mev``.

    ``sigma_mev`` [MeV] is the uncertainty of the absolute scale, ``fit_rms_mev`` [MeV] the
    rms of the points it was fitted on, ``field_reference`` "hall_probe" (defined on the
    Hall field) or "any"; ``version`` that of the file.
    """

    name: str
    version: str
    description: str
    source: str | None = None
    offset_mev: float
    sigma_mev: float = Field(ge=0)
    fit_rms_mev: float = Field(ge=0)
    field_reference: str

    @field_validator("field_reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        if value != "any":
            try:
                _check_field_reference(value)
            except ValueError:
                raise ValueError(
                    f"field_reference must be 'any' or one of {FIELD_REFERENCES}, got {value!r}"
                ) from None
        return value

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def accepts(self, calibration: HasFieldReference) -> bool:
        """Whether the scale may be applied to fields from ``calibration``."""
        return self.field_reference in ("any", calibration.field_reference)


class EnergyScalesFile(DataModel):
    """``lattices/calibrations/energy_scale.toml``: the scales and the default one."""

    schema_version: int
    version: str
    default_scale: str
    scales: dict[str, EnergyScale] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("version"), str):
            data = {**data, "scales": with_names(data.get("scales"), version=data["version"])}
        return data

    @model_validator(mode="after")
    def _default_defined(self) -> EnergyScalesFile:
        if self.default_scale not in self.scales:
            raise ValueError(f"default_scale '{self.default_scale}' is not defined")
        return self
