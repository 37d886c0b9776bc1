"""Run conditions pushed to a real PadmeDAQ (MariaDB, schema from the repo) and read back."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from fixtures.net import free_port
from fixtures.padmedaq import create_user, padme_db, padmedaq_database, query
from fixtures.plans import make_plan

from hw_interfaces.db_errors import PadmeDBDataError, PadmeDBReadOnly, PadmeDBUnavailable
from hw_interfaces.padme_db import PadmeDB
from scanplan.errors import ScanplanError
from scanplan.store.padmedaq import PadmeDAQStore


@pytest.fixture(scope="module")
def dbname(mariadb_server):
    with padmedaq_database(mariadb_server, runs=(50284, 50285, 50286, 50287, 50288)) as name:
        yield name


def _rows(server, dbname, run):
    """name -> value of the run's scanplan.* rows, read with plain SQL."""
    return dict(
        query(
            server,
            dbname,
            "SELECT n.name, p.value FROM run_config_para p JOIN config_para_name n "
            "ON n.id = p.config_para_name_id WHERE p.run_number = %s AND n.name LIKE 'scanplan.%%'",
            (run,),
        )
    )


def _counts(server, dbname):
    return tuple(
        query(server, dbname, f"SELECT count(*) FROM {t}")[0][0]
        for t in ("config_para_name", "run_config_para", "log_entry")
    )


def test_push_writes_rows_and_sor_entry(mariadb_server, dbname):
    plan = make_plan(4)
    store = PadmeDAQStore(padme_db(mariadb_server, dbname))
    when = datetime(2026, 11, 25, 14, 0, 5, tzinfo=timezone.utc)
    result = store.push_run_conditions(
        plan, 2, 50284, applied={"dhstb01_current_a": 180.25}, measured={"hall_field_g": 5123.4},
        time_utc=when,
    )  # fmt: skip
    rows = _rows(mariadb_server, dbname, 50284)
    point = plan.point(2)
    assert rows["scanplan.plan_sha256"] == plan.content_sha256
    assert int(rows["scanplan.period"]) == 2
    assert float(rows["scanplan.planned.e_beam_mev"]) == point.e_beam_mev
    assert float(rows["scanplan.planned.dhstb02_current_a"]) == point.dhstb02_current_a
    assert rows["scanplan.planned.calibration"] == point.calibration
    assert float(rows["scanplan.applied.dhstb01_current_a"]) == 180.25
    assert float(rows["scanplan.measured.hall_field_g"]) == 5123.4
    assert sorted(result.added) == sorted(rows)
    # SOR log entry with the tag, read back and parsed by the tool
    (etype, level, etime, text), = query(
        mariadb_server, dbname, "SELECT type, level, time, text FROM log_entry WHERE run_number=50284"
    )  # fmt: skip
    assert (etype, level, etime) == ("SOR", 0, datetime(2026, 11, 25, 14, 0, 5))
    tokens = dict(t.split("=", 1) for t in text.split()[1:])
    assert text.split()[0] == "scanplan:v1"
    assert tokens["plan"] == plan.content_sha256[:12] and tokens["period"] == "2"
    back = store.read_run_conditions(50284)
    assert back["paras"] == rows
    assert back["sor_tags"][0]["period"] == 2


def test_push_again_adds_nothing_and_a_conflict_writes_nothing(mariadb_server, dbname):
    plan = make_plan(3)
    store = PadmeDAQStore(padme_db(mariadb_server, dbname))
    store.push_run_conditions(plan, 1, 50285)
    before = _counts(mariadb_server, dbname)
    again = store.push_run_conditions(plan, 1, 50285)
    assert again.added == [] and again.log_entry_id is None
    assert _counts(mariadb_server, dbname) == before
    # new measured values later: only those rows are added
    more = store.push_run_conditions(plan, 1, 50285, measured={"runPOT": 7.1e9})
    assert more.added == ["scanplan.measured.runPOT"]
    before = _counts(mariadb_server, dbname)
    with pytest.raises(ScanplanError, match="already has different scanplan values"):
        store.push_run_conditions(plan, 1, 50285, measured={"runPOT": 7.2e9, "brand_new_name": 1})
    with pytest.raises(ScanplanError, match="tag says period 1, this push says period 2"):
        store.push_run_conditions(plan, 2, 50285, measured={"brand_new_name": 1})
    with pytest.raises(ScanplanError, match="nothing was written"):
        store.push_run_conditions(make_plan(3, name="other"), 1, 50285)
    assert _counts(mariadb_server, dbname) == before
    names = {r[0] for r in query(mariadb_server, dbname, "SELECT name FROM config_para_name")}
    assert "scanplan.measured.brand_new_name" not in names


def test_crew_sor_comment_with_the_tag_is_recognised(mariadb_server, dbname):
    plan = make_plan(3)
    store = PadmeDAQStore(padme_db(mariadb_server, dbname))
    from scanplan.exports import format_sor_tag

    tag = format_sor_tag(plan.content_sha256, plan.point(0))
    padme_db(mariadb_server, dbname).add_log_entry(
        50286, "SOR", 0, datetime(2026, 11, 25, 15, 0), f"X17 scan {tag} -- shifter A.B."
    )
    result = store.push_run_conditions(plan, 0, 50286)
    assert result.log_entry_id is None  # RunControl already stored the tag
    assert (
        len(query(mariadb_server, dbname, "SELECT id FROM log_entry WHERE run_number=50286")) == 1
    )


def test_unknown_run_read_only_user_and_server_down_write_nothing(mariadb_server, dbname):
    plan = make_plan(2)
    before = _counts(mariadb_server, dbname)
    with pytest.raises(PadmeDBDataError, match="run 60000 is not in"):
        PadmeDAQStore(padme_db(mariadb_server, dbname)).push_run_conditions(plan, 0, 60000)
    user = f"ro_{uuid.uuid4().hex[:6]}"
    create_user(mariadb_server, user, "pw", [f"SELECT ON `{dbname}`.*"])
    with pytest.raises(PadmeDBReadOnly, match="read-only"):
        PadmeDAQStore(padme_db(mariadb_server, dbname, user, "pw")).push_run_conditions(
            plan, 0, 50287
        )
    half = f"half_{uuid.uuid4().hex[:6]}"
    create_user(mariadb_server, half, "pw",
                [f"SELECT ON `{dbname}`.*", f"INSERT ON `{dbname}`.`config_para_name`",
                 f"INSERT ON `{dbname}`.`run_config_para`"])  # fmt: skip
    with pytest.raises(PadmeDBReadOnly, match="log_entry"):
        PadmeDAQStore(padme_db(mariadb_server, dbname, half, "pw")).push_run_conditions(
            plan, 0, 50288
        )
    down = PadmeDB("127.0.0.1", free_port(), "u", "p", dbname, connect_timeout_s=2)
    with pytest.raises(PadmeDBUnavailable):
        PadmeDAQStore(down).push_run_conditions(plan, 0, 50287)
    assert _counts(mariadb_server, dbname) == before
    assert _rows(mariadb_server, dbname, 50288) == {}
