"""Typed models of the data files under ``lattices/`` that ``beamline`` reads.

One model per file kind (load with :func:`beamline.datafiles.load_toml_model`):

* :class:`LineSpec`: ``lattices/btf_padme/line.toml``;
* :class:`SettingsFile`: ``lattices/btf_padme/settings/<name>.toml``;
* :class:`BeamFile`: ``lattices/btf_padme/beams/<name>.toml``;
* the calibration files: :mod:`beamline.calibration_schemas`.

Every model forbids unknown keys and has no defaults for facts: a value the code uses comes
from the data file (an optional field is one whose absence means something, e.g. a
calibration without a hysteresis ``branch``). Cross-references inside a file are checked by
the models, so a loaded file is consistent. Entries of a keyed table (``[magnets.DHSTB01]``)
carry their key as ``name`` (:func:`with_names`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from .datafiles import DataModel
from .errors import BeamlineInputError
from .scattering import ScatteringLayer


def _ordered_range(value: tuple[float, float]) -> tuple[float, float]:
    lo, hi = value
    if not lo < hi:
        raise ValueError(f"range must be [low, high] with low < high, got [{lo:g}, {hi:g}]")
    return value


#: ``[low, high]`` with low < high (currents [A], energies [MeV])
Range = Annotated[tuple[float, float], AfterValidator(_ordered_range)]


def within(value: float, bounds: tuple[float, float], what: str, where: str, unit: str) -> float:
    """``value`` if ``bounds[0] <= value <= bounds[1]``, else a BeamlineInputError
    "<what> <value> <unit> is outside <where> <lo>..<hi> <unit>"."""
    lo, hi = bounds
    if not (lo <= value <= hi):
        raise BeamlineInputError(
            f"{what} {value:g} {unit} is outside {where} {lo:g}..{hi:g} {unit}"
        )
    return value


def with_names(table: Any, **extra: str) -> Any:
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
        return within(energy_mev, self.energy_range_mev, "beam energy", "the line's range", "MeV")

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
