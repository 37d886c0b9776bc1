"""ROOT graphs for PADME's statistical treatment, written and read with uproot (facts 6).

PADME's published treatment (PADMERunIIISensitivity) reads one graph per quantity, indexed
by scan point:

=========================  ===================  ==========================================
name                       class                points (x, y)
=========================  ===================  ==========================================
``N2ClvsSqrsS_data``       TGraphErrors         sqrt(s) [MeV], two-cluster counts
``N2ClvsPer_data``         TGraphErrors         period, two-cluster counts
``PoTCorr``                TGraphErrors         sqrt(s) [MeV], corrected POT
``PoTCorrvsPer``           TGraphErrors         period, corrected POT
``SigEffvsS``              TGraphAsymmErrors    sqrt(s) [MeV], signal efficiency
``YieldvsSqrsS_bkg``       TGraphErrors         sqrt(s) [MeV], expected background per POT
``Sqrts``                  TGraphErrors         period, sqrt(s) [MeV]
``gPeriodIDVsSqrts_ScanK`` TGraph               sqrt(s) [MeV], period (points of part K)
=========================  ===================  ==========================================

Export (:func:`write_root_graphs`): a plan's per-point expectations: POT = ``target_pot``,
counts = the background-only expectation ``background_per_pot * target_pot`` (the Asimov
data of the null hypothesis), efficiency and background per POT of the point; or, where the
store recorded them after a run (``recorded``: period -> ``pot`` / ``n_obs``), those values.
Scan parts: the on-resonance points of pass K form part K; control points belong to none.
Uncertainties: sqrt(s) the point's ``sigma_sqrt_s_mev``; counts sqrt(N); POT and background
per POT relative, from the plan's physics model ``[systematics]`` (facts 5: 0.3 %
per point); efficiency 0 (not known to the plan).

uproot 5 writes TGraph but not yet TGraphErrors / TGraphAsymmErrors (its serialisers
raise ``NotImplementedError``; its docs point to PyROOT for them). The missing step is the
tail of the class streamer: after the TGraph base, each error array as a one-byte
"is array" flag and big-endian doubles, as TGraph's own ``fX``/``fY``. :func:`_error_graph`
adds exactly that on uproot's own models (their stored streamers are written to the file);
the round trip is tested by reading back with uproot. ROOT itself was not available to
check the files.

Import (:func:`read_observed_scan`): such graphs -> a pandas DataFrame with the columns of
the observed-scan table (:data:`OBSERVED_COLUMNS`), one row per period.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.observed import COLUMNS
from ..atomic import atomic_write_bytes
from ..errors import ScanplanError
from ..records import Plan, Point
from .common import select_points

#: Columns of the observed-scan table, from its one home (the analysis' table model).
OBSERVED_COLUMNS = COLUMNS
GRAPH_CLASSES = {
    "N2ClvsSqrsS_data": "TGraphErrors",
    "N2ClvsPer_data": "TGraphErrors",
    "PoTCorr": "TGraphErrors",
    "PoTCorrvsPer": "TGraphErrors",
    "SigEffvsS": "TGraphAsymmErrors",
    "YieldvsSqrsS_bkg": "TGraphErrors",
    "Sqrts": "TGraphErrors",
}
SCAN_PART_PREFIX = "gPeriodIDVsSqrts_Scan"
#: sqrt(s) values of two graphs are the same point if they agree to this [MeV]
SQRT_S_MATCH_MEV = 1e-6


def _error_graph(kind: str, data: dict[str, np.ndarray], labels: dict[str, str]) -> Any:
    """A writable TGraphErrors / TGraphAsymmErrors built on uproot's models."""
    import uproot
    import uproot.serialization
    from uproot.models.TGraph import Model_TGraphAsymmErrors_v3, Model_TGraphErrors_v3

    members = {
        "TGraphErrors": ("fEX", "fEY"),
        "TGraphAsymmErrors": ("fEXlow", "fEXhigh", "fEYlow", "fEYhigh"),
    }[kind]
    base = {"TGraphErrors": Model_TGraphErrors_v3, "TGraphAsymmErrors": Model_TGraphAsymmErrors_v3}

    def _serialize(self: Any, out: list[bytes], header: bool, name: str, flags: Any) -> None:
        where = len(out)
        for b in self._bases:
            b._serialize(out, True, name, flags)
        for m in members:
            out.extend([b"\x01", np.asarray(self._members[m], dtype=">f8").tobytes()])
        if header:
            num_bytes = sum(len(x) for x in out[where:])
            out.insert(where, uproot.serialization.numbytes_version(num_bytes, 3))

    # same class name as uproot's model: the key's class name and streamer are uproot's
    cls = type(base[kind].__name__, (base[kind],), {"_serialize": _serialize})
    graph = uproot.as_TGraph(data, **labels)
    graph.__class__ = cls
    return graph


ArrayLike = Sequence[float] | np.ndarray


