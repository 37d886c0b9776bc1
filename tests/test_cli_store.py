"""``scanplan store`` commands (subprocess) with the SQLite store and a real PadmeDAQ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from cli_helpers import assert_user_error
from fixtures.net import free_port
from fixtures.padmedaq import create_user, padmedaq_database, query
from fixtures.plans import make_plan

from scanplan.records import save_plan


def run(tmp_path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCANPLAN_", "PADME_DB_"))}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip


def run_json(tmp_path, *args, env_extra=None):
    proc = run(tmp_path, *args, "--json", env_extra=env_extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def dbname(mariadb_server):
    with padmedaq_database(mariadb_server, runs=(50284, 50285)) as name:
        yield name


def _env(server, dbname, user=None, password=None):
    return {
        "PADME_DB_HOST": server.host,
        "PADME_DB_PORT": str(server.port),
        "PADME_DB_USER": user or server.user,
        "PADME_DB_PASSWD": password or server.password,
        "PADME_DB_NAME": dbname,
    }


def test_record_history_and_export_from_store(tmp_path):
    plan = make_plan(3)
    save_plan(plan, tmp_path / "plan.json")
    out = run_json(tmp_path, "store", "record-plan", "plan.json")
    assert out["new_events"] == 3 and out["store"] == "scanplan_runs.sqlite"
    assert run_json(tmp_path, "store", "record-plan", "plan.json")["new_events"] == 0
    sha = plan.content_sha256
    ev = run_json(
        tmp_path, "store", "record-run", "--plan", sha[:8], "--period", "2", "--run", "50290"
    )
    again = run_json(
        tmp_path, "store", "record-run", "--plan", "plan.json", "--period", "2", "--run", "50290"
    )
    assert ev[0]["id"] == again[0]["id"] and again[0]["created"] is False
    run_json(tmp_path, "store", "append", "measured", "--plan", sha[:8], "--period", "2",
             "--run", "50290", "--payload", '{"runPOT": 8.5e9}')  # fmt: skip
    hist = run_json(tmp_path, "store", "history", "--period", "2")
    assert [h["kind"] for h in hist] == ["planned", "run_started", "measured"]
    # runs and measured values flow from the store into the exports
    text = run(tmp_path, "export", "plan.json", "-f", "runenergy").stdout
    assert text.split() == ["50290", f"{plan.point(2).e_beam_mev:.3f}"]
    row = run(tmp_path, "export", "plan.json", "-f", "offline-db").stdout.split()
    assert int(row[0]) == 50290 and float(row[6]) == 8.5e9 and int(row[45]) == 2
    # applied energies: refused while a run has none, used once recorded
    assert_user_error(
        run(tmp_path, "export", "plan.json", "-f", "runenergy", "--energy", "applied"),
        "no applied e_beam_mev recorded for run(s) 50290",
    )
    run_json(tmp_path, "store", "append", "applied", "--plan", "plan.json", "--period", "2",
             "--run", "50290", "--payload", '{"e_beam_mev": 286.9876}')  # fmt: skip
    text = run(tmp_path, "export", "plan.json", "-f", "runenergy", "--energy", "applied").stdout
    assert text.split() == ["50290", "286.988"]
    row = run(tmp_path, "export", "plan.json", "-f", "offline-db", "--energy", "applied").stdout
    assert row.split()[3] == "286.99"  # 2 decimals, as PADME's table
    for columns in (80, 120):  # readable on a crew terminal: no column squeezed away
        human = run(tmp_path, "store", "history", "--latest", env_extra={"COLUMNS": str(columns)})
        assert human.returncode == 0, human.stderr
        lines = human.stdout.splitlines()
        assert max(len(line.rstrip()) for line in lines) <= columns
        header = next(line for line in lines if "kind" in line)
        assert header.split() == ["id", "kind", "plan", "period", "run", "time", "(UTC)", "payload"]
        assert "run_started" in human.stdout and "50290" in human.stdout


def test_store_bad_input(tmp_path):
    plan = make_plan(2)
    save_plan(plan, tmp_path / "plan.json")
    assert_user_error(run(tmp_path, "store", "history"), "does not exist")
    run_json(tmp_path, "store", "record-plan", "plan.json")
    assert_user_error(
        run(tmp_path, "store", "append", "measured", "--payload", "{bad"), "not valid JSON"
    )
    assert_user_error(
        run(tmp_path, "store", "record-run", "--plan", "abcdef12", "--period", "0", "--run", "1"),
        "no plan abcdef12",
    )
    assert_user_error(
        run(tmp_path, "store", "record-run", "--plan", "plan.json", "--period", "9", "--run", "1"),
        "has no period 9",
    )
    (tmp_path / "junk.sqlite").write_text("junk" * 500)
    assert_user_error(run(tmp_path, "store", "history", "--store", "junk.sqlite"), "not a scanplan")
    tag = run(tmp_path, "store", "parse-tag", "nothing here")
    assert_user_error(tag, "no scanplan start-of-run tag")


def test_push_padme_and_read_back(tmp_path, mariadb_server, dbname):
    plan = make_plan(3)
    save_plan(plan, tmp_path / "plan.json")
    run_json(tmp_path, "store", "record-plan", "plan.json")
    run_json(tmp_path, "store", "append", "applied", "--plan", "plan.json", "--period", "1",
             "--run", "50284", "--payload", '{"dhstb01_current_a": 183.0}')  # fmt: skip
    env = _env(mariadb_server, dbname)
    out = run_json(tmp_path, "store", "push-padme", "--run", "50284", "--period", "1",
                   "--plan", "plan.json", env_extra=env)  # fmt: skip
    assert (
        out["sor_log_entry_added"] is True
        and "scanplan.applied.dhstb01_current_a" in out["added_names"]
    )
    value = query(
        mariadb_server, dbname,
        "SELECT p.value FROM run_config_para p JOIN config_para_name n ON n.id = "
        "p.config_para_name_id WHERE p.run_number = 50284 AND n.name = 'scanplan.applied.dhstb01_current_a'",
    )  # fmt: skip
    assert value == [("183.0",)]
    back = run_json(tmp_path, "store", "read-padme", "--run", "50284", env_extra=env)
    assert back["sor_tags"][0]["period"] == 1
    assert back["paras"]["scanplan.plan_sha256"] == plan.content_sha256
    kinds = [h["kind"] for h in run_json(tmp_path, "store", "history", "--run", "50284")]
    assert kinds == ["applied", "padme_push"]
    again = run_json(tmp_path, "store", "push-padme", "--run", "50284", "--period", "1",
                     "--plan", "plan.json", env_extra=env)  # fmt: skip
    assert again["added"] == 0


def test_push_padme_errors_exit_2_and_write_nothing(tmp_path, mariadb_server, dbname):
    plan = make_plan(2)
    save_plan(plan, tmp_path / "plan.json")
    args = ["store", "push-padme", "--run", "50285", "--period", "0", "--plan", "plan.json"]
    port = str(free_port())
    down = run(tmp_path, *args, "--db-host", "127.0.0.1", "--db-port", port, "--db-user", "u")
    assert down.returncode == 75, down.stderr  # EX_TEMPFAIL: retry later
    assert down.stderr.startswith("error:") and "unavailable" in down.stderr
    assert f"127.0.0.1:{port}" in down.stderr and len(down.stderr.strip().splitlines()) == 1
    user = f"ro_{uuid.uuid4().hex[:6]}"
    create_user(mariadb_server, user, "pw", [f"SELECT ON `{dbname}`.*"])
    assert_user_error(
        run(tmp_path, *args, env_extra=_env(mariadb_server, dbname, user, "pw")), "read-only"
    )
    assert_user_error(
        run(tmp_path, "store", "push-padme", "--run", "59999", "--period", "0", "--plan", "plan.json",
            env_extra=_env(mariadb_server, dbname)),
        "run 59999 is not in",
    )  # fmt: skip
    assert query(
        mariadb_server, dbname, "SELECT count(*) FROM run_config_para WHERE run_number=50285"
    ) == [(0,)]
    assert query(
        mariadb_server, dbname, "SELECT count(*) FROM log_entry WHERE run_number=50285"
    ) == [(0,)]
