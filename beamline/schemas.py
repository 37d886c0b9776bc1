"""Typed models of the data files under ``lattices/`` that ``beamline`` reads.

One model per file kind (load with :func:`beamline.datafiles.load_toml_model`):

* :class:`LineSpec`: ``lattices/btf_padme/line.toml``;
* :class:`SettingsFile`: ``lattices/btf_padme/settings/<name>.toml``;
* :class:`BeamFile`: ``lattices/btf_padme/beams/<name>.toml``;
* :class:`DipolesFile`, :class:`QuadrupolesFile`, :class:`EnergyScalesFile`:
  ``lattices/calibrations/{dipoles,quadrupoles,energy_scale}.toml``.

Every model forbids unknown keys and has no defaults for facts: a value the code uses comes
from the data file (an optional field is one whose absence means something, e.g. a
calibration without a hysteresis ``branch``). Cross-references inside a file (a magnet naming
a calibration, a mean of calibrations, the default scale) are checked here, so a loaded file
is consistent. Entries of a keyed table (``[magnets.DHSTB01]``) carry their key as ``name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, Field, field_validator, model_validator

from .datafiles import DataModel
from .errors import BeamlineInputError
from .scattering import ScatteringLayer

BRANCHES = ("ascending", "descending")
#: keys of ``branch_calibrations``: the two branches and "unknown" (history not known)
BRANCH_KEYS = (*BRANCHES, "unknown")
FIELD_REFERENCES = ("design", "hall_probe")


def _ordered_range(value: tuple[float, float]) -> tuple[float, float]:
    lo, hi = value
    if not lo < hi:
        raise ValueError(f"range must be [low, high] with low < high, got [{lo:g}, {hi:g}]")
    return value


#: ``[low, high]`` with low < high (currents [A], energies [MeV])
Range = Annotated[tuple[float, float], AfterValidator(_ordered_range)]


def _check_branch(value: str | None) -> str | None:
    if value is not None and value not in BRANCHES:
        raise ValueError(f"branch must be one of {BRANCHES}, got {value!r}")
    return value


def _check_field_reference(value: str) -> str:
    if value not in FIELD_REFERENCES:
        raise ValueError(f"field_reference must be one of {FIELD_REFERENCES}, got {value!r}")
    return value


def _with_names(table: Any, **extra: str) -> Any:
    """Entries of a keyed table with their key as ``name`` (plus ``extra`` keys); a key the
    file must not set itself is reported as unknown by the entry's model."""
    if not isinstance(table, Mapping):
        return table
    out = {}
    for key, entry in table.items():
        if isinstance(entry, Mapping):
            clash = {"name", *extra} & set(entry)
            # leave a clashing key in place: extra="forbid" cannot see it, so refuse here
            if clash:
                raise ValueError(f"{key}: key(s) {sorted(clash)} are set from the table, not here")
            entry = {**entry, "name": key, **extra}
        out[key] = entry
    return out


# ---- line.toml -------------------------------------------------------------------------


class SlitSpec(DataModel):
    """A slit of ``[slits.<element>]``: collimating plane and largest gap [mm] (chamber)."""

    plane: Literal["x", "y"]
    max_gap_mm: float = Field(gt=0)

    def __getitem__(self, key: str) -> Any:
        # TRANSITIONAL: beamline/spread.py (rewritten under issue 14) and its tests still read
        # ``spec.slits[...]["max_gap_mm"]``; remove once they use the attributes.
        return getattr(self, key)


class LineSpec(DataModel):
    """Line-level parameters from ``lattices/btf_padme/line.toml``.

    ``sequence_file`` is resolved to the file below ``lattices/btf_padme`` when loaded;
    ``slits`` is keyed by the lower-case element name, ``key_points`` maps element names to
    display names.
    """

    schema_version: int
    version: str
    sequence_file: Path
    sequence_name: str
    particle: Literal["positron"]
    default_settings: str
    energy_range_mev: Range
    key_points: dict[str, str]
    slits: dict[str, SlitSpec] = Field(min_length=1)

    @field_validator("slits")
    @classmethod
    def _lower_case(cls, value: dict[str, SlitSpec]) -> dict[str, SlitSpec]:
        bad = [k for k in value if k != k.lower()]
        if bad:
            raise ValueError(f"slit element names must be lower case, got {bad}")
        return value

    def check_energy(self, energy_mev: float) -> float:
        """``energy_mev`` [MeV] if inside the line's range, else a BeamlineInputError."""
        lo, hi = self.energy_range_mev
        if not (lo <= energy_mev <= hi):
            raise BeamlineInputError(
                f"beam energy {energy_mev:g} MeV is outside the line's range {lo:g}..{hi:g} MeV"
            )
        return energy_mev

    def slit(self, name: str) -> SlitSpec:
        """Spec of slit ``name`` (any case)."""
        try:
            return self.slits[name.lower()]
        except KeyError:
            raise BeamlineInputError(
                f"unknown slit '{name}'; slits: {', '.join(k.upper() for k in self.slits)}"
            ) from None


