"""Range parsing shared by every CLI option that takes several values."""

from __future__ import annotations

import pytest

from scanplan.cli.common import parse_range
from scanplan.errors import ScanplanError


def test_inclusive_ranges_and_lists():
    assert parse_range("260:262:0.5", "--energy-mev") == [260.0, 260.5, 261.0, 261.5, 262.0]
    assert parse_range("1:3", "x") == [1.0, 2.0, 3.0]
    assert parse_range("1.5, 2,4", "x") == [1.5, 2.0, 4.0]
    # 41 energies from 260 to 300 in 1 MeV steps, endpoint included despite rounding
    assert len(parse_range("260:300:1", "x")) == 41
    assert len(parse_range("0.5:5:0.25", "x")) == 19


@pytest.mark.parametrize(
    "text, message",
    [
        ("300:260:1", "has no points"),
        ("260:300:0", "has no points"),
        ("abc", "cannot read"),
        ("1:2:3:4", "cannot read"),
        (",", "no values"),
    ],
)
def test_bad_ranges_say_why(text, message):
    with pytest.raises(ScanplanError, match=message):
        parse_range(text, "--energy-mev")


def test_range_option_type_expands_and_bounds():
    from scanplan.cli.common import RANGE, FloatRange, RangeType

    values = RANGE("260:262:0.5")
    assert isinstance(values, FloatRange) and values == [260.0, 260.5, 261.0, 261.5, 262.0]
    assert RANGE([1, 2.5]) == [1.0, 2.5]  # a default given as numbers
    with pytest.raises(ValueError, match="at most 10 are allowed"):
        RangeType(max_points=10)("0:100:1")
    with pytest.raises(ValueError, match="non-finite"):
        RANGE("0:inf:1")


def test_bad_range_option_is_one_error_line_naming_the_option():
    from cli_helpers import assert_user_error, run_cli

    proc = run_cli("spread", "--dhstb01-offset-a", "0:1:0", "--particles", "10")
    assert_user_error(proc, "--dhstb01-offset-a", "has no points")
    assert_user_error(run_cli("optics", "--no-such-option"), "--no-such-option")
