"""Tables that stay readable on a narrow terminal: set points never truncated, derived
columns left out (and named) when they do not fit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .common import console, rich_table


def compact_table(title: str, rows: list[dict[str, Any]], cols: list[tuple[str, str, str]]) -> Any:
    """:func:`rich_table`, narrow: units under the header names, one space between columns,
    cells never wrapped."""
    from rich import box

    table = rich_table(title, rows, cols)
    table.box = box.SIMPLE_HEAD
    table.pad_edge = False
    table.collapse_padding = True
    table.padding = (0, 1)
    for column, (_, header, _) in zip(table.columns, cols, strict=True):
        column.header = header.replace(" [", "\n[")
    return table


def flexible_table(
    title: str, rows: list[dict[str, Any]], cols: list[tuple[str, str, str]], flexible: str
) -> Any:
    """:func:`compact_table` in which only the ``flexible`` column (free text such as a
    payload, left-aligned) gives way on a narrow terminal: it folds onto more lines, while
    every other column keeps the width of its widest cell, so no column collapses to nothing."""
    from rich.cells import cell_len

    table = compact_table(title, rows, cols)
    for column, (key, _, _) in zip(table.columns, cols, strict=True):
        if key == flexible:
            column.no_wrap = False
            column.overflow = "fold"
            column.justify = "left"
            continue
        # widest line of the header (its unit may stand on a line of its own) and the cells
        lines = [ln for c in (column.header, *column.cells) for ln in str(c).splitlines()]
        column.min_width = max((cell_len(ln) for ln in lines), default=0)
    return table


def natural_width(table: Any) -> int:
    """Columns ``table`` takes when nothing is wrapped or truncated."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update(max_width=10_000), table).maximum


def fit_table(
    title: str,
    rows: list[dict[str, Any]],
    cols: list[tuple[str, str, str]],
    optional: Iterable[str],
) -> tuple[Any, list[str]]:
    """:func:`compact_table` of ``rows`` without the ``optional`` column keys (first ones
    first) that do not fit the console's width; returns the table and the headers left out.
    The other columns are never truncated by the fitting (a terminal narrower than them
    still is)."""
    dropped: list[str] = []
    table = compact_table(title, rows, cols)
    for key in optional:
        if natural_width(table) <= console.width:
            break
        dropped += [h for k, h, _ in cols if k == key]
        cols = [c for c in cols if c[0] != key]
        table = compact_table(title, rows, cols)
    return table, dropped
