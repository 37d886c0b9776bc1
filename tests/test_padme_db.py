"""hw_interfaces.padme_db against a real MariaDB with the PadmeDAQ schema of the repo."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest
from fixtures.net import free_port
from fixtures.padmedaq import (
    create_user,
    drop_database,
    execute,
    padme_db,
    padmedaq_database,
    query,
)

from hw_interfaces.db_errors import (
    PadmeDBAccessDenied,
    PadmeDBDataError,
    PadmeDBReadOnly,
    PadmeDBSchemaError,
    PadmeDBUnavailable,
)
from hw_interfaces.padme_db import PadmeDB, padmedaq_schema_sql


@pytest.fixture(scope="module")
def dbname(mariadb_server):
    with padmedaq_database(mariadb_server, runs=(50284, 50285)) as name:
        yield name


@pytest.fixture()
def db(mariadb_server, dbname):
    return padme_db(mariadb_server, dbname)


def _schema_snapshot(server, dbname):
    return query(
        server,
        dbname,
        "SELECT table_name, column_name, column_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s ORDER BY table_name, ordinal_position",
        (dbname,),
    )


def test_schema_file_has_the_fixed_rows(mariadb_server, dbname):
    types = dict(query(mariadb_server, dbname, "SELECT id, type FROM run_type"))
    status = dict(query(mariadb_server, dbname, "SELECT id, status FROM run_status"))
    assert types == {
        0: "TEST", 1: "DAQ", 2: "COSMICS", 3: "CALIBRATION", 4: "RANDOM", 5: "OTHER",
        6: "FAKE", 7: "TESTBEAM",
    }  # fmt: skip
    assert status == {
        0: "CREATED", 1: "INITIALIZED", 2: "RUNNING", 3: "END_OK", 4: "ABORTED",
        5: "INIT_ERROR", 6: "END_ERROR", 7: "UNKNOWN",
    }  # fmt: skip
    engines = {r[0] for r in query(
        mariadb_server, dbname,
        "SELECT engine FROM information_schema.tables WHERE table_schema = %s", (dbname,),
    )}  # fmt: skip
    assert engines == {"InnoDB"}
    assert "CREATE TABLE IF NOT EXISTS log_entry" in padmedaq_schema_sql()


def test_read_run_and_next_number(db):
    run = db.read_run(50284)
    assert run.number == 50284 and run.run_type_id == 1 and run.name.startswith("run_0050284_")
    assert db.next_run_number() == 50286
    with pytest.raises(PadmeDBDataError, match="run 49999 is not in the PadmeDAQ database"):
        db.read_run(49999)


def test_config_paras_and_names_added_on_first_use(db, mariadb_server, dbname):
    before = _schema_snapshot(mariadb_server, dbname)
    name = f"scanplan.test_{uuid.uuid4().hex[:6]}"
    first = db.ensure_config_para_name(name)
    assert db.ensure_config_para_name(name) == first
    db.add_run_config_para(50284, name, 282.275)
    db.add_run_config_paras(50284, {name + "_b": "x", name + "_c": 3})
    rows = db.read_config_paras(50284, name)
    assert [(r.name, r.value) for r in rows] == [
        (name, "282.275"),
        (name + "_b", "x"),
        (name + "_c", "3"),
    ]
    # an independent reader sees the same rows
    raw = query(
        mariadb_server,
        dbname,
        "SELECT n.name, p.value FROM run_config_para p JOIN config_para_name n "
        "ON n.id = p.config_para_name_id WHERE p.run_number = 50284 AND n.name = %s",
        (name,),
    )
    assert raw == [(name, "282.275")]
    # "%" and "_" in a prefix are literal
    assert db.read_config_paras(50284, "scanplan%") == []
    assert _schema_snapshot(mariadb_server, dbname) == before  # rows only, never DDL


def test_log_entry(db):
    when = datetime(2026, 11, 25, 12, 30, 0)
    entry_id = db.add_log_entry(50285, "SOR", 0, when, "crew comment scanplan:v1 ...")
    entries = db.read_log_entries(50285, "SOR")
    assert [(e.id, e.type, e.level, e.time, e.text) for e in entries][-1] == (
        entry_id,
        "SOR",
        0,
        when,
        "crew comment scanplan:v1 ...",
    )
    with pytest.raises(PadmeDBDataError, match="log entry type"):
        db.add_log_entry(50285, "XYZ", 0, when, "bad")


def test_unknown_run_write_is_a_data_error_and_rolls_back(db, mariadb_server, dbname):
    name = f"scanplan.orphan_{uuid.uuid4().hex[:6]}"
    with pytest.raises(PadmeDBDataError):
        db.add_run_config_paras(49999, {name: 1})
    # the name insert of the failed transaction is rolled back too
    assert (
        query(mariadb_server, dbname, "SELECT id FROM config_para_name WHERE name=%s", (name,))
        == []
    )


def test_read_only_user_gets_a_clear_error_and_nothing_is_written(mariadb_server, dbname):
    user = f"ro_{uuid.uuid4().hex[:6]}"
    create_user(mariadb_server, user, "ro_pw", [f"SELECT ON `{dbname}`.*"])
    ro = padme_db(mariadb_server, dbname, user, "ro_pw")
    assert ro.read_run(50284).number == 50284  # reads work
    name = f"scanplan.ro_{uuid.uuid4().hex[:6]}"
    with pytest.raises(PadmeDBReadOnly, match="read-only") as info:
        ro.add_run_config_para(50284, name, 1)
    assert "PadmeDAQ" in info.value.device
    assert (
        query(mariadb_server, dbname, "SELECT id FROM config_para_name WHERE name=%s", (name,))
        == []
    )


def test_partial_grant_rolls_back_the_names_already_added(mariadb_server, dbname):
    """INSERT allowed on config_para_name only: the run_config_para insert fails after the
    name was added; the transaction must leave neither."""
    user = f"half_{uuid.uuid4().hex[:6]}"
    create_user(
        mariadb_server,
        user,
        "half_pw",
        [f"SELECT ON `{dbname}`.*", f"INSERT ON `{dbname}`.`config_para_name`"],
    )
    half = padme_db(mariadb_server, dbname, user, "half_pw")
    name = f"scanplan.half_{uuid.uuid4().hex[:6]}"
    with pytest.raises(PadmeDBReadOnly) as info:
        half.add_run_config_paras(50284, {name: 1.0, name + "_2": 2.0})
    assert info.value.key == "run_config_para"  # the name insert itself had succeeded
    rows = query(
        mariadb_server, dbname, "SELECT id FROM config_para_name WHERE name LIKE %s", (name + "%",)
    )
    assert rows == []


def test_server_down_is_a_clear_error_quickly():
    db = PadmeDB("127.0.0.1", free_port(), "nobody", "x", "PadmeDAQ", connect_timeout_s=2)
    t0 = time.monotonic()
    with pytest.raises(PadmeDBUnavailable, match="unavailable") as info:
        db.next_run_number()
    assert info.value.exit_code == 75 and info.value.retryable
    assert time.monotonic() - t0 < 5
    assert "127.0.0.1" in str(info.value)


def test_wrong_password_missing_user_and_wrong_database_name(mariadb_server, dbname, monkeypatch):
    bad = padme_db(mariadb_server, dbname, password="wrong")
    with pytest.raises(PadmeDBAccessDenied, match="login refused") as info:
        bad.next_run_number()
    assert info.value.exit_code == 2 and not info.value.retryable
    # a wrong PADME_DB_NAME: the admin sees "unknown database" (1049), a limited account
    # "access denied to database" (1044); both name the database, neither is a write refusal
    with pytest.raises(PadmeDBAccessDenied, match="'PadmeDAQ_typo' does not exist") as info:
        padme_db(mariadb_server, "PadmeDAQ_typo").next_run_number()
    assert "read-only" not in str(info.value)
    user = f"lim_{uuid.uuid4().hex[:6]}"
    create_user(mariadb_server, user, "pw", [f"SELECT, INSERT ON `{dbname}`.*"])
    with pytest.raises(PadmeDBAccessDenied, match="PADME_DB_NAME"):
        padme_db(mariadb_server, "PadmeDAQ_typo", user, "pw").next_run_number()
    for var in ("PADME_DB_USER", "PADME_DB_HOST", "PADME_DB_PORT", "PADME_DB_NAME"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(PadmeDBAccessDenied, match="PADME_DB_USER"):
        PadmeDB().next_run_number()


def test_environment_parameters(mariadb_server, dbname, monkeypatch):
    monkeypatch.setenv("PADME_DB_HOST", mariadb_server.host)
    monkeypatch.setenv("PADME_DB_PORT", str(mariadb_server.port))
    monkeypatch.setenv("PADME_DB_USER", mariadb_server.user)
    monkeypatch.setenv("PADME_DB_PASSWD", mariadb_server.password)
    monkeypatch.setenv("PADME_DB_NAME", dbname)
    db = PadmeDB()
    assert db.address == f"{mariadb_server.host}:{mariadb_server.port}/{dbname}"
    assert db.read_run(50285).number == 50285
    monkeypatch.setenv("PADME_DB_PORT", "fivefiveoh")
    with pytest.raises(PadmeDBAccessDenied, match="PADME_DB_PORT"):
        PadmeDB()


def test_database_without_padmedaq_tables_is_a_schema_error(mariadb_server):
    name = f"empty_{uuid.uuid4().hex[:6]}"
    execute(mariadb_server, [f"CREATE DATABASE `{name}`"])
    try:
        db = padme_db(mariadb_server, name)
        with pytest.raises(PadmeDBSchemaError, match="not a PadmeDAQ database"):
            db.next_run_number()
    finally:
        drop_database(mariadb_server, name)
