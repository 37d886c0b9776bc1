"""Observed-scan table: validation with one clear message per bad row, CSV and Parquet."""

from __future__ import annotations

import math

import pytest

from scanplan.analysis.observed import (
    REQUIRED_COLUMNS,
    ObservedRow,
    load_observed,
    parse_observed_csv,
    write_observed_csv,
    write_observed_parquet,
)
from scanplan.errors import ScanplanError

HEADER = ",".join(REQUIRED_COLUMNS)
# 2022-like rows (facts 4, 5): ~7.6e9 POT, background 3.5e-6 per POT, efficiency ~0.09
GOOD = [
    "0,0,17.10,7.6e9,2.3e7,26600,163,0.095,0.001,3.50e-6,1.05e-8",
    "1,0,17.05,7.1e9,2.1e7,24800,157,0.094,0.001,3.49e-6,1.05e-8",
    "23,-1,14.60,6.0e9,1.8e7,14000,118,0.043,0.001,2.40e-6,7.2e-9",
]


def _csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def test_good_table_parses_and_derives_beam_energy() -> None:
    scan = parse_observed_csv(_csv(*GOOD), "t.csv")
    assert scan.periods == [0, 1, 23]
    assert list(scan.is_control) == [False, False, True]
    # E = (s - 2 m_e^2) / (2 m_e), closed form with m_e = 0.51099895 MeV (CODATA 2018)
    me = 0.51099895069
    e = scan.column("energy_mev")[0]
    assert e == pytest.approx((17.10**2 - 2 * me * me) / (2 * me), rel=1e-9)
    assert e == pytest.approx(285.6, abs=0.2)  # facts 5: 1 MeV of E_beam ~ 30 keV of sqrt(s)


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("0,0,17.10,-7.6e9,2.3e7,26600,163,0.095,0.001,3.50e-6,1.05e-8", "pot", "greater than 0"),
        (
            "0,0,17.10,7.6e9,2.3e7,26600,163,1.5,0.001,3.50e-6,1.05e-8",
            "sig_eff",
            "less than or equal to 1",
        ),
        ("0,0,17.10,7.6e9,2.3e7,abc,163,0.095,0.001,3.50e-6,1.05e-8", "n_obs", "valid number"),
        ("0,0,nan,7.6e9,2.3e7,26600,163,0.095,0.001,3.50e-6,1.05e-8", "sqrt_s_mev", "finite"),
        (
            "-3,0,17.1,7.6e9,2.3e7,26600,163,0.095,0.001,3.50e-6,1.05e-8",
            "period",
            "greater than or equal to 0",
        ),
    ],
)
def test_bad_cell_names_line_column_reason(row: str, column: str, reason: str) -> None:
    with pytest.raises(ScanplanError) as info:
        parse_observed_csv(_csv(GOOD[1], row), "t.csv")
    msg = str(info.value)
    assert "t.csv: line 3:" in msg and f"column '{column}'" in msg and reason in msg
    assert "\n" not in msg


def test_every_bad_row_is_reported_on_one_line() -> None:
    bad = "5,0,17.10,0,2.3e7,26600,163,0.095,0.001,3.50e-6,1.05e-8"
    with pytest.raises(ScanplanError) as info:
        parse_observed_csv(_csv(bad, GOOD[0], bad.replace("5,", "6,", 1)), "t.csv")
    msg = str(info.value)
    assert "line 2:" in msg and "line 4:" in msg and "line 3" not in msg


def test_duplicate_period_header_and_cell_count() -> None:
    with pytest.raises(ScanplanError, match=r"period.*already used at line 2"):
        parse_observed_csv(_csv(GOOD[0], GOOD[0]), "t.csv")
    with pytest.raises(ScanplanError, match=r"missing column.*bkg_per_pot_err"):
        parse_observed_csv(_csv(header=HEADER.replace(",bkg_per_pot_err", "")))
    with pytest.raises(ScanplanError, match=r"unknown column.*colour"):
        parse_observed_csv(_csv(header=HEADER + ",colour"))
    with pytest.raises(ScanplanError, match="line 2: 10 cells"):
        parse_observed_csv(_csv(GOOD[0].rsplit(",", 1)[0]))


def test_energy_column_must_agree_with_sqrt_s() -> None:
    header = HEADER + ",energy_mev"
    ok = parse_observed_csv(_csv(GOOD[0] + ",285.6", header=header))
    assert ok.rows[0].energy_mev == 285.6
    with pytest.raises(ScanplanError, match=r"energy_mev.*gives sqrt"):
        parse_observed_csv(_csv(GOOD[0] + ",290.0", header=header))
    blank = parse_observed_csv(_csv(GOOD[0] + ",", header=header))
    assert blank.rows[0].energy_mev is None


def test_csv_and_parquet_round_trip(tmp_path) -> None:
    scan = parse_observed_csv(_csv(*GOOD), "t.csv")
    p_csv = write_observed_csv(tmp_path / "o.csv", scan)
    p_pq = write_observed_parquet(tmp_path / "o.parquet", scan)
    for p in (p_csv, p_pq):
        back = load_observed(p)
        assert back.rows == scan.rows


def test_parquet_bad_row_named_by_row_number(tmp_path) -> None:
    rows = list(parse_observed_csv(_csv(*GOOD)).rows)
    bad = rows[1].model_copy(update={"bkg_per_pot": -1.0})  # bypasses validation on purpose
    write_observed_parquet(tmp_path / "b.parquet", [rows[0], bad])
    with pytest.raises(ScanplanError, match=r"row 2: column 'bkg_per_pot'"):
        load_observed(tmp_path / "b.parquet")


def test_missing_file_and_empty(tmp_path) -> None:
    with pytest.raises(ScanplanError, match="no such file"):
        load_observed(tmp_path / "nope.csv")
    (tmp_path / "e.csv").write_text("# only a comment\n")
    with pytest.raises(ScanplanError, match="empty file"):
        load_observed(tmp_path / "e.csv")
    with pytest.raises(ScanplanError, match="no data rows"):
        parse_observed_csv(_csv())
    assert math.isclose(
        ObservedRow.model_validate(
            dict(zip(REQUIRED_COLUMNS, GOOD[0].split(","), strict=True))
        ).pot,
        7.6e9,
    )
