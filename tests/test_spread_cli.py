"""``scanplan spread``: JSON rows, table and plot files, one-line errors with exit 2."""

from __future__ import annotations

import pandas as pd
import pytest
from cli_helpers import assert_user_error, run_cli, run_cli_json

REQUIRED = (
    "energy_mev", "sltb2_mm", "sltb3_mm", "sltb4_mm", "sltb5_mm", "transmission",
    "rel_spread_rms", "rel_spread_fwhm", "mean_energy_mev",
)  # fmt: skip
FAST = ("--particles", "3000", "--scheduler", "sync")


def test_json_rows_cover_every_energy_and_gap(tmp_path):
    out, plot = tmp_path / "t.parquet", tmp_path / "p.png"
    rows = run_cli_json(
        "spread", "--energy-mev", "280:282:1", "--sltb4-mm", "0.5:1.5:0.5",
        "--sltb2-mm", "1.74,3", *FAST, "--out", str(out), "--plot", str(plot),
    )  # fmt: skip
    assert len(rows) == 3 * 3 * 2
    for row in rows:
        for key in REQUIRED:
            assert key in row
        assert 0 <= row["transmission"] <= 1
    assert {r["energy_mev"] for r in rows} == {280.0, 281.0, 282.0}
    assert {r["sltb4_mm"] for r in rows} == {0.5, 1.0, 1.5}
    table = pd.read_parquet(out)
    assert len(table) == len(rows)
    assert plot.stat().st_size > 10_000


def test_human_table_and_csv(tmp_path):
    out = tmp_path / "t.csv"
    proc = run_cli("spread", "--sltb4-mm", "1.9", *FAST, "--out", str(out), check=True)
    assert "black absorbers" in proc.stdout
    assert "Energy spread and transmission" in proc.stdout
    assert len(pd.read_csv(out)) == 1


def test_empty_beam_gives_null_spread_in_json():
    rows = run_cli_json(
        "spread", "--sltb4-mm", "0.0001", "--particles", "500", "--scheduler", "sync"
    )
    assert rows[0]["transmission"] == 0
    assert rows[0]["rel_spread_rms"] is None and rows[0]["rel_spread_fwhm"] is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--sltb4-mm", "0"), "must be > 0"),
        (("--sltb4-mm", "-1:2:1"), "must be > 0"),
        (("--sltb4-mm", "60"), "wider than the chamber"),
        (("--sltb3-mm", "1:0.5:0.1"), "--sltb3-mm"),
        (("--energy-mev", "900"), "outside the line's range"),
        (("--particles", "0"), "--particles"),
        (("--jaws", "SLTB4=1:-1"), "must be above"),
        (("--jaws", "SLTB9=1:2"), "unknown slit"),
        (("--out", "table.xlsx"), ".csv"),
        (("--measure", "mean"), "--measure"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, fragment):
    assert_user_error(run_cli("spread", *FAST, *args), fragment)


def test_output_folder_must_exist(tmp_path):
    proc = run_cli("spread", *FAST, "--out", str(tmp_path / "no" / "t.csv"))
    assert_user_error(proc, "does not exist")
