"""Text from data reaches the crew as it is: the consoles interpret no rich markup, so a
header such as "t [s]", a reason or a path containing "[b]" or "[s]" is printed verbatim
(rich would read those as bold / strike-through tags and drop them)."""

from __future__ import annotations

from scanplan.cli import common
from scanplan.cli.tables import compact_table, flexible_table


def _printed(renderable) -> str:
    with common.console.capture() as cap:
        common.console.print(renderable)
    return cap.get()


def test_tables_keep_brackets_of_headers_and_cells():
    rows = [{"t": "wait [s] then [b]old", "p": "/data/run[s]/x.png"}]
    cols = [("t", "dwell [s]", ""), ("p", "path", "")]
    for table in (
        common.rich_table("events [s]", rows, cols),
        compact_table("events", rows, cols),
        flexible_table("events", rows, cols, flexible="p"),
    ):
        text = _printed(table)
        assert "wait [s] then [b]old" in text
        assert "/data/run[s]/x.png" in text
        assert "[s]" in text.split("wait")[0]  # the header's unit


def test_an_error_line_keeps_brackets(capsys):
    common.fail("--dwell-s [s] must be finite; see /tmp/[b]/plan.json")
    err = capsys.readouterr().err
    assert err.strip() == "error: --dwell-s [s] must be finite; see /tmp/[b]/plan.json"
