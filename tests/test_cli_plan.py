"""The planning commands as the crew runs them: plan -> show -> validate -> sensitivity ->
optimise -> compare, yield; bad input gives one line, exit 2 and no file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from cli_helpers import assert_user_error, run_cli, run_cli_json

M_E = 0.51099895


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    """Under pytest the C-level environment carries COLUMNS=80 (not visible in os.environ);
    the subprocess CLI would wrap its one-line errors and tables at 80 columns."""
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    mp = pytest.MonkeyPatch()
    mp.setenv("COLUMNS", "250")
    proc = run_cli(
        "plan", "--mass-mev", "16.4:17.5", "-o", str(path), "--name", "A",
        "--start-utc", "2026-03-01T08:00Z", check=True,
    )  # fmt: skip
    mp.undo()
    assert "plan written to" in proc.stdout
    return path


def test_plan_document_is_canonical_and_complete(plan_file) -> None:
    doc = json.loads(plan_file.read_text())
    # schema 2: typed PlanInputs (issue 11); schema-1 plans are refused with a clear message
    assert doc["schema_version"] == 2 and len(doc["content_sha256"]) == 64
    assert doc["provenance"]["calibration_version"] and doc["provenance"]["energy_scale_version"]
    assert doc["inputs"]["range_kind"] == "mass" and doc["inputs"]["range_mev"] == [16.4, 17.5]
    p0 = doc["points"][0]
    for key in ("e_beam_mev", "sqrt_s_mev", "dhstb01_current_a", "dhstb02_current_a", "branch",
                "calibration", "target_pot", "signal_yield_per_pot_g2", "expected_signal_ref"):  # fmt: skip
        assert key in p0
    assert p0["sqrt_s_mev"] == pytest.approx(17.5)


def test_show_validate_sensitivity(plan_file, tmp_path) -> None:
    png = tmp_path / "points.png"
    shown = run_cli_json("show", str(plan_file), "--plot", str(png))
    assert png.stat().st_size > 10_000
    assert shown["points"][0]["start_utc"] == "2026-03-01T08:30:00Z"
    v = run_cli_json("validate", str(plan_file))
    assert v["valid"] is True
    table = run_cli("show", str(plan_file), check=True)
    assert (
        "Scan plan A" in table.stdout and "DHSTB01" in table.stdout and "descending" in table.stdout
    )
    sens_png = tmp_path / "sens.png"
    sens = run_cli_json("sensitivity", str(plan_file), "--plot", str(sens_png))
    assert sens_png.exists()
    g = [r["g_upper_limit"] for r in sens["limits"]]
    assert all(1e-4 < x < 1e-3 for x in g)  # facts 5: coupling grid 1-8e-4
    assert sens["covered_sqrt_s_mev"][0] == pytest.approx(16.4, abs=0.05)


def test_hand_edited_plan_is_rejected(plan_file, tmp_path) -> None:
    edited = tmp_path / "edited.json"
    doc = json.loads(plan_file.read_text())
    doc["points"][3]["target_pot"] *= 2
    edited.write_text(json.dumps(doc, indent=2))
    assert_user_error(run_cli("validate", str(edited)), "modified")
    assert_user_error(run_cli("show", str(edited)), "content hash")


def test_optimise_and_compare(plan_file, tmp_path) -> None:
    out = tmp_path / "opt.json"
    res = run_cli_json("optimise", str(plan_file), "--window-mev", "16.88+-0.15", "-o", str(out))
    assert res["after_mean_g"] < res["uniform_mean_g"]
    assert res["window_mev"] == pytest.approx([16.73, 17.03])
    assert run_cli_json("validate", str(out))["valid"] is True
    cmp_png = tmp_path / "cmp.png"
    c = run_cli_json("compare", str(plan_file), str(out), "--plot", str(cmp_png))
    rows = {r["metric"]: r for r in c["rows"]}
    assert rows["points"]["a"] == rows["points"]["b"]
    assert cmp_png.exists()
    text = run_cli("compare", str(plan_file), str(out), check=True).stdout
    assert "mean_expected_g_limit" in text


def test_yield_json() -> None:
    y = run_cli_json("yield", "--mass-mev", "17.0", "--energy-mev", "282.27", "--bes", "0.0025")
    assert y["sqrt_s_mev"] == pytest.approx(math.sqrt(2 * M_E**2 + 2 * M_E * 282.27), rel=1e-7)
    assert y["signal_yield_per_pot_g2"] > 0
    assert y["selected_signal_per_pot_g2"] == pytest.approx(
        y["signal_efficiency"] * y["signal_yield_per_pot_g2"]
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--energy-mev", "10:20"), "outside what the line delivers"),
        (("--mass-mev", "16.4:17.5", "--budget-hours", "3"), "too small"),
        (("--mass-mev", "17.5:16.4"), "low <= high"),
        (("--mass-mev", "abc"), "--mass-mev"),
        (("--energy-mev", "262.2:310", "--control", "none"), "extrapolat"),
    ],
)
def test_bad_plan_input_writes_nothing(tmp_path, args, fragment) -> None:
    out = tmp_path / "never.json"
    assert_user_error(run_cli("plan", *args, "-o", str(out)), fragment)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_invalid_plan_exits_2_listing_problems(plan_file, tmp_path) -> None:
    from scanplan.records import load_plan, save_plan

    plan = load_plan(plan_file)
    pts = sorted(plan.points, key=lambda p: p.period)
    bad = [
        pts[0].model_copy(update={"dhstb01_current_a": pts[1].dhstb01_current_a - 0.0}),
        *pts[1:],
    ]
    path = save_plan(plan.model_copy(update={"points": bad}), tmp_path / "bad.json")
    proc = run_cli("validate", str(path), "--json")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False and any(p["check"] == "hysteresis" for p in doc["problems"])
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1


def test_sweep_and_toys_from_the_command_line(plan_file) -> None:
    rows = run_cli_json(
        "sweep", "--mass-mev", "16.6:17.2", "--control", "none", "--budget-hours", "300",
        "--vary", "passes=1,2", "--window-mev", "16.88+-0.15", "--scheduler", "sync",
    )  # fmt: skip
    assert [r["passes"] for r in rows] == [1, 2] and all(r["error"] == "" for r in rows)
    sens = run_cli_json(
        "sensitivity", str(plan_file), "--toys", "40", "--toy-masses", "2",
        "--couplings", "2e-4,5e-4,8e-4", "--scheduler", "sync",
    )  # fmt: skip
    toys = sens["toys"]
    assert np.array(toys["cls"]).shape == (2, 3)
    assert all(0.0 <= c <= 1.0 for row in toys["cls"] for c in row)
    assert_user_error(run_cli("sweep", "--mass-mev", "16.6:17.2", "--vary", "passes=x"), "passes")


def test_help_shows_the_defaults_of_the_data_files(tmp_path, monkeypatch) -> None:
    """Defaults are read from lattices/physics (their one home), not repeated in help texts."""
    from fixtures.lattices import private_lattices, replace_in_file

    from scanplan.physics.params import load_physics, load_scan_defaults

    with private_lattices(tmp_path, monkeypatch, (load_scan_defaults, load_physics)) as root:
        replace_in_file(root / "physics" / "scan_defaults.toml", "passes = 2", "passes = 3")
        replace_in_file(
            root / "physics" / "scan_defaults.toml", "min_hours = 1.0", "min_hours = 2.5"
        )
        replace_in_file(
            root / "physics" / "padme_x17_run3.toml", "default_bes = 0.0025", "default_bes = 0.003"
        )
        plan_help = run_cli("plan", "--help", check=True).stdout
        optimise_help = run_cli("optimise", "--help", check=True).stdout
    assert "[default: 3]" in plan_help and "model's, 0.003" in plan_help
    assert "[default: 2.5]" in optimise_help
