"""The run-level offline table read the way PADME's OfflineServer reads it: a C++ program
(tests/fixtures/cxx/offline_reader.cc) that extracts every column with ``>>`` into the
types of PADME's ``RunInfo`` (int, long long, float, double), compiled with g++ here.

Expected values come from the plan, the store and the facts file (the BTF nominal
excitation p = 1.56827918 I + 1.49737969 MeV, facts 3), never from the exporter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures.plans import make_plan

from scanplan.errors import ScanplanError
from scanplan.exports import offline_table, write_offline_db
from scanplan.records import save_plan
from scanplan.store.base import KIND_MEASURED, KIND_RUN_STARTED, KIND_RUN_STOPPED
from scanplan.store.sqlite import SQLiteStore

READER_SRC = Path(__file__).parent / "fixtures" / "cxx" / "offline_reader.cc"
RUNS = {0: [50284, 50285], 2: [50290], 3: [50301]}
STARTS = {50284: 1665648193, 50285: 1665651845, 50290: 1665700000, 50301: 1665800000}
STOPS = {50284: 1665651800, 50285: 1665659871, 50290: 1665760000}  # 50301 never stopped
MEASURED = {
    50284: {"runPOT": 6.9e9, "tgx": -0.3882, "tgy": -2.284, "nFiles": 3060, "LGCorr": 0.906658},
    50285: {"pot": 1.84e9, "E1E2": 272.752093265274},
}


def iso(t: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.fail("g++ is needed for PADME's reader (scripts/test.sh installs it)")
    exe = tmp_path_factory.mktemp("cxx") / "offline_reader"
    subprocess.run([gxx, "-O1", "-o", str(exe), str(READER_SRC)], check=True, timeout=120)
    return exe


def read_cxx(reader: Path, path: Path, ncols: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(reader), str(path), str(ncols)], capture_output=True, text=True, timeout=20
    )


def rows_of(proc: subprocess.CompletedProcess, ncols: int) -> dict[int, list[str]]:
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split() for ln in proc.stdout.splitlines()]
    assert all(len(r) == ncols for r in rows)
    return {int(r[0]): r for r in rows}


def nominal_label(current_a: float) -> float:
    return 1.56827918 * current_a + 1.49737969  # facts 3, BTF nominal excitation


def f32(x: float | str) -> float:
    """The float PADME's ``float`` member holds (text printed with 9 digits reads back)."""
    return float(np.float32(float(x)))


@pytest.fixture()
def store(tmp_path):
    plan = make_plan(5)
    st = SQLiteStore(tmp_path / "runs.sqlite")
    st.record_plan(plan)
    sha = plan.content_sha256
    for period, runs in RUNS.items():
        for run in runs:
            st.append(KIND_RUN_STARTED, plan_sha256=sha, period=period, run_number=run,
                      payload={"start_time_utc": iso(STARTS[run])})  # fmt: skip
            if run in STOPS:
                st.append(KIND_RUN_STOPPED, plan_sha256=sha, period=period, run_number=run,
                          payload={"outcome": "stopped"}, time_utc=iso(STOPS[run]))  # fmt: skip
            if run in MEASURED:
                st.append(KIND_MEASURED, plan_sha256=sha, period=period, run_number=run,
                          payload=MEASURED[run])  # fmt: skip
    save_plan(plan, tmp_path / "plan.json")
    return plan, st


