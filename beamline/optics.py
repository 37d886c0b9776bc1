"""Optics of the line: twiss from the initial beam, survey, R-matrices, key-point table.

All functions return pandas DataFrames. ``s_m`` is the facts-file coordinate
(0 at the DHSTB01 arc entrance); ``s_line_m`` the coordinate along the model line.
Twiss values are at the element entrance. Dispersions are with respect to delta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, overload

import numpy as np
import pandas as pd

from .beam import BeamParameters
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


@overload
def rms_size_m(beta_m: float, emit_m: float, disp_m: float, sigma_delta: float) -> float: ...
@overload
def rms_size_m(
    beta_m: np.ndarray, emit_m: float, disp_m: np.ndarray, sigma_delta: float
) -> np.ndarray: ...
def rms_size_m(
    beta_m: float | np.ndarray, emit_m: float, disp_m: float | np.ndarray, sigma_delta: float
) -> float | np.ndarray:
    """rms beam size [m]: betatron part sqrt(beta*emit) and dispersive part D*sigma_delta
    (element-wise for arrays of beta [m] and D [m])."""
    size = np.sqrt(beta_m * emit_m + (disp_m * sigma_delta) ** 2)
    return size if isinstance(size, np.ndarray) else float(size)


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


#: Default spacing [m] of the sampled optics (about 1000 points over the 20.6 m line).
SAMPLE_STEP_M = 0.02
_SAMPLED_COLS = ("betx_m", "bety_m", "alfx", "alfy", "dx_m", "dpx", "dy_m", "dpy", "x_m", "y_m")


def _check_positions(bl: BeamLine, s_m: Sequence[float] | np.ndarray) -> np.ndarray:
    """Positions [m, facts frame] as line coordinates; refused outside the line."""
    s_line = np.asarray(s_m, dtype=float).ravel() + bl.s_frame_m
    length = float(bl.line.get_length())
    if not np.all(np.isfinite(s_line)):
        raise BeamlineInputError("sample positions must be finite numbers of m")
    if s_line.size and (s_line.min() < -1e-9 or s_line.max() > length + 1e-9):
        raise BeamlineInputError(
            f"sample positions must lie on the line, s = {-bl.s_frame_m:g}..."
            f"{length - bl.s_frame_m:g} m"
        )
    return np.clip(s_line, 0.0, length)


def sampled_twiss(
    bl: BeamLine,
    s_m: Sequence[float] | np.ndarray | None = None,
    *,
    step_m: float = SAMPLE_STEP_M,
    beam: BeamParameters | None = None,
    start: str | None = None,
) -> pd.DataFrame:
    """Twiss at every element edge and at the positions ``s_m`` [m, facts frame] (default:
    every ``step_m`` [m]), inside drifts, quadrupoles and dipoles alike.

    A shallow copy of the line is cut at those positions into exact thick slices (xtrack
    ``cut_at_s``; the dipoles keep their exact map), so the values are those of the full
    line at that s, not an interpolation. ``bl.line`` is left unchanged. Columns: ``s_m,
    s_line_m, betx_m, bety_m, alfx, alfy, dx_m, dpx, dy_m, dpy, x_m, y_m``, sorted by s (a
    position may appear more than once, at zero-length elements).

    ``beam`` (default ``bl.beam``) gives the initial Twiss, at the line start or at the
    marker ``start`` (e.g. the injection point of a beam defined after the selection); with
    ``start`` only the rows from there on are returned.
    """
    length = float(bl.line.get_length())
    beam = bl.beam if beam is None else beam
    if start is not None:
        first = bl.check_element(start)
        # a thin element keeps its name when the line is cut (a thick one is renamed)
        if first == "_end_point" or float(getattr(bl.line[first], "length", 0.0)) > 0:
            raise BeamlineInputError(f"twiss start '{start}' must be a marker of the line")
    if s_m is None:
        if not (math.isfinite(step_m) and step_m > 0):
            raise BeamlineInputError(f"sample step must be > 0 m, got {step_m!r}")
        if length / step_m > 1e6:
            raise BeamlineInputError(f"sample step {step_m:g} m gives over 1e6 points")
        s_line = np.arange(step_m, length, step_m)
    else:
        s_line = _check_positions(bl, s_m)
    cuts = np.unique(s_line[(s_line > 1e-9) & (s_line < length - 1e-9)])
    line = bl.line.copy(shallow=True)
    if cuts.size:
        line.cut_at_s(list(cuts), with_progress=False)
    if start is None:
        first = line.element_names[0]
    tw = line.twiss(method="4d", start=first, end="_end_point", **beam.twiss_init())
    df = pd.DataFrame({"s_line_m": np.asarray(tw.s)})
    for src, dst in _TWISS_COLS.items():
        if dst in _SAMPLED_COLS:
            df[dst] = np.asarray(getattr(tw, src))
    df.insert(0, "s_m", df["s_line_m"] - bl.s_frame_m)
    return df[["s_m", "s_line_m", *_SAMPLED_COLS]]


def twiss_at_s(bl: BeamLine, s_m: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Twiss at exactly the positions ``s_m`` [m, facts frame], one row each, in the given
    order (columns of :func:`sampled_twiss`). At an element edge the row is the last one at
    that s (after zero-length elements, which carry no optics)."""
    s_line = _check_positions(bl, s_m)
    table = sampled_twiss(bl, s_m)
    s_rows = table["s_line_m"].to_numpy()
    idx = np.searchsorted(s_rows, s_line + 1e-9, side="right") - 1
    idx = np.clip(idx, 0, len(s_rows) - 1)
    if np.any(np.abs(s_rows[idx] - s_line) > 1e-6):  # pragma: no cover - cut_at_s contract
        raise RuntimeError("twiss_at_s: a requested position was not cut")
    return table.iloc[idx].reset_index(drop=True)


def beam_envelope(
    bl: BeamLine,
    *,
    step_m: float = SAMPLE_STEP_M,
    beam: BeamParameters | None = None,
    start: str | None = None,
) -> pd.DataFrame:
    """rms beam envelope along the line for ``beam`` (default: the beam of the settings,
    ``bl.beam``) from the line start or from the marker ``start``:
    ``sigma_x_m = sqrt(betx*emit_x + (D_x*sigma_delta)^2)``, ``sigma_y_m`` likewise, from
    :func:`sampled_twiss` (linear optics, no collimation: the slits' cut is not applied).
    Columns: those of :func:`sampled_twiss` plus ``sigma_x_m, sigma_y_m`` [m]."""
    df = sampled_twiss(bl, step_m=step_m, beam=beam, start=start)
    b = bl.beam if beam is None else beam
    df["sigma_x_m"] = rms_size_m(
        df["betx_m"].to_numpy(), b.emit_x_m, df["dx_m"].to_numpy(), b.sigma_delta
    )
    df["sigma_y_m"] = rms_size_m(
        df["bety_m"].to_numpy(), b.emit_y_m, df["dy_m"].to_numpy(), b.sigma_delta
    )
    return df
