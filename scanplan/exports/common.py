"""Helpers shared by the export writers: plan hash, point selection, run maps, numbers."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import ScanplanError
from ..records import Plan, Point

#: period -> run numbers taken at that scan point (PADME run numbers, ascending).
RunMap = Mapping[int, Sequence[int]]


def plan_sha256(plan: Plan) -> str:
    """The plan's content hash: the sealed one, or computed for an unsealed plan."""
    return plan.content_sha256 or plan.compute_hash()


def select_points(plan: Plan, periods: Iterable[int] | None = None) -> list[Point]:
    """Points of ``plan`` ordered by period; only ``periods`` if given (unknown -> error)."""
    points = sorted(plan.points, key=lambda p: p.period)
    if not points:
        raise ScanplanError("plan has no points to export")
    if periods is None:
        return points
    wanted = sorted(set(int(p) for p in periods))
    return [plan.point(p) for p in wanted]


def finite(value: float, what: str) -> float:
    """``value`` as a float; a NaN or infinite value is a clear error."""
    x = float(value)
    if not math.isfinite(x):
        raise ScanplanError(f"{what} is not a finite number ({value!r}); cannot export it")
    return x


def fmt_float(value: float, what: str) -> str:
    """Shortest text that reads back as exactly ``value`` (``repr``), finite only."""
    return repr(finite(value, what))


def check_runs(plan: Plan, runs: RunMap) -> dict[int, list[int]]:
    """Validate a run map against the plan: known periods, positive unique run numbers."""
    periods = {p.period for p in plan.points}
    out: dict[int, list[int]] = {}
    owner: dict[int, int] = {}
    for period, numbers in runs.items():
        period = int(period)
        if period not in periods:
            raise ScanplanError(
                f"run map names period {period}, which is not a point of the plan "
                f"(periods {min(periods)}..{max(periods)})"
            )
        for n in numbers:
            n = int(n)
            if n <= 0:
                raise ScanplanError(f"run number must be positive, got {n} (period {period})")
            if n in owner and owner[n] != period:
                raise ScanplanError(f"run {n} is assigned to periods {owner[n]} and {period}")
            owner[n] = period
        out[period] = sorted({int(n) for n in numbers})
    return out


_INT = re.compile(r"^[+-]?\d+$")


def parse_runs_text(text: str, source: str = "runs") -> dict[int, list[int]]:
    """Read a run map: a JSON object ``{"12": [50284, 50285], ...}`` or lines
    ``<period> <run> [<run> ...]`` (whitespace separated; ``#`` starts a comment)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            raw = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ScanplanError(f"{source}: not valid JSON: {exc}") from None
        out: dict[int, list[int]] = {}
        for key, value in raw.items():
            values = value if isinstance(value, list) else [value]
            if not _INT.match(str(key).strip()) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                raise ScanplanError(
                    f"{source}: entry {key!r}: expected an integer period mapped to run numbers"
                )
            out.setdefault(int(key), []).extend(values)
        return out
    out = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2 or not all(_INT.match(f) for f in fields):
            raise ScanplanError(
                f"{source} line {lineno}: expected '<period> <run> [<run> ...]' integers, "
                f"got {line.strip()!r}"
            )
        out.setdefault(int(fields[0]), []).extend(int(f) for f in fields[1:])
    return out


def read_runs_file(path: str | Path) -> dict[int, list[int]]:
    """:func:`parse_runs_text` on a file (clear error if it cannot be read)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScanplanError(f"runs file {p} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScanplanError(f"runs file {p} cannot be read: {exc}") from None
    return parse_runs_text(text, f"runs file {p}")
