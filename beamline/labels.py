"""The ``DHSTB02Energy`` label of PADME's run-level offline table (facts 4b, 6).

The label is the DHSTB02 setting on its own scale, not the beam energy: 0.3-0.9 % below
``DHSTB01Energy`` in 2022, 5-6 % above in 2025. Conventions are versioned data in
``lattices/calibrations/dhstb02_labels.toml``: ``label_mev = scale * p`` with ``p`` [MeV/c]
the momentum that a named dipole calibration bends onto the design arc at the DHSTB02 set
current.
"""

from __future__ import annotations

import functools

from pydantic import Field

from . import calibration
from .datafiles import DataModel, load_toml_model
from .errors import BeamlineInputError, LatticeDataError
from .paths import data_file


class LabelConvention(DataModel):
    """One label convention: ``label_mev = scale * p(calibration, current_a)``."""

    description: str
    source: str
    calibration: str = Field(description="dipole calibration name in dipoles.toml")
    scale: float = Field(gt=0.5, lt=2.0, description="dimensionless factor on the momentum")


class Dhstb02Labels(DataModel):
    """The data file: versioned conventions and the default per offline-table format."""

    schema_version: int = Field(ge=1, le=1)
    version: str
    default_by_table_format: dict[str, str]
    conventions: dict[str, LabelConvention]


@functools.cache
def dhstb02_labels() -> Dhstb02Labels:
    """Validated contents of ``lattices/calibrations/dhstb02_labels.toml``."""
    path = data_file("calibrations", "dhstb02_labels.toml")
    data = load_toml_model(path, Dhstb02Labels)
    for fmt, name in data.default_by_table_format.items():
        if name not in data.conventions:
            raise LatticeDataError(f"{path}: table format {fmt} names unknown convention {name}")
    known = calibration.dipole_calibrations().calibrations
    for name, conv in data.conventions.items():
        if conv.calibration not in known:
            raise LatticeDataError(
                f"{path}: convention {name} names unknown dipole calibration {conv.calibration}"
            )
    return data


def label_convention(name: str) -> LabelConvention:
    """The convention ``name`` (error listing the known ones)."""
    conventions = dhstb02_labels().conventions
    try:
        return conventions[name]
    except KeyError:
        raise BeamlineInputError(
            f"unknown DHSTB02 label convention {name!r}; known: {', '.join(sorted(conventions))}"
        ) from None


def default_convention(table_format: str) -> str:
    """Name of the default convention for an offline-table format ("2022", "2025")."""
    defaults = dhstb02_labels().default_by_table_format
    try:
        return defaults[str(table_format)]
    except KeyError:
        raise BeamlineInputError(
            f"no DHSTB02 label convention for table format {table_format!r}; "
            f"known: {', '.join(sorted(defaults))}"
        ) from None


def dhstb02_label_mev(current_a: float, convention: str) -> float:
    """``DHSTB02Energy`` label [MeV] of a DHSTB02 set current [A] under ``convention``."""
    conv = label_convention(convention)
    p_mev = calibration.dipole_momentum_mev("DHSTB02", current_a, conv.calibration)
    return conv.scale * p_mev


def versioned_name(convention: str) -> str:
    """``name@version`` of a convention, for provenance."""
    label_convention(convention)
    return f"{convention}@{dhstb02_labels().version}"