def _graph(x: ArrayLike, y: ArrayLike, title: str, **errors: ArrayLike) -> Any:
    """A graph; ``title`` is ``"title;x axis;y axis"``; errors as :func:`uproot.as_TGraph`."""
    import uproot

    data = {"x": np.asarray(x, dtype=float), "y": np.asarray(y, dtype=float)}
    for key, value in errors.items():
        data[key] = np.asarray(value, dtype=float)
    for key, arr in data.items():
        if not np.all(np.isfinite(arr)):
            raise ScanplanError(f"graph {title}: {key} has a non-finite value; cannot export")
    head, x_label, y_label = title.split(";")
    labels = {"title": head, "xAxisLabel": x_label, "yAxisLabel": y_label}
    if not errors:
        return uproot.as_TGraph(data, **labels)
    kind = "TGraphAsymmErrors" if "x_errors_low" in errors else "TGraphErrors"
    return _error_graph(kind, data, labels)


def _scan_part(point: Point) -> int:
    return -1 if point.kind == "control" else point.pass_index


def graphs_for_plan(
    plan: Plan,
    *,
    periods: Sequence[int] | None = None,
    recorded: Mapping[int, Mapping[str, float]] | None = None,
    pot_rel_err: float | None = None,
    bkg_rel_err: float | None = None,
) -> dict[str, Any]:
    """name -> graph of the plan's points (``recorded`` period -> {pot, n_obs} wins).

    ``pot_rel_err`` / ``bkg_rel_err``: relative per-point POT and background-per-POT errors;
    default the plan's physics model (``[systematics]`` of ``lattices/physics``, facts 5:
    0.3 % per point).
    """
    syst = plan.inputs.physics.systematics
    pot_rel_err = syst.pot_rel if pot_rel_err is None else pot_rel_err
    bkg_rel_err = syst.background_rel if bkg_rel_err is None else bkg_rel_err
    points = select_points(plan, periods)
    rec = recorded or {}
    per = np.array([p.period for p in points], dtype=float)
    rs = np.array([p.sqrt_s_mev for p in points])
    rs_err = np.array([p.sigma_sqrt_s_mev for p in points])
    pot = np.array([float(rec.get(p.period, {}).get("pot", p.target_pot)) for p in points])
    bkg = np.array([p.background_per_pot for p in points])
    counts = np.array(
        [
            float(rec.get(p.period, {}).get("n_obs", p.background_per_pot * p.target_pot))
            for p in points
        ]
    )
    eff = np.array([p.signal_efficiency for p in points])
    zero = np.zeros(len(points))
    n_err = np.sqrt(np.maximum(counts, 0.0))
    out = {
        "N2ClvsSqrsS_data": _graph(rs, counts, "N2Cl vs sqrt(s);#sqrt{s} [MeV];N_{2cl}",
                                   x_errors=rs_err, y_errors=n_err),
        "N2ClvsPer_data": _graph(per, counts, "N2Cl vs period;period;N_{2cl}",
                                 x_errors=zero, y_errors=n_err),
        "PoTCorr": _graph(rs, pot, "corrected POT;#sqrt{s} [MeV];POT",
                          x_errors=rs_err, y_errors=pot * pot_rel_err),
        "PoTCorrvsPer": _graph(per, pot, "corrected POT vs period;period;POT",
                               x_errors=zero, y_errors=pot * pot_rel_err),
        "SigEffvsS": _graph(rs, eff, "signal efficiency;#sqrt{s} [MeV];#varepsilon",
                            x_errors_low=rs_err, x_errors_high=rs_err,
                            y_errors_low=zero, y_errors_high=zero),
        "YieldvsSqrsS_bkg": _graph(rs, bkg, "background per POT;#sqrt{s} [MeV];B/POT",
                                   x_errors=rs_err, y_errors=bkg * bkg_rel_err),
        "Sqrts": _graph(per, rs, "sqrt(s) vs period;period;#sqrt{s} [MeV]",
                        x_errors=zero, y_errors=rs_err),
    }  # fmt: skip
    parts = sorted({_scan_part(p) for p in points} - {-1})
    for k in parts:
        mine = [p for p in points if _scan_part(p) == k]
        out[f"{SCAN_PART_PREFIX}{k}"] = _graph(
            [p.sqrt_s_mev for p in mine],
            [float(p.period) for p in mine],
            f"periods of scan part {k};#sqrt{{s}} [MeV];period",
        )
    return out


def write_root_graphs(plan: Plan, path: str | Path, **options: Any) -> Path:
    """Write :func:`graphs_for_plan` into a new ROOT file, atomically."""
    import uproot

    graphs = graphs_for_plan(plan, **options)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "graphs.root"
        with uproot.recreate(tmp_path) as f:
            for name, graph in graphs.items():
                f[name] = graph
        data = tmp_path.read_bytes()
    return atomic_write_bytes(path, data)


