"""The observed-scan table: one row per scan point, as PADME's statistical treatment reads it.

Columns (CSV with a header line, or Parquet with the same column names):

=================  ========================================================================
``period``         scan-point index (PADME ``period``, >= 0, unique)
``scan_part``      scan part (0, 1, ... = the passes with their own background line);
                   < 0 marks an off-resonance control point
``sqrt_s_mev``     centre-of-mass energy sqrt(s) [MeV]
``pot``            corrected positrons on target; ``pot_err`` its absolute uncertainty
``n_obs``          selected two-cluster events (may be a corrected, non-integer count);
                   ``n_obs_err`` its uncertainty (informative: the likelihood is Poisson)
``sig_eff``        signal selection efficiency in [0, 1]; ``sig_eff_err`` its uncertainty
``bkg_per_pot``    expected background per POT; ``bkg_per_pot_err`` its uncertainty
``energy_mev``     optional: total beam energy [MeV]; derived from sqrt(s) if absent
=================  ========================================================================

These are the graphs of facts section 6 (``N2ClvsSqrsS_data``, ``PoTCorr``, ``SigEffvsS``,
``YieldvsSqrsS_bkg``, ``gPeriodIDVsSqrts_Scan0/1``) side by side, one row per period. A bad
row is a :class:`~scanplan.errors.ScanplanError` that names the file, the row (CSV line
number, or Parquet row number counting from 1), the column and the reason.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, ValidationError, field_validator

from beamline.constants import ELECTRON_MASS_MEV
from beamline.datafiles import DataModel

from ..atomic import atomic_write_text
from ..errors import ScanplanError

REQUIRED_COLUMNS = (
    "period",
    "scan_part",
    "sqrt_s_mev",
    "pot",
    "pot_err",
    "n_obs",
    "n_obs_err",
    "sig_eff",
    "sig_eff_err",
    "bkg_per_pot",
    "bkg_per_pot_err",
)
OPTIONAL_COLUMNS = ("energy_mev",)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

#: Most rows a table may have: a scan has tens of points; beyond this it is not a scan table.
MAX_ROWS = 10_000
#: Most bad rows named in one error message (the message stays one line).
MAX_REPORTED = 5
#: Largest |sqrt(s)(energy_mev) - sqrt_s_mev| [MeV] accepted when both are given: 1 keV, far
#: below the 0.07 MeV rms of the beam-energy assignment (facts 3) yet above rounding.
SQRT_S_TOLERANCE_MEV = 1e-3


def sqrt_s_from_energy_mev(e_beam_mev: float | NDArray) -> Any:
    """sqrt(s) [MeV] for a positron of total energy ``e_beam_mev`` [MeV] on an electron at rest."""
    return np.sqrt(2.0 * ELECTRON_MASS_MEV**2 + 2.0 * ELECTRON_MASS_MEV * np.asarray(e_beam_mev))


def energy_from_sqrt_s_mev(sqrt_s_mev: float | NDArray) -> Any:
    """Total beam energy [MeV] that gives ``sqrt_s_mev`` [MeV] (inverse of the above)."""
    s = np.asarray(sqrt_s_mev, dtype=float) ** 2
    return (s - 2.0 * ELECTRON_MASS_MEV**2) / (2.0 * ELECTRON_MASS_MEV)


class ObservedRow(DataModel):
    """One scan point of an observed scan (units in the names; counts dimensionless)."""

    period: int = Field(ge=0)
    scan_part: int
    sqrt_s_mev: float = Field(gt=2.0 * ELECTRON_MASS_MEV, allow_inf_nan=False)
    pot: float = Field(gt=0, allow_inf_nan=False)
    pot_err: float = Field(ge=0, allow_inf_nan=False)
    n_obs: float = Field(ge=0, allow_inf_nan=False)
    n_obs_err: float = Field(ge=0, allow_inf_nan=False)
    sig_eff: float = Field(ge=0, le=1, allow_inf_nan=False)
    sig_eff_err: float = Field(ge=0, allow_inf_nan=False)
    bkg_per_pot: float = Field(gt=0, allow_inf_nan=False)
    bkg_per_pot_err: float = Field(ge=0, allow_inf_nan=False)
    energy_mev: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("energy_mev")
    @classmethod
    def _energy_above_threshold(cls, v: float | None) -> float | None:
        if v is not None and v < ELECTRON_MASS_MEV:
            raise ValueError(f"must be at least the electron mass {ELECTRON_MASS_MEV:.6f} MeV")
        return v

    @property
    def is_control(self) -> bool:
        """Off-resonance control point (``scan_part`` < 0)."""
        return self.scan_part < 0

    @property
    def beam_energy_mev(self) -> float:
        """Total beam energy [MeV]: ``energy_mev`` if given, else from sqrt(s)."""
        if self.energy_mev is not None:
            return self.energy_mev
        return float(energy_from_sqrt_s_mev(self.sqrt_s_mev))


@dataclass(frozen=True)
class ObservedScan:
    """A validated observed scan: ``rows`` in period order and the ``source`` it came from."""

    rows: tuple[ObservedRow, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.rows:
            raise ScanplanError(f"{self.source or 'observed scan'}: no rows")

    def column(self, name: str) -> NDArray:
        """One column as a float array (``energy_mev`` filled from sqrt(s) where absent)."""
        if name == "energy_mev":
            return np.array([r.beam_energy_mev for r in self.rows])
        return np.array([float(getattr(r, name)) for r in self.rows])

    @property
    def is_control(self) -> NDArray:
        return np.array([r.is_control for r in self.rows])

    @property
    def periods(self) -> list[int]:
        return [r.period for r in self.rows]

    def subset(self, keep: Sequence[bool] | NDArray) -> ObservedScan:
        """The rows where ``keep`` is true (same source)."""
        rows = tuple(r for r, k in zip(self.rows, keep, strict=True) if k)
        return ObservedScan(rows, self.source)


def _cell_error(where: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "<row>"
        if err.get("type") == "missing":
            parts.append(f"column '{loc}': missing value")
        else:
            value = err.get("input")
            parts.append(f"column '{loc}': {err.get('msg', 'invalid')} (got {value!r})")
    return f"{where}: " + ", ".join(parts)


def rows_from_records(records: Iterable[tuple[str, dict[str, Any]]], source: str) -> ObservedScan:
    """Validate ``(row label, mapping)`` pairs into an :class:`ObservedScan`.

    Empty cells (``""`` or None) of the optional column count as absent. Every bad row is
    collected; the error names up to :data:`MAX_REPORTED` of them on one line.
    """
    rows: list[ObservedRow] = []
    labels: list[str] = []
    problems: list[str] = []
    for label, raw in records:
        if len(rows) + len(problems) >= MAX_ROWS:
            raise ScanplanError(f"{source}: more than {MAX_ROWS} rows; not a scan table")
        data = {k: v for k, v in raw.items() if not (k in OPTIONAL_COLUMNS and v in ("", None))}
        data = {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
        try:
            row = ObservedRow.model_validate(data)
        except ValidationError as exc:
            problems.append(_cell_error(label, exc))
            continue
        if row.energy_mev is not None:
            rs = float(sqrt_s_from_energy_mev(row.energy_mev))
            if abs(rs - row.sqrt_s_mev) > SQRT_S_TOLERANCE_MEV:
                problems.append(
                    f"{label}: column 'energy_mev': gives sqrt(s) = {rs:.4f} MeV but "
                    f"sqrt_s_mev = {row.sqrt_s_mev:.4f} MeV"
                )
                continue
        rows.append(row)
        labels.append(label)
    seen: dict[int, str] = {}
    for row, label in zip(rows, labels, strict=True):
        if row.period in seen:
            problems.append(
                f"{label}: column 'period': {row.period} already used at {seen[row.period]}"
            )
        else:
            seen[row.period] = label
    if problems:
        more = len(problems) - MAX_REPORTED
        text = "; ".join(problems[:MAX_REPORTED]) + (f"; and {more} more" if more > 0 else "")
        raise ScanplanError(f"{source}: {text}")
    if not rows:
        raise ScanplanError(f"{source}: no data rows")
    return ObservedScan(tuple(sorted(rows, key=lambda r: r.period)), source)


def _check_header(columns: Sequence[str], source: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in COLUMNS]
    if missing or unknown:
        bits = []
        if missing:
            bits.append("missing column(s) " + ", ".join(missing))
        if unknown:
            bits.append("unknown column(s) " + ", ".join(unknown))
        raise ScanplanError(f"{source}: header: " + "; ".join(bits))


def parse_observed_csv(text: str, source: str = "<csv>") -> ObservedScan:
    """Parse the CSV text of an observed scan (header line first; ``#`` lines are comments)."""
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines())]
    body = [(n, ln) for n, ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not body:
        raise ScanplanError(f"{source}: empty file (need a header line and rows)")
    header = next(csv.reader([body[0][1]]))
    header = [h.strip() for h in header]
    _check_header(header, source)

    def records() -> Iterable[tuple[str, dict[str, Any]]]:
        for n, ln in body[1:]:
            cells = next(csv.reader(io.StringIO(ln)))
            label = f"line {n}"
            if len(cells) != len(header):
                raise ScanplanError(
                    f"{source}: {label}: {len(cells)} cells, the header has {len(header)}"
                )
            yield label, dict(zip(header, cells, strict=True))

    return rows_from_records(records(), source)


def load_observed(path: str | Path) -> ObservedScan:
    """Read an observed-scan table from ``.csv`` or ``.parquet`` (by extension)."""
    p = Path(path)
    source = str(p)
    if not p.is_file():
        raise ScanplanError(f"{source}: no such file")
    if p.suffix.lower() in (".parquet", ".pq"):
        return _load_parquet(p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScanplanError(f"{source}: cannot read: {exc}") from None
    return parse_observed_csv(text, source)


def _load_parquet(p: Path) -> ObservedScan:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = str(p)
    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowException) as exc:
        raise ScanplanError(f"{source}: not a readable Parquet file: {exc}") from None
    _check_header(table.column_names, source)
    if table.num_rows > MAX_ROWS:
        raise ScanplanError(f"{source}: more than {MAX_ROWS} rows; not a scan table")
    cols = table.to_pydict()
    names = list(cols)

    def records() -> Iterable[tuple[str, dict[str, Any]]]:
        for i in range(table.num_rows):
            raw = {k: cols[k][i] for k in names}
            # NaN in a float column is a missing value: the optional column is then absent
            raw = {
                k: (None if isinstance(v, float) and math.isnan(v) and k in OPTIONAL_COLUMNS else v)
                for k, v in raw.items()
            }
            yield f"row {i + 1}", raw

    return rows_from_records(records(), source)


def observed_csv_text(scan: ObservedScan | Sequence[ObservedRow]) -> str:
    """CSV text of an observed scan (header + one line per row, full float precision)."""
    rows = scan.rows if isinstance(scan, ObservedScan) else tuple(scan)
    with_energy = any(r.energy_mev is not None for r in rows)
    cols = COLUMNS if with_energy else REQUIRED_COLUMNS
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if getattr(r, c) is None else repr(getattr(r, c)) for c in cols])
    return out.getvalue()


def write_observed_csv(path: str | Path, scan: ObservedScan | Sequence[ObservedRow]) -> Path:
    """Write an observed scan as CSV, atomically."""
    return atomic_write_text(path, observed_csv_text(scan))


def write_observed_parquet(path: str | Path, scan: ObservedScan | Sequence[ObservedRow]) -> Path:
    """Write an observed scan as Parquet (atomic: written to bytes, then replaced)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..atomic import atomic_write_bytes

    rows = scan.rows if isinstance(scan, ObservedScan) else tuple(scan)
    data = {c: [getattr(r, c) for r in rows] for c in COLUMNS}
    if all(v is None for v in data["energy_mev"]):
        del data["energy_mev"]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(data), sink)
    return atomic_write_bytes(path, sink.getvalue().to_pybytes())
