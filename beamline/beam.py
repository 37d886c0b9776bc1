"""Initial beam at the line start: named, documented, overridable parameters."""

from __future__ import annotations

import functools

from .datafiles import data_names, load_toml_model, named_data_file, replace_fields
from .errors import BeamlineInputError
from .lattice import LINE_DIR
from .schemas import BeamFields, BeamFile


class BeamParameters(BeamFields):
    """Beam at the line start (TGTTB01), as in the beam file ``name`` (fields: see
    :class:`beamline.schemas.BeamFields`; lengths in m, angles in rad, rms values)."""

    name: str

    def replace(self, **changes: float) -> BeamParameters:
        """A copy with some parameters overridden (unknown names raise a clear error)."""
        known = set(BeamFields.model_fields)
        bad = sorted(set(changes) - known)
        if bad:
            raise BeamlineInputError(
                f"unknown beam parameter(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"
            )
        return replace_fields(self, f"beam {self.name}", changes)

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
def load_beam_file(name: str) -> BeamFile:
    """The beam file ``lattices/btf_padme/beams/<name>.toml``, validated."""
    return load_toml_model(named_data_file("beam", name, LINE_DIR, "beams"), BeamFile)


def load_beam(name: str) -> BeamParameters:
    """Beam parameters by name from ``lattices/btf_padme/beams/<name>.toml``."""
    entry = load_beam_file(name)
    return BeamParameters(name=name, **entry.model_dump(include=set(BeamFields.model_fields)))