# ---- import --------------------------------------------------------------------------------
def _points(f: Any, name: str, path: Path) -> dict[str, np.ndarray]:
    try:
        obj = f[name]
    except KeyError:
        raise ScanplanError(f"{path}: no graph {name!r} (PADME's statistical inputs)") from None
    want = GRAPH_CLASSES.get(name, "TGraph")
    if obj.classname != want:
        raise ScanplanError(f"{path}: {name} is a {obj.classname}, expected {want}")
    out = {"x": np.asarray(obj.member("fX"), float), "y": np.asarray(obj.member("fY"), float)}
    for m in ("fEX", "fEY", "fEXlow", "fEXhigh", "fEYlow", "fEYhigh"):
        if obj.has_member(m):
            out[m] = np.asarray(obj.member(m), float)
    return out


def _by_period(g: dict[str, np.ndarray], name: str, path: Path) -> dict[int, tuple[float, float]]:
    periods = g["x"]
    if not np.all(periods == np.round(periods)) or len(set(periods)) != len(periods):
        raise ScanplanError(f"{path}: {name} x values must be distinct integer periods")
    return {int(p): (float(y), float(e)) for p, y, e in zip(periods, g["y"], g["fEY"], strict=True)}


def _at_sqrt_s(
    g: dict[str, np.ndarray], rs: float, name: str, path: Path, err: np.ndarray
) -> tuple[float, float]:
    idx = np.nonzero(np.abs(g["x"] - rs) <= SQRT_S_MATCH_MEV)[0]
    if idx.size != 1:
        raise ScanplanError(f"{path}: {name} has {idx.size} points at sqrt(s) = {rs!r} MeV")
    return float(g["y"][idx[0]]), float(err[idx[0]])


def read_observed_scan(path: str | Path) -> Any:
    """The observed-scan table (pandas DataFrame, :data:`OBSERVED_COLUMNS`) from a ROOT file
    of PADME's graphs. Per-period values come from the ``...vsPer`` graphs and ``Sqrts``;
    efficiency and background per POT are matched by sqrt(s); ``sig_eff_err`` is the mean of
    the asymmetric y errors; ``scan_part`` from ``gPeriodIDVsSqrts_ScanK`` (-1: in none)."""
    import pandas as pd
    import uproot

    from beamline.constants import ELECTRON_MASS_MEV

    p = Path(path)
    try:
        f = uproot.open(p)
    except FileNotFoundError:
        raise ScanplanError(f"ROOT file {p} not found") from None
    except Exception as exc:
        raise ScanplanError(f"{p} is not a readable ROOT file: {exc}") from None
    with f:
        rs = _by_period(_points(f, "Sqrts", p), "Sqrts", p)
        n = _by_period(_points(f, "N2ClvsPer_data", p), "N2ClvsPer_data", p)
        pot = _by_period(_points(f, "PoTCorrvsPer", p), "PoTCorrvsPer", p)
        eff = _points(f, "SigEffvsS", p)
        bkg = _points(f, "YieldvsSqrsS_bkg", p)
        parts: dict[int, int] = {}
        for key in f.keys(cycle=False):
            if key.startswith(SCAN_PART_PREFIX):
                k = int(key[len(SCAN_PART_PREFIX) :])
                for period in _points(f, key, p)["y"]:
                    if int(period) in parts:
                        raise ScanplanError(f"{p}: period {int(period)} is in two scan parts")
                    parts[int(period)] = k
    if set(n) != set(rs) or set(pot) != set(rs):
        raise ScanplanError(f"{p}: Sqrts, N2ClvsPer_data and PoTCorrvsPer name different periods")
    eff_err = 0.5 * (eff["fEYlow"] + eff["fEYhigh"])
    rows = []
    for period in sorted(rs):
        s = rs[period][0]
        e, e_err = _at_sqrt_s(eff, s, "SigEffvsS", p, eff_err)
        b, b_err = _at_sqrt_s(bkg, s, "YieldvsSqrsS_bkg", p, bkg["fEY"])
        rows.append(
            {
                "period": period,
                "scan_part": parts.get(period, -1),
                "sqrt_s_mev": s,
                "pot": pot[period][0],
                "pot_err": pot[period][1],
                "n_obs": n[period][0],
                "n_obs_err": n[period][1],
                "sig_eff": e,
                "sig_eff_err": e_err,
                "bkg_per_pot": b,
                "bkg_per_pot_err": b_err,
                "energy_mev": (s * s - 2 * ELECTRON_MASS_MEV**2) / (2 * ELECTRON_MASS_MEV),
            }
        )
    df = pd.DataFrame(rows, columns=list(OBSERVED_COLUMNS))
    validate_observed(df, str(p))
    return df


def validate_observed(df: Any, source: str) -> None:
    """Validate through the observed-scan model of ``scanplan.analysis.observed`` (issue 13)
    when it is installed; otherwise check finiteness here."""
    try:
        from scanplan.analysis.observed import rows_from_records
    except ImportError:
        bad = [c for c in OBSERVED_COLUMNS if not all(math.isfinite(v) for v in df[c])]
        if bad:
            raise ScanplanError(f"{source}: non-finite values in {', '.join(bad)}") from None
        return
    records = (
        (f"{source} period {int(r['period'])}", {k: r[k] for k in OBSERVED_COLUMNS})
        for r in df.to_dict(orient="records")
    )
    rows_from_records(records, source)
