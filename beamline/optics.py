"""Optics of the line: twiss from the initial beam, survey, R-matrices, key-point table.

All functions return pandas DataFrames. ``s_m`` is the facts-file coordinate
(0 at the DHSTB01 arc entrance); ``s_line_m`` the coordinate along the model line.
Twiss values are at the element entrance. Dispersions are with respect to delta.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import BeamlineInputError
from .model import BeamLine

if TYPE_CHECKING:  # pragma: no cover
    import xtrack as xt

_TWISS_COLS = {
    "betx": "betx_m",
    "bety": "bety_m",
    "alfx": "alfx",
    "alfy": "alfy",
    "dx": "dx_m",
    "dpx": "dpx",
    "dy": "dy_m",
    "dpy": "dpy",
    "x": "x_m",
    "px": "px",
    "y": "y_m",
    "py": "py",
    "mux": "mux",
    "muy": "muy",
}

COORDS = ("x", "px", "y", "py", "zeta", "pzeta")


def rms_size_m(beta_m: float, emit_m: float, disp_m: float, sigma_delta: float) -> float:
    """rms beam size [m]: betatron part sqrt(beta*emit) and dispersive part D*sigma_delta."""
    return float(np.sqrt(beta_m * emit_m + (disp_m * sigma_delta) ** 2))


def twiss_table(bl: BeamLine) -> xt.TwissTable:
    """xtrack TwissTable of the whole line from the beam's initial Twiss (orbit from x = 0)."""
    line = bl.line
    return line.twiss(
        method="4d",
        start=line.element_names[0],
        end="_end_point",
        **bl.beam.twiss_init(),
    )


def r_between(tw: xt.TwissTable, start: str, end: str) -> np.ndarray:
    """6x6 map between two elements of a twiss table (xtrack returns an array here)."""
    mat = tw.get_R_matrix(start=start, end=end)
    if isinstance(mat, dict):
        mat = mat["R_matrix"]
    return np.asarray(mat, dtype=float)


def twiss(bl: BeamLine, *, markers_only: bool = False) -> pd.DataFrame:
    """Twiss table along the line from the beam's initial Twiss at the line start.

    Columns: ``name, s_m, s_line_m, betx_m, bety_m, alfx, alfy, dx_m, dpx, dy_m, dpy,
    x_m, px, y_m, py, mux, muy, element_type``. With ``markers_only`` only zero-length
    named elements (markers, apertures excluded) are kept.
    """
    tw = twiss_table(bl)
    df = pd.DataFrame({"name": np.asarray(tw.name), "s_line_m": np.asarray(tw.s)})
    for src, dst in _TWISS_COLS.items():
        df[dst] = np.asarray(getattr(tw, src))
    df["s_m"] = df["s_line_m"] - bl.s_frame_m
    tab = bl.line.get_table()
    types = dict(zip(tab.name, tab.element_type, strict=True))
    df["element_type"] = [types.get(n, "") for n in df["name"]]
    if markers_only:
        df = df[df["element_type"] == "Marker"]
    cols = ["name", "s_m", "s_line_m", *_TWISS_COLS.values(), "element_type"]
    return df[cols].reset_index(drop=True)


def r_matrix(bl: BeamLine, start: str, end: str) -> pd.DataFrame:
    """6x6 linear map from the entrance of ``start`` to the entrance of ``end``.

    Coordinates are xtrack's ``(x, px, y, py, zeta, pzeta)``; at first order pzeta = delta,
    so ``R16`` is the dispersion from ``start`` [m].
    """
    s_name, e_name = bl.check_element(start), bl.check_element(end)
    names = [*list(bl.line.element_names), "_end_point"]
    if names.index(e_name) < names.index(s_name):
        raise BeamlineInputError(f"'{end}' lies upstream of '{start}'")
    tw = twiss_table(bl)
    return pd.DataFrame(r_between(tw, s_name, e_name), index=list(COORDS), columns=list(COORDS))


def survey(bl: BeamLine) -> pd.DataFrame:
    """Floor coordinates: ``name, s_m, s_line_m, X_m, Y_m, Z_m, theta_rad, phi_rad, psi_rad``.

    The line starts at the origin heading along +Z; both dipoles bend towards -X.
    """
    sv = bl.line.survey()
    df = pd.DataFrame(
        {
            "name": np.asarray(sv.name),
            "s_line_m": np.asarray(sv.s),
            "X_m": np.asarray(sv.X),
            "Y_m": np.asarray(sv.Y),
            "Z_m": np.asarray(sv.Z),
            "theta_rad": np.asarray(sv.theta),
            "phi_rad": np.asarray(sv.phi),
            "psi_rad": np.asarray(sv.psi),
        }
    )
    df.insert(1, "s_m", df["s_line_m"] - bl.s_frame_m)
    return df


def key_points(bl: BeamLine) -> pd.DataFrame:
    """Optics at the key points of the line (``line.toml`` [key_points]).

    Columns: ``name, element, s_m, betx_m, bety_m, alfx, alfy, dx_m, dpx, r16_m, x_m, y_m,
    sigma_x_mm, sigma_y_mm`` where ``r16_m`` is the 1-6 element of the map from the line
    start and the rms sizes include the dispersive part ``(D sigma_delta)^2``.
    """
    tw = twiss(bl)
    first = tw.drop_duplicates("name", keep="first").set_index("name")
    rows = []
    full = twiss_table(bl)
    start = bl.line.element_names[0]
    for element, label in bl.spec.key_points.items():
        r = first.loc[element]
        r16 = float(r_between(full, start, element)[0, 5])
        sx = rms_size_m(r.betx_m, bl.beam.emit_x_m, r.dx_m, bl.beam.sigma_delta)
        sy = rms_size_m(r.bety_m, bl.beam.emit_y_m, r.dy_m, bl.beam.sigma_delta)
        rows.append(
            {
                "name": label,
                "element": element,
                "s_m": r.s_m,
                "betx_m": r.betx_m,
                "bety_m": r.bety_m,
                "alfx": r.alfx,
                "alfy": r.alfy,
                "dx_m": r.dx_m,
                "dpx": r.dpx,
                "r16_m": r16,
                "x_m": r.x_m,
                "y_m": r.y_m,
                "sigma_x_mm": 1e3 * sx,
                "sigma_y_mm": 1e3 * sy,
            }
        )
    return pd.DataFrame(rows)