def export_cli(tmp_path, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SCANPLAN_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", "export", "plan.json", "-f", "offline-db",
         "--store", "runs.sqlite", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(("table_format", "ncols"), [("2022", 47), ("2025", 49)])
def test_every_column_read_by_padme_types(tmp_path, reader, store, table_format, ncols):
    plan, _ = store
    proc = export_cli(tmp_path, "--table-format", table_format, "-o", "offline.txt")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "offline.txt").read_text()
    # the real file's layout: tabs, no header, integer times, 2-decimal energies
    assert not text.startswith("#") and all(ln.count("\t") == ncols - 1 for ln in text.splitlines())
    rows = rows_of(read_cxx(reader, tmp_path / "offline.txt", ncols), ncols)
    assert sorted(rows) == sorted(r for rs in RUNS.values() for r in rs)
    for period, runs in RUNS.items():
        pt = plan.point(period)
        for run in runs:
            r = rows[run]
            assert int(r[1]) == STARTS[run] and int(r[2]) == STOPS.get(run, 0)
            assert f32(r[3]) == f32(round(pt.e_beam_mev, 2))
            label = nominal_label(pt.dhstb02_current_a)
            if table_format == "2025":
                # facts 4b: 5-6 % above DHSTB01Energy in 2025; the assumed scale is the middle
                # (1.055) on a DHSTB02 current 0.5 % below DHSTB01's in this fixture
                assert f32(r[4]) == f32(round(1.055 * label, 2))
                assert 1.04 * float(r[3]) < float(r[4]) < 1.06 * float(r[3])
            else:
                assert f32(r[4]) == f32(round(label, 2))
                assert 0.991 * float(r[3]) < float(r[4]) < 0.997 * float(r[3])  # 0.3-0.9 % below
            m = {("runPOT" if k == "pot" else k): v for k, v in MEASURED.get(run, {}).items()}
            assert int(r[5]) == m.get("nFiles", 0)
            assert float(r[6]) == m.get("runPOT", 0.0)  # double: exact
            assert f32(r[9]) == f32(m.get("tgx", 0.0)) and f32(r[10]) == f32(m.get("tgy", 0.0))
            assert f32(r[37]) == f32(m.get("E1E2", 0.0))
            others = [float(x) for i, x in enumerate(r[7:45], 7) if i not in (9, 10, 37)]
            assert others == [0.0] * len(others)
            assert int(r[45]) == period
            assert f32(r[46]) == f32(m.get("LGCorr", 1.0))  # unknown LGCorr: 1.0
            if ncols == 49:
                assert r[47:] == ["0", "0"]


def test_planned_pot_only_when_asked_and_marked(tmp_path, reader, store):
    plan, _ = store
    proc = export_cli(tmp_path, "--pot", "planned", "--json", "-o", "t.txt")
    assert proc.returncode == 0, proc.stderr
    import json

    summary = json.loads(proc.stdout)
    assert summary["planned_pot_runs"] == [50290, 50301]
    assert "PLANNED" in proc.stderr and "50290" in proc.stderr
    rows = rows_of(read_cxx(reader, tmp_path / "t.txt", 47), 47)
    assert float(rows[50290][6]) == plan.point(2).target_pot  # one run at period 2
    assert float(rows[50284][6]) == 6.9e9  # recorded POT wins
    default = json.loads(export_cli(tmp_path, "--json").stdout)
    assert default["planned_pot_runs"] == [] and default["missing_pot_runs"] == [50290, 50301]


def test_reader_rejects_what_padme_cannot_read(tmp_path, reader, store):
    plan, _ = store
    good = write_offline_db(plan, RUNS)
    bad_header = offline_table(plan, RUNS, comment_header=True).text
    bad_float_time = good.replace("\t0\t0\t", "\t0.0\t0.0\t", 1)
    assert bad_float_time != good
    for name, text in (("header", bad_header), ("float-time", bad_float_time)):
        (tmp_path / name).write_text(text)
        proc = read_cxx(reader, tmp_path / name, 47)
        assert proc.returncode == 3, (name, proc.stdout, proc.stderr)
    (tmp_path / "good").write_text(good)
    assert len(rows_of(read_cxx(reader, tmp_path / "good", 47), 47)) == sum(map(len, RUNS.values()))


def test_refuses_without_runs_and_help_warns(tmp_path):
    plan = make_plan(3)
    with pytest.raises(ScanplanError, match="needs run numbers"):
        write_offline_db(plan, None)
    save_plan(plan, tmp_path / "plan.json")
    env = {k: v for k, v in os.environ.items() if k != "SCANPLAN_STORE"}
    proc = subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", "export", "plan.json", "-f", "offline-db"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and not proc.stdout
    help_text = subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", "export", "--help"],
        capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "200"},
    ).stdout  # fmt: skip
    assert "--comment-header" in help_text and "does NOT accept" in help_text
