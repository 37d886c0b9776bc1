"""Re-planning during a scan on a simulated scan with a signal injected (issue 13, item 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beamline.kinematics import resonance_energy_mev
from scanplan.analysis.observed import write_observed_csv
from scanplan.analysis.replan import replan
from scanplan.analysis.simulate import simulate_scan
from scanplan.planning import PlanRequest, plan_scan, validate_plan
from scanplan.records import load_plan, save_plan
from tests.cli_helpers import assert_user_error, run_cli, run_cli_json

M_TRUE, G_TRUE = 16.90, 7e-4


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("replan")
    # 2022-like: two descending passes of 0.75 MeV combined spacing (facts 4), controls below
    plan = plan_scan(PlanRequest(energy_range_mev=(262.2, 299.0), step_mev=0.75, extrapolate=True))
    plan_path = d / "plan.json"
    save_plan(plan, plan_path)
    pts = sorted(plan.points, key=lambda p: p.period)
    taken = pts[: len(pts) // 2 + 3]  # first pass and the control block
    scan = simulate_scan(
        [p.e_beam_mev for p in taken],
        [-1 if p.kind == "control" else p.pass_index for p in taken],
        [p.target_pot for p in taken],
        np.random.default_rng(8),
        g=G_TRUE,
        mass_mev=M_TRUE,
        periods=[p.period for p in taken],
        source=str(d / "observed.csv"),
    )
    write_observed_csv(d / "observed.csv", scan)
    return load_plan(plan_path), scan, d


def test_replan_reallocates_the_remaining_budget_and_adds_points_at_the_excess(setup) -> None:
    plan, scan, _ = setup
    r = replan(plan, scan)
    info = r.info
    assert info.parent_sha256 == plan.content_sha256 and info.chain == [plan.content_sha256]
    assert info.max_local_significance > 2.0
    assert info.best_mass_mev == pytest.approx(M_TRUE, abs=0.1)
    new = [c for c in info.changes if c.action in ("kept", "added")]
    control_hours = sum(p.hours for p in plan.points if p.kind == "control")
    taken_ctl = {p.period for p in plan.points if p.kind == "control"} & set(scan.periods)
    left_ctl = control_hours - sum(plan.point(k).hours for k in taken_ctl)
    assert sum(c.hours_after for c in new) == pytest.approx(info.remaining_hours + left_ctl)
    added = [c for c in info.changes if c.action == "added"]
    assert added, "an excess above 2 sigma must get points of its own"
    e_best = resonance_energy_mev(info.best_mass_mev)
    for c in added:
        assert abs(c.e_beam_mev - e_best) <= 0.5 * plan.inputs.combined_step_mev + 1e-6
    assert info.power_after >= info.power_before
    assert not [p for p in validate_plan(r.plan) if p.level == "error"]
    # the points taken are the new plan's first periods, unchanged in energy
    taken = sorted(scan.periods)
    for k, period in enumerate(taken):
        assert r.plan.points[k].e_beam_mev == plan.point(period).e_beam_mev


def test_replan_cli_writes_a_chained_plan_and_rejects_bad_input(setup, tmp_path) -> None:
    plan, _, d = setup
    out = tmp_path / "new.json"
    res = run_cli_json(
        "replan", str(d / "plan.json"), "--observed", str(d / "observed.csv"), "-o", str(out)
    )
    new = load_plan(out)  # hash verified
    assert res["plan_sha256"] == new.content_sha256 and res["parent_sha256"] == plan.content_sha256
    assert new.inputs.replan is not None and new.inputs.replan.chain == [plan.content_sha256]
    human = run_cli(
        "replan", str(d / "plan.json"), "--observed", str(d / "observed.csv"), check=True
    )
    assert "re-allocated" in human.stdout and "changes" in human.stdout
    bad = tmp_path / "bad.csv"
    lines = (d / "observed.csv").read_text().splitlines()
    cells = lines[1].split(",")
    cells[0] = "999"
    bad.write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
    assert_user_error(
        run_cli("replan", str(d / "plan.json"), "--observed", str(bad)), "999", "not in the plan"
    )
    json.loads(out.read_text())


def test_new_points_join_the_running_pass_only_without_a_magnet_cycle(setup) -> None:
    from scanplan.analysis.replan import _passes_for

    plan, _, _ = setup
    pts = sorted(plan.points, key=lambda p: p.period)
    pass1 = [p for p in pts if p.pass_index == 1]
    # half of the second (descending) pass taken: it stands at pass1[k - 1]
    k = len(pass1) // 2
    taken = [p for p in pts if p.pass_index != 1] + pass1[:k]
    remaining = pass1[k:]
    here = pass1[k - 1].e_beam_mev
    below, above = here - 2.0, here + 2.0
    new_pass = max(p.pass_index for p in plan.points) + 1
    # below the current energy: ahead of a descending pass, same pass; above: a new pass
    assert _passes_for(plan, taken, remaining, [below, above]) == [1, new_pass]
