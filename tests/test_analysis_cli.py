"""``scanplan analyse`` end to end on a simulated observed table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scanplan.analysis.observed import write_observed_csv
from scanplan.analysis.simulate import run3_like_points, simulate_scan
from tests.cli_helpers import assert_user_error, run_cli, run_cli_json


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> str:
    e, parts = run3_like_points()
    # control points below resonance (facts 4: 5 points at 206.6-212.7 MeV)
    e = np.concatenate([e, np.linspace(206.6, 212.7, 5)])
    parts = [*parts, -1, -1, -1, -1, -1]
    scan = simulate_scan(e, parts, 7.6e9, np.random.default_rng(7), g=6e-4, mass_mev=16.95)
    path = tmp_path_factory.mktemp("obs") / "observed.csv"
    write_observed_csv(path, scan)
    return str(path)


def test_analyse_json_finds_the_injected_signal(observed: str, tmp_path) -> None:
    plot = tmp_path / "a.png"
    out = run_cli_json("analyse", observed, "--mass-mev", "16.5:17.4:0.05", "--plot", str(plot))
    assert out["points_used"] == 46 and out["points_skipped_control"] == 5
    assert out["global_significance"] is None
    best = out["best_fit"]
    assert best["mass_mev"] == pytest.approx(16.95, abs=0.1)
    assert best["g"] == pytest.approx(6e-4, rel=0.3)
    assert out["max_local_significance"] > 4.0
    assert len(out["scan"]) == 19
    row = out["scan"][0]
    assert set(row) >= {
        "mass_mev",
        "local_significance",
        "observed_limit_g",
        "expected_limit_g",
        "expected_band_g",
    }
    for r in out["scan"]:
        b = r["expected_band_g"]
        assert b["minus2"] < b["minus1"] < r["expected_limit_g"] < b["plus1"] < b["plus2"]
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_analyse_human_output(observed: str) -> None:
    proc = run_cli("analyse", observed, "--mass-mev", "16.9,17.0", check=True)
    assert "best fit: M =" in proc.stdout and "upper limits on g" in proc.stdout


def test_analyse_bad_inputs_exit_2(tmp_path, observed: str) -> None:
    bad = tmp_path / "bad.csv"
    text = Path(observed).read_text().splitlines()
    cells = text[3].split(",")
    cells[3] = "-5"  # pot
    text[3] = ",".join(cells)
    bad.write_text("\n".join(text) + "\n")
    assert_user_error(run_cli("analyse", str(bad)), "line 4", "pot")
    assert_user_error(run_cli("analyse", str(tmp_path / "missing.csv")), "no such file")
    assert_user_error(run_cli("analyse", observed, "--mass-mev", "17:16:0.1"), "--mass-mev")
    assert_user_error(run_cli("analyse", observed, "--toys", "-3"), "--toys")


def test_analyse_with_toys_gives_a_global_significance(observed: str) -> None:
    out = run_cli_json(
        "analyse", observed, "--mass-mev", "16.6:17.2:0.05", "--toys", "20", "--scheduler", "sync"
    )
    gs = out["global_significance"]
    assert gs is not None and gs <= out["max_local_significance"]
    assert out["global"]["n_toys"] == 20 and 0 < out["global"]["p_value"] <= 1


def test_sensitivity_uses_the_published_likelihood_with_bands(tmp_path) -> None:
    plan = tmp_path / "p.json"
    run_cli("plan", "--energy-mev", "275:290", "--control", "none", "-o", str(plan), check=True)
    out = run_cli_json("sensitivity", str(plan), "--masses-mev", "16.8,16.9")
    assert out["likelihood"] == "published"
    r = out["limits"][0]
    assert r["g_upper_limit_minus2sigma"] < r["g_upper_limit_minus1sigma"] < r["g_upper_limit"]
    assert r["g_upper_limit"] < r["g_upper_limit_plus1sigma"] < r["g_upper_limit_plus2sigma"]
    simple = run_cli_json(
        "sensitivity", str(plan), "--masses-mev", "16.8,16.9", "--likelihood", "simple"
    )
    assert (
        simple["likelihood"] == "simple"
        and simple["limits"][0]["g_upper_limit"] < r["g_upper_limit"]
    )
    assert_user_error(run_cli("sensitivity", str(plan), "--likelihood", "fancy"), "likelihood")
