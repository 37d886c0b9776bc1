"""CSV of all point fields: a header of ``Point`` field names (schema order) plus
``plan_sha256``; one row per point ordered by period. Floats are written with ``repr`` so
they read back exactly."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from ..records import Plan, Point
from .common import fmt_float, plan_sha256, select_points


def csv_columns() -> list[str]:
    """Column names: ``plan_sha256`` then every ``Point`` field in schema order."""
    return ["plan_sha256", *Point.model_fields]


def write_csv(plan: Plan, *, periods: Iterable[int] | None = None) -> str:
    """CSV text of the selected points (RFC 4180 quoting, ``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_columns())
    sha = plan_sha256(plan)
    for point in select_points(plan, periods):
        row: list[str] = [sha]
        for name, value in point.model_dump().items():
            if isinstance(value, float):
                row.append(fmt_float(value, f"{name} of period {point.period}"))
            else:
                row.append(str(value))
        writer.writerow(row)
    return buf.getvalue()
