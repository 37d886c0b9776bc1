"""``scanplan optics`` and the CLI's behaviour on bad input; ``--help`` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import assert_user_error, run_cli, run_cli_json

KEY_POINTS = [
    "SLTB2", "SLTB3", "SLTB4", "Q1", "Q2", "Q3", "Q4", "SLTB5",
    "DHSTB02 exit", "PADME target", "TimePix",
]  # fmt: skip


def test_help_does_not_import_xtrack():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['scanplan', '--help']\n"
        "try:\n"
        "    runpy.run_module('scanplan.cli.main', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('xtrack', 'xobjects', 'xpart', 'cpymad') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Usage" in proc.stdout
    assert "HEAVY=\n" in proc.stdout or proc.stdout.rstrip().endswith("HEAVY="), proc.stdout


def test_optics_json_rows_have_the_key_points():
    rows = run_cli_json("optics")
    assert [r["name"] for r in rows] == KEY_POINTS
    for row in rows:
        for key in ("name", "s_m", "betx_m", "bety_m", "alfx", "alfy", "dx_m", "dpx", "r16_m"):
            assert key in row
        assert row["betx_m"] > 0 and row["bety_m"] > 0
    s = [r["s_m"] for r in rows]
    assert s == sorted(s)


def test_optics_table_and_plot(tmp_path):
    png = tmp_path / "optics.png"
    proc = run_cli("optics", "--energy-mev", "270", "--plot", str(png), check=True)
    for name in ("SLTB4", "TimePix"):
        assert name in proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_energy_changes_matched_dipole_current():
    rows_270 = run_cli_json("optics", "--energy-mev", "270")
    rows_290 = run_cli_json("optics", "--energy-mev", "290")
    # quads keep their currents: the focusing, hence beta at Q4, depends on the energy
    q4_270 = next(r for r in rows_270 if r["name"] == "Q4")
    q4_290 = next(r for r in rows_290 if r["name"] == "Q4")
    assert q4_270["bety_m"] != pytest.approx(q4_290["bety_m"], rel=1e-3)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("optics", "--settings", "no_such"), ("unknown settings 'no_such'", "run3_2022")),
        (("optics", "--energy-mev", "900"), ("900", "25..550 MeV")),
        (("optics", "--energy-mev", "-5"), ("-5", "range")),
    ],
)
def test_bad_input_is_one_line_exit_2(args, fragments):
    assert_user_error(run_cli(*args), *fragments)
