"""MAD-X (cpymad) on the very same deck as the xtrack model: the second opinion.

cpymad is an optional dependency (the ``test`` extra); it is imported only when used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from . import lattice
from .model import BeamLine

if TYPE_CHECKING:  # pragma: no cover
    from cpymad.madx import Madx, Table


def madx_for(bl: BeamLine, overrides: Mapping[str, float] | None = None) -> Madx:
    """A cpymad Madx instance loaded with the deck of ``bl`` and its present knob values;
    ``overrides`` are MAD-X globals set after the knobs (e.g. ``sltb4_gap_mm``)."""
    from cpymad.madx import Madx

    madx = Madx(stdout=False)
    madx.input(lattice.madx_deck(bl.settings.name, bl.energy_mev))
    for key, value in bl.knob_values().items():
        if key.endswith("_current_a"):
            madx.globals[f"i_{key[: -len('_current_a')]}_a"] = value
        elif key.endswith("_polarity"):
            madx.globals[f"pol_{key[: -len('_polarity')]}"] = value
        elif key.endswith(("_gap_mm", "_center_mm")):
            madx.globals[key] = value
    for key, value in (overrides or {}).items():
        madx.globals[key] = value
    madx.input(lattice.madx_beam_command(bl.energy_mev))
    madx.use(sequence=bl.spec.sequence_name)
    return madx


def madx_twiss(madx: Madx, bl: BeamLine) -> Table:
    """MAD-X twiss from the beam's initial Twiss at the line start, with R-matrices."""
    b = bl.beam
    return madx.twiss(
        betx=b.betx_m, alfx=b.alfx, bety=b.bety_m, alfy=b.alfy, dx=b.dx_m, dpx=b.dpx, rmatrix=True
    )


def madx_to_xtrack_similarity(beta0: float) -> np.ndarray:
    """S with R_xtrack = S R_madx S^-1: MAD-X (T, PT) vs xtrack (zeta = beta0 T, pzeta = PT/beta0)."""
    return np.diag([1.0, 1.0, 1.0, 1.0, beta0, 1.0 / beta0])


def madx_r_matrix(tw: Table, index: int) -> np.ndarray:
    """Cumulative 6x6 map from the start to row ``index`` of a MAD-X twiss with rmatrix."""
    return np.array([[tw[f"re{a}{c}"][index] for c in range(1, 7)] for a in range(1, 7)])
