"""The model's twiss table as a MAD-X TFS file (written with tfs-pandas).

TFS is how MAD-X users exchange optics. Columns follow MAD-X's twiss table: ``NAME KEYWORD S
BETX ALFX MUX BETY ALFY MUY DX DPX DY DPY X PX Y PY``, ``S`` from the line start [m], phase
advances in units of 2 pi. Dispersion is given against MAD-X's ``PT`` (``DX = D_delta /
beta0``), the convention of a MAD-X twiss, so the file compares directly with one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text

#: MAD-X column -> column of :func:`beamline.optics.twiss`
_COLUMNS = {
    "BETX": "betx_m",
    "ALFX": "alfx",
    "MUX": "mux",
    "BETY": "bety_m",
    "ALFY": "alfy",
    "MUY": "muy",
    "DX": "dx_m",
    "DPX": "dpx",
    "DY": "dy_m",
    "DPY": "dpy",
    "X": "x_m",
    "PX": "px",
    "Y": "y_m",
    "PY": "py",
}
_DISPERSION = ("DX", "DPX", "DY", "DPY")


def twiss_tfs_frame(bl: Any) -> Any:
    """``tfs.TfsDataFrame`` of the twiss of ``bl`` (a :class:`beamline.model.BeamLine`)."""
    import tfs

    from beamline import optics
    from beamline.constants import ELECTRON_MASS_MEV, momentum_mev_from_energy

    df = optics.twiss(bl)
    p_mev = momentum_mev_from_energy(bl.energy_mev)
    beta0 = p_mev / bl.energy_mev
    out = tfs.TfsDataFrame(
        {
            "NAME": df["name"].str.upper(),
            "KEYWORD": df["element_type"].str.upper(),
            "S": df["s_line_m"],
        }
    )
    for madx, ours in _COLUMNS.items():
        out[madx] = df[ours] / beta0 if madx in _DISPERSION else df[ours]
    out.headers = {
        "TYPE": "TWISS",
        "TITLE": f"BTF -> PADME, settings {bl.settings.name}",
        "ORIGIN": "btf-scanplan (xtrack)",
        "SEQUENCE": bl.spec.sequence_name.upper(),
        "SETTINGS": f"{bl.settings.name} ({bl.settings.version})",
        "PARTICLE": "POSITRON",
        "MASS": ELECTRON_MASS_MEV * 1e-3,
        "ENERGY": bl.energy_mev * 1e-3,
        "PC": p_mev * 1e-3,
        "DELTAP": 0.0,
        "S_FRAME_M": bl.s_frame_m,
    }
    return out


def write_twiss_tfs(bl: Any, path: str | Path) -> Path:
    """Write the TFS file atomically (a complete file or none)."""
    import tfs

    frame = twiss_tfs_frame(bl)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "twiss.tfs"
        tfs.write(tmp_path, frame, non_unique_behavior="raise")
        text = tmp_path.read_text()
    return atomic_write_text(path, text)
