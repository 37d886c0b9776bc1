"""``scanplan export`` run as the crew runs it (subprocess, fresh working directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cli_helpers import assert_user_error
from fixtures.plans import make_plan

from scanplan.records import save_plan


def run(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "SCANPLAN_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip


@pytest.fixture()
def plan_file(tmp_path):
    plan = make_plan(4)
    save_plan(plan, tmp_path / "plan.json")
    return plan


def test_runenergy_with_runs_file_to_output_file(tmp_path, plan_file):
    (tmp_path / "runs.txt").write_text("0 50284 50285\n3 50299\n")
    # an output folder must exist: the tool never creates one silently (issue 15)
    (tmp_path / "out").mkdir()
    proc = run(tmp_path, "export", "plan.json", "--format", "runenergy", "--runs", "runs.txt",
               "-o", "out/RunEnergy.txt")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "runenergy" in proc.stdout
    table = {
        int(a): float(b)
        for a, b in (ln.split() for ln in (tmp_path / "out/RunEnergy.txt").read_text().splitlines())
    }
    assert table == {
        50284: pytest.approx(plan_file.point(0).e_beam_mev, abs=5e-4),
        50285: pytest.approx(plan_file.point(0).e_beam_mev, abs=5e-4),
        50299: pytest.approx(plan_file.point(3).e_beam_mev, abs=5e-4),
    }
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["RunEnergy.txt"]  # no temp left


def test_stdout_and_json(tmp_path, plan_file):
    (tmp_path / "runs.txt").write_text("0 11\n1 12\n2 13\n3 14\n")
    proc = run(tmp_path, "export", "plan.json", "-f", "offline-db", "--table-format", "2025",
               "--runs", "runs.txt")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split("\t") for ln in proc.stdout.splitlines()]
    assert [len(r) for r in rows] == [49] * 4
    assert [int(r[45]) for r in rows] == [0, 1, 2, 3]
    data = json.loads(
        run(tmp_path, "export", "plan.json", "-f", "sor-tag", "--period", "2", "--json").stdout
    )
    assert data["format"] == "sor-tag" and data["plan_sha256"] == plan_file.content_sha256
    assert data["text"].split()[:3] == [
        "scanplan:v1",
        f"plan={plan_file.content_sha256[:12]}",
        "period=2",
    ]
    proc = run(tmp_path, "export", "plan.json", "-f", "mc-macro", "--quad-polarity", "-,+,-,+")
    assert proc.returncode == 0, proc.stderr
    grads = [
        float(ln.split()[1])
        for ln in proc.stdout.splitlines()
        if ln.startswith("/Detector/BeamLine/Q1_")
    ]
    assert len(grads) == 4 and all(g < 0 for g in grads)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["-f", "runenergy"], ["no run numbers known"]),
        (["-f", "xml"], ["unknown export format"]),
        (["-f", "offline-db", "--table-format", "1999"], ["unknown offline table format"]),
        (["-f", "csv", "--period", "17"], ["no point 17"]),
        (["-f", "runenergy", "--runs", "missing.txt"], ["runs file missing.txt not found"]),
        (["-f", "mc-macro", "--quad-polarity", "+,+"], ["quad polarity"]),
        (["-f", "csv", "--store", "nostore.sqlite"], ["does not exist"]),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, plan_file, args, fragments):
    assert_user_error(run(tmp_path, "export", "plan.json", *args), *fragments)


def test_hand_edited_plan_is_refused_and_output_untouched(tmp_path, plan_file):
    path = tmp_path / "plan.json"
    doc = json.loads(path.read_text())
    doc["points"][1]["e_beam_mev"] += 0.5
    path.write_text(json.dumps(doc))
    (tmp_path / "old.csv").write_text("previous export\n")
    proc = run(tmp_path, "export", "plan.json", "-f", "csv", "-o", "old.csv")
    assert_user_error(proc, "content hash mismatch")
    assert (tmp_path / "old.csv").read_text() == "previous export\n"
    assert_user_error(run(tmp_path, "export", "absent.json", "-f", "csv"), "not found")
