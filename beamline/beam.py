"""Initial beam at the line start: named, documented, overridable parameters."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from .datafiles import data_names, named_data_file, read_toml, require
from .errors import BeamlineInputError
from .lattice import LINE_DIR


@dataclass(frozen=True)
class BeamParameters:
    """Beam at the line start (TGTTB01). Lengths in m, angles in rad, rms values.

    ``emit_x_m``/``emit_y_m`` are geometric rms emittances at the reference energy;
    ``sigma_delta`` the relative rms momentum spread; ``delta_offset`` the mean relative
    momentum offset of the beam from the line's reference momentum.
    """

    name: str
    version: str
    betx_m: float
    alfx: float
    bety_m: float
    alfy: float
    emit_x_m: float
    emit_y_m: float
    sigma_delta: float
    dx_m: float = 0.0
    dpx: float = 0.0
    delta_offset: float = 0.0
    positrons_per_bunch: float = 0.0
    bunch_length_ns: float = 0.0
    repetition_rate_hz: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        for key in ("betx_m", "bety_m"):
            if not getattr(self, key) > 0:
                raise BeamlineInputError(f"beam {self.name}: {key} must be > 0")
        for key in ("emit_x_m", "emit_y_m", "sigma_delta", "positrons_per_bunch"):
            if getattr(self, key) < 0:
                raise BeamlineInputError(f"beam {self.name}: {key} must be >= 0")

    def replace(self, **changes: float) -> BeamParameters:
        """A copy with some parameters overridden (unknown names raise a clear error)."""
        known = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise BeamlineInputError(
                f"unknown beam parameter(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **changes)

    def twiss_init(self) -> dict[str, float]:
        """Keyword arguments for an open-line twiss from the line start."""
        return {
            "betx": self.betx_m,
            "alfx": self.alfx,
            "bety": self.bety_m,
            "alfy": self.alfy,
            "dx": self.dx_m,
            "dpx": self.dpx,
        }


def available_beams() -> list[str]:
    return data_names(LINE_DIR, "beams")


@functools.cache
def load_beam(name: str) -> BeamParameters:
    """Beam parameters by name from ``lattices/btf_padme/beams/<name>.toml``."""
    path = named_data_file("beam", name, LINE_DIR, "beams")
    raw = read_toml(path)
    w = str(path)
    floats = {
        f.name: float(raw[f.name])
        for f in dataclasses.fields(BeamParameters)
        if f.name in raw and f.type == "float"
    }
    for key in ("betx_m", "alfx", "bety_m", "alfy", "emit_x_m", "emit_y_m", "sigma_delta"):
        require(raw, key, w)
    return BeamParameters(
        name=name,
        version=require(raw, "version", w),
        description=raw.get("description", ""),
        **floats,
    )