# ---- settings/<name>.toml ----------------------------------------------------------------


class SettingsFile(DataModel):
    """Metadata of a settings entry (the .str strength file beside it holds the values).

    ``reference_energy_mev`` [MeV] is the total beam energy the .str dipole currents are set
    for; ``beam`` names a file under ``beams/``; the calibrations name entries of
    ``lattices/calibrations``.
    """

    schema_version: int
    version: str
    description: str
    strength_file: Path
    beam: str
    #: beam file of the spread engine's default source (issue 14; default: ``beam``)
    spread_beam: str | None = None
    reference_energy_mev: float = Field(gt=0)
    dipole_calibration: str
    quadrupole_calibration: str
    source: str


class Settings(SettingsFile):
    """A named settings entry; ``strength_file`` resolved below ``lattices/``."""

    name: str


# ---- beams/<name>.toml -------------------------------------------------------------------


class BeamFields(DataModel):
    """Beam at the line start (TGTTB01). Lengths in m, angles in rad, rms values.

    ``emit_x_m``/``emit_y_m`` are geometric rms emittances at the reference energy;
    ``sigma_delta`` the relative rms momentum spread; ``delta_offset`` the mean relative
    momentum offset of the beam from the line's reference momentum; ``positrons_per_bunch``
    before the selection; ``bunch_length_ns`` [ns]; ``repetition_rate_hz`` [Hz].
    """

    version: str
    description: str
    betx_m: float = Field(gt=0)
    alfx: float
    bety_m: float = Field(gt=0)
    alfy: float
    dx_m: float
    dpx: float
    emit_x_m: float = Field(ge=0)
    emit_y_m: float = Field(ge=0)
    sigma_delta: float = Field(ge=0)
    delta_offset: float
    positrons_per_bunch: float = Field(ge=0)
    bunch_length_ns: float = Field(ge=0)
    repetition_rate_hz: float = Field(ge=0)
    #: element where the beam is defined ("" = the line start, TGTTB01); issue 14: PADME's
    #: simulation injects its beam after the energy selection
    injection_element: str = ""
    #: "before_selection" (a LINAC beam the slits select from) or "after_selection"
    definition: Literal["before_selection", "after_selection"] = "before_selection"


class ScatteringTable(DataModel):
    """``[scattering]`` of a beam file: default switch and the thin layers in the beam."""

    enabled: bool
    layers: tuple[ScatteringLayer, ...]


class BeamFile(BeamFields):
    """A beam file: the beam parameters plus its particle and scattering layers."""

    schema_version: int
    particle: Literal["positron"]
    scattering: ScatteringTable


# ---- calibrations ----------------------------------------------------------------------


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
        lo, hi = self.current_limits_a
        if not (lo <= current_a <= hi):
            raise BeamlineInputError(
                f"{self.name} current {current_a:g} A is outside the supply range {lo:g}..{hi:g} A"
            )
        return current_a


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


class DipolesFile(DataModel):
    """``lattices/calibrations/dipoles.toml``: bending power [MeV/c per G], magnets,
    calibrations (linear or means of linear ones), hysteresis and readback parameters."""

    schema_version: int
    version: str
    bending_power_mev_per_g: float = Field(gt=0)
    magnets: dict[str, DipoleSpec] = Field(min_length=1)
    calibrations: dict[str, Annotated[DipoleLinear | DipoleMean, Field(discriminator="kind")]]
    hysteresis: HysteresisParameters
    readback: ReadbackResolution

    @field_validator("magnets", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return _with_names(value)

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


class QuadrupolesFile(DataModel):
    """``lattices/calibrations/quadrupoles.toml``: magnets and gradient calibrations."""

    schema_version: int
    version: str
    magnets: dict[str, MagnetSpec] = Field(min_length=1)
    calibrations: dict[str, QuadrupoleLinear]

    @field_validator("magnets", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return _with_names(value)

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
            data = {**data, "scales": _with_names(data.get("scales"), version=data["version"])}
        return data

    @model_validator(mode="after")
    def _default_defined(self) -> EnergyScalesFile:
        if self.default_scale not in self.scales:
            raise ValueError(f"default_scale '{self.default_scale}' is not defined")
        return self
