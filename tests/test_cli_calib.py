"""``scanplan calib``: rows per value, --json fields, one-line errors with exit 2."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from beamline.constants import ELECTRON_MASS_MEV

TIMEOUT_S = 60
REQUIRED = {"energy_mev", "sqrt_s_mev", "current_a", "field_g", "sigma_energy_mev", "calibration"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", "calib", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, "COLUMNS": "200"},
    )


def run_json(*args: str) -> list[dict]:
    proc = run(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_user_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and fragment in lines[0], lines[0]


def test_energy_from_currents_json() -> None:
    rows = run_json(
        "energy",
        "--current-a",
        "130.7,179,190.1",
        "--calibration",
        "btf_nominal_v1",
        "--scale",
        "none",
    )
    assert len(rows) == 3
    for row, current in zip(rows, (130.7, 179.0, 190.1), strict=True):
        assert REQUIRED <= set(row)
        assert row["current_a"] == current
        p = 1.56827918 * current + 1.49737969  # facts 3, nominal E_BTF(I) = p
        assert row["energy_mev"] == pytest.approx(math.hypot(p, ELECTRON_MASS_MEV), abs=1e-5)
        m = ELECTRON_MASS_MEV
        assert row["sqrt_s_mev"] == pytest.approx(math.sqrt(2 * m * m + 2 * m * row["energy_mev"]))
        assert row["calibration"].startswith("btf_nominal_v1@")


def test_energy_from_fields_and_current_for_energy() -> None:
    rows = run_json("energy", "--field-g", "5000,5100")
    assert [r["field_g"] for r in rows] == [5000.0, 5100.0]
    assert rows[0]["energy_mev"] == pytest.approx(0.0551318 * 5000 - 2.00, abs=1e-3)
    assert rows[0]["sigma_hysteresis_mev"] == 0.0
    cur = run_json("current", "--energy-mev", "282.27,283.02", "--branch", "descending")
    assert [r["energy_mev"] for r in cur] == [282.27, 283.02]
    assert cur[1]["current_a"] - cur[0]["current_a"] == pytest.approx(0.48, abs=0.01)  # facts 3
    assert all(
        r["branch"] == "descending" and r["calibration"].startswith("run3_desc_v2@") for r in cur
    )
    assert all(REQUIRED <= set(r) for r in cur)


def test_table_output_and_warnings() -> None:
    proc = run(
        "current", "--energy-mev", "282.27", "--magnet", "DHSTB02", "--relative-offset", "-0.006"
    )
    assert proc.returncode == 0, proc.stderr
    assert "DHSTB02 set current" in proc.stdout
    assert "warning: DHSTB02 has no Hall-probe calibration" in proc.stdout
    ext = run("energy", "--current-a", "200", "--extrapolate")
    assert ext.returncode == 0 and "warning: extrapolated" in ext.stdout


def test_history_command() -> None:
    proc = run("history", "--current-a", "180,179,180", "--standardised", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [s["branch"] for s in out["steps"]] == ["descending", "descending", "ascending"]
    assert out["steps"][2]["warnings"]
    assert out["recommended_sequence_a"] == [180.0, 179.0, 185.0, 180.0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("energy", "--current-a", "500"), "supply range 0..400 A"),
        (("energy", "--current-a", "120"), "130.66..190.132 A"),
        # facts 4: the 2022 scan's lowest and highest points, 206.6 and 300.1 MeV
        (("current", "--energy-mev", "330"), "calibrated range 206.59..300.14 MeV"),
        (("energy", "--current-a", "170", "--magnet", "DHSTB9"), "unknown magnet 'DHSTB9'"),
        (
            ("energy", "--current-a", "170", "--calibration", "v0"),
            "unknown dipole calibration 'v0'",
        ),
        (("energy", "--current-a", "170", "--scale", "v0"), "unknown energy scale 'v0'"),
        (("energy", "--current-a", "170", "--branch", "up"), "unknown branch 'up'"),
        (("energy", "--current-a", "abc"), "cannot read 'abc'"),
        (("energy",), "exactly one of --current-a or --field-g"),
        (("energy", "--field-g", "5000", "--branch", "ascending"), "--branch applies"),
        (("history", "--current-a", "170,900"), "supply range"),
    ],
)
def test_bad_input_exit_2(args: tuple[str, ...], fragment: str) -> None:
    assert_user_error(run(*args), fragment)


def test_help_does_not_import_xtrack() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from scanplan.cli.main import app\n"
        "r = CliRunner().invoke(app, ['calib', '--help'])\n"
        "assert r.exit_code == 0 and 'energy' in r.output, r.output\n"
        "assert 'xtrack' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert proc.returncode == 0, proc.stderr


def test_dhstb02_command() -> None:
    rows = run_json("dhstb02", "--energy-mev", "282.5,270")
    assert [r["energy_mev"] for r in rows] == [282.5, 270.0]
    for row in rows:
        # matched DHSTB01: the transmitted beam is centred on the energy, so the solution is
        # the calibration-nominal current (facts 3 curve) within the centroid's statistics
        # (0.02 A ~ 0.1 mm at the target)
        p = math.sqrt(row["energy_mev"] ** 2 - ELECTRON_MASS_MEV**2)
        assert row["current_a"] == pytest.approx((p / 0.0551318 - 27.16) / 28.446, abs=0.02)
        assert abs(row["x_target_mm"]) < 1e-4
        assert row["n_transmitted"] > 500
    assert_user_error(
        run("dhstb02", "--energy-mev", "282.5,283", "--dhstb01-current-a", "179.5"), "give one each"
    )


def test_readbacks_always_convert() -> None:
    """Issue 14: a Hall field converts to energy whatever the current calibration's range
    (E = 0.0551318 B - 2.00 MeV, facts 3); outside the data a warning, never a refusal."""
    rows = run_json("energy", "--field-g", "5480.4,3784,6000")
    for row, field in zip(rows, (5480.4, 3784.0, 6000.0), strict=True):
        e_magnet = math.hypot(0.0551318 * field, ELECTRON_MASS_MEV)
        assert row["energy_mev"] == pytest.approx(e_magnet - 2.00, abs=1e-9)
    assert [r["extrapolated"] for r in rows] == [False, False, True]
    assert rows[2]["warnings"]


def test_trusted_range_contains_the_2022_data() -> None:
    """Issue 14: the 2022 scan ran 130.66-190.132 A; both ends are inside every 2022 curve,
    and re-planning the on-resonance range 262.22-300.14 MeV (facts 4) needs no flag."""
    from beamline import calibration as cal

    for curve in cal.dipole_calibrations().calibrations.values():
        if curve.field_reference == "hall_probe":
            assert not curve.is_extrapolation(130.66) and not curve.is_extrapolation(190.132)
    out = subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", "plan", "--energy-mev", "262.22:300.14"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr
