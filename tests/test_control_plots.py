"""Control-room figures: ``scanplan check --plot`` (the checked spot on the TimePix with the
tolerance ellipses) and ``scanplan show --store`` (POT recorded vs planned, suspensions).

The spot figure is checked on its artists against the verdict's own records (centres = model
prediction + reference offset, semi-axes = the comparison's tolerances) and the TimePix chip
layout of the facts (2 x 6 chips of 256 x 55 um); the progress numbers against the values
put into the store by the test."""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_user_error, run_cli
from fixtures import facility as fx
from fixtures import fake_btf as fb
from matplotlib.patches import Ellipse, Rectangle

from scanplan.plots.control import plot_check, spot_figure
from scanplan.records import save_plan

facility = fx.facility  # fixture
fake_btf = fb.fake_btf  # fixture
plan = fx.plan  # fixture
predictor = fx.predictor  # fixture
tolerances = fx.tolerances  # fixture
store = fx.store  # fixture

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHIP_MM = 256 * 0.055  # facts 7: Timepix3 chips of 256 x 256 pixels of 55 um


def test_spot_figure_draws_prediction_tolerances_and_measurement(fake_btf, plan, tmp_path):
    fake_btf.offsets_a["DHSTB002"] = 0.4
    # the set point off the plan too: the two predictions have their own centres
    fake_btf.psu.set_currents({"DHSTB002": plan.point(0).dhstb02_current_a + 0.2})
    fake_btf.clock.advance(1.0)
    v = fake_btf.checker().check(plan, 0)
    fig = spot_figure(v)
    ax = fig.axes[0]
    chips = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(chips) == 12
    assert all(p.get_width() == pytest.approx(CHIP_MM) for p in chips)
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    ref = (v.prediction.reference_x_mm, v.prediction.reference_y_mm)
    for key, spot in (
        ("plan", v.prediction.plan),
        ("measured currents", v.prediction.measured_currents),
    ):
        cx = v.comparison(f"TimePix x vs model ({key})")
        cy = v.comparison(f"TimePix y vs model ({key})")
        centre = (spot.x_timepix_mm + ref[0], spot.y_timepix_mm + ref[1])
        assert centre == pytest.approx((cx.expected, cy.expected))
        around = [e for e in ellipses if e.center == pytest.approx(centre)]
        widths = [w for e in sorted(around, key=lambda e: e.width) for w in (e.width, e.height)]
        assert widths == pytest.approx([2 * cx.warn, 2 * cy.warn, 2 * cx.fail, 2 * cy.fail])
    m = v.beam_spot
    measured = [e for e in ellipses if e.center == pytest.approx((m.x_mm, m.y_mm))]
    assert measured and measured[0].width == pytest.approx(2 * m.sigma_x_mm)
    # the implied DHSTB02 current is written on the figure
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "A on DHSTB02" in texts
    assert "FAIL" in ax.get_title()
    out = plot_check(v, tmp_path / "spot.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_spot_figure_says_no_beam(fake_btf, plan):
    fake_btf.timepix.no_beam()
    v = fake_btf.checker().check(plan, 0)
    ax = spot_figure(v).axes[0]
    assert "no beam spot measured" in " ".join(t.get_text() for t in ax.texts)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("", "is a directory"), ("spot.xyz", "unknown image type"), ("no/spot.png", "does not exist")],
)
def test_check_plot_path_is_refused_before_any_work(tmp_path, plan, name, fragment):
    path = save_plan(plan, tmp_path / "plan.json")
    target = tmp_path / name if name else tmp_path
    # no memcached anywhere: the path is refused before anything is contacted
    proc = run_cli(
        "check",
        "--plan",
        str(path),
        "--point",
        "0",
        "--memcached",
        "127.0.0.1:1",
        "--plot",
        str(target),
    )
    assert_user_error(proc, fragment)
    assert not (tmp_path / "no").exists()


def test_show_store_reports_pot_taken_and_suspensions(tmp_path, plan, store):
    path = save_plan(plan, tmp_path / "plan.json")
    sha = plan.content_sha256
    store.record_plan(plan)
    # period 0: two runs with recorded POT, done; period 1: one run, no POT, open
    store.append("run_started", plan_sha256=sha, period=0, run_number=501, payload={})
    store.append("measured", plan_sha256=sha, period=0, run_number=501, payload={"pot": 3.0e9})
    store.append("run_started", plan_sha256=sha, period=0, run_number=502, payload={})
    store.append("measured", plan_sha256=sha, period=0, run_number=502, payload={"runPOT": 4.5e9})
    store.append("run_stopped", plan_sha256=sha, period=0, run_number=502, payload={})
    store.append("point_done", plan_sha256=sha, period=0, payload={"runs": [501, 502]})
    store.append("run_started", plan_sha256=sha, period=1, run_number=503, payload={})
    out = tmp_path / "progress.png"
    proc = run_cli("show", str(path), "--store", str(store.path), "--plot", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    rows = {r["period"]: r for r in doc["progress"]}
    assert rows[0]["recorded_pot"] == pytest.approx(7.5e9)
    assert rows[0]["planned_pot"] == pytest.approx(plan.point(0).target_pot)
    assert rows[0]["done"] is True
    assert rows[1]["recorded_pot"] is None and rows[1]["done"] is False
    assert all(r["suspensions"] == 0 for r in rows.values())
    assert out.read_bytes()[:8] == PNG_MAGIC
    # human output names what is missing
    proc = run_cli("show", str(path), "--store", str(store.path))
    assert proc.returncode == 0, proc.stderr
    assert "not recorded" in proc.stdout and "done" in proc.stdout


def test_show_store_refuses_a_missing_store_or_another_plan(tmp_path, plan, store):
    path = save_plan(plan, tmp_path / "plan.json")
    assert_user_error(
        run_cli("show", str(path), "--store", str(tmp_path / "nope.sqlite")), "does not exist"
    )
    store.append("measured", payload={"pot": 1.0})  # a store without this plan
    assert_user_error(run_cli("show", str(path), "--store", str(store.path)), "no record of plan")


def test_check_plot_on_the_simulator(facility, plan, tmp_path):
    """``scanplan check --plot`` as the crew runs it, on the model-driven simulator."""
    import subprocess
    import sys

    from fixtures.facility import sim_env

    path = save_plan(plan, tmp_path / "plan.json")
    out = tmp_path / "spot.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanplan.cli.main",
            "check",
            "--plan",
            str(path),
            "--point",
            "0",
            "--plot",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=sim_env(facility, tmp_path / "runs.sqlite"),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["plot"] == str(out)
    assert out.read_bytes()[:8] == PNG_MAGIC
