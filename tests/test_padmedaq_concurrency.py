"""PadmeDAQ pushes under concurrency and outages, on real MariaDB servers: two pushes of one
run at the same time, a push while the server is down or killed mid-transaction, and a push
that contradicts RunControl's start-of-run tag. Every check reads the tables with plain SQL
as the admin user."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest
from fixtures.padmedaq import execute, padme_db, padmedaq_database, query
from fixtures.plans import make_plan
from fixtures.services import mariadb_restartable  # noqa: F401  (fixture)

from scanplan.errors import ScanplanError
from scanplan.exports import format_sor_tag
from scanplan.records import save_plan
from scanplan.store.padmedaq import PadmeDAQStore, run_condition_paras

WAIT_S = 20.0


def counts(server, db, run):
    paras = query(server, db, "SELECT count(*), count(DISTINCT config_para_name_id) "
                  "FROM run_config_para WHERE run_number = %s", (run,))[0]  # fmt: skip
    sor = query(server, db, "SELECT count(*) FROM log_entry WHERE run_number = %s", (run,))[0][0]
    names = query(server, db, "SELECT count(*), count(DISTINCT name) FROM config_para_name")[0]
    return paras, sor, names


def wait_lock_waits(server, n: int, errors=(), proc=None) -> None:
    """Block until ``n`` sessions wait for the run row lock (the pushes reached lock_run); a
    push that failed before (its exception in ``errors``, or its process ``proc`` ended)
    ends the wait with that reason.

    The waiting sessions are read from PROCESSLIST (their ``SELECT ... FOR UPDATE`` on
    ``run`` still executing): MariaDB 10.11's INNODB_TRX does not list a transaction that
    waits in its first locking read reliably (seen missing for > 20 s)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if errors:
            raise AssertionError(f"a push failed before it queued on the lock: {errors!r}")
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the push ended ({proc.returncode}): {proc.communicate()}")
        if len(_lock_waiters(server)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(
        f"{n} pushes did not wait on the run row lock within {WAIT_S} s: sessions "
        f"{query(server, 'information_schema', 'SELECT command, state, info FROM PROCESSLIST')}"
    )


def _lock_waiters(server) -> list[tuple]:
    """Sessions executing the pushes' locking read of a run row."""
    return query(server, "information_schema",
                 "SELECT id FROM PROCESSLIST WHERE command = 'Query' "
                 "AND info LIKE 'SELECT %FROM run WHERE number = %FOR UPDATE'")  # fmt: skip


def hold_run_lock(server, db, run):
    """An admin connection holding the row lock of ``run`` (release: commit + close)."""
    conn = server.connect(db)
    with conn.cursor() as cur:
        cur.execute("SELECT number FROM run WHERE number = %s FOR UPDATE", (run,))
    return conn


def test_two_simultaneous_pushes_leave_exactly_one_copy(mariadb_server):
    plan = make_plan(3)
    expected = len(run_condition_paras(plan, 1))
    with padmedaq_database(mariadb_server, runs=(50284,)) as db:
        lock = hold_run_lock(mariadb_server, db, 50284)
        results, errors = [], []

        def push():
            try:
                # a push may wait on the lock for as long as the test waits for both to
                # queue (a loaded CI machine): the client's read timeout must not end it first
                client = padme_db(mariadb_server, db, read_timeout_s=3 * WAIT_S)
                store = PadmeDAQStore(client)
                results.append(store.push_run_conditions(plan, 1, 50284))
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=push) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            wait_lock_waits(mariadb_server, 2, errors)  # both pushes inside, before any read
        finally:
            lock.commit()
            lock.close()
        for t in threads:
            t.join(WAIT_S)
        assert not errors and len(results) == 2
        assert sorted(len(r.added) for r in results) == [0, expected]
        assert sorted(r.log_entry_id is None for r in results) == [False, True]
        (n_rows, n_names), n_sor, (n_all, n_distinct) = counts(mariadb_server, db, 50284)
        assert n_rows == n_names == expected and n_sor == 1 and n_all == n_distinct


def test_pushes_of_two_runs_adding_the_same_new_name(mariadb_server):
    plan = make_plan(3)
    with padmedaq_database(mariadb_server, runs=(50290, 50291)) as db:
        barrier = threading.Barrier(2, timeout=WAIT_S)
        errors = []

        def push(run):
            try:
                barrier.wait()
                PadmeDAQStore(padme_db(mariadb_server, db)).push_run_conditions(
                    plan, 0 if run == 50290 else 2, run, measured={"brand_new": 1.0}
                )
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(r,)) for r in (50290, 50291)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT_S)
        assert not errors
        names = query(mariadb_server, db, "SELECT count(*) FROM config_para_name WHERE name = "
                      "'scanplan.measured.brand_new'")  # fmt: skip
        assert names[0][0] == 1


def cli_push(tmp_path, server, db, *args, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PADME_DB_", "SCANPLAN_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "scanplan.cli.main", "store", "push-padme", "--plan", "plan.json",
         "--db-host", server.host, "--db-port", str(server.port), "--db-user", server.user,
         "--db-password", server.password, "--db-name", db, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_push_during_a_database_restart(tmp_path, mariadb_restartable):  # noqa: F811
    srv = mariadb_restartable
    plan = make_plan(3)
    save_plan(plan, tmp_path / "plan.json")
    expected = len(run_condition_paras(plan, 1))
    with padmedaq_database(srv.address, runs=(50284,)) as db:
        # 1) server down: a retryable outage, exit 75, one error line
        srv.stop()
        code, _, err = finish(cli_push(tmp_path, srv.address, db, "--run", "50284",
                                       "--period", "1"))  # fmt: skip
        assert code == 75, err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1
        assert "unavailable" in err and "Traceback" not in err
        srv.start()
        # 2) killed while the push waits inside its transaction: nothing committed, exit 75
        lock = hold_run_lock(srv.address, db, 50284)
        proc = cli_push(tmp_path, srv.address, db, "--run", "50284", "--period", "1")
        wait_lock_waits(srv.address, 1, proc=proc)
        srv.stop(kill=True)
        lock.close()
        code, _, err = finish(proc)
        assert code == 75, err
        srv.start()
        assert counts(srv.address, db, 50284)[:2] == ((0, 0), 0)
        # 3) retried once the server is back: exactly one copy
        code, _out, err = finish(cli_push(tmp_path, srv.address, db, "--run", "50284",
                                         "--period", "1"))  # fmt: skip
        assert code == 0, err
        code, _, err = finish(cli_push(tmp_path, srv.address, db, "--run", "50284",
                                       "--period", "1"))  # fmt: skip
        assert code == 0, err
        assert counts(srv.address, db, 50284)[:2] == ((expected, expected), 1)


def test_push_contradicting_the_sor_tag_is_refused(tmp_path, mariadb_server):
    plan = make_plan(4)
    save_plan(plan, tmp_path / "plan.json")
    tag = format_sor_tag(plan.content_sha256, plan.point(3))
    with padmedaq_database(mariadb_server, runs=(50300,)) as db:
        execute(mariadb_server, [(
            "INSERT INTO log_entry (run_number, type, level, time, text) VALUES (%s,'SOR',0,%s,%s)",
            (50300, datetime(2026, 11, 25, 12, 0), f"X17 scan {tag}"),
        )], db)  # fmt: skip
        with pytest.raises(ScanplanError, match="tag says period 3, this push says period 2"):
            PadmeDAQStore(padme_db(mariadb_server, db)).push_run_conditions(plan, 2, 50300)
        code, _out, err = finish(cli_push(tmp_path, mariadb_server, db, "--run", "50300",
                                         "--period", "2"))  # fmt: skip
        assert code == 2 and err.startswith("error:") and "period 3" in err and "period 2" in err
        assert counts(mariadb_server, db, 50300)[:2] == ((0, 0), 1)
        # the matching period is accepted and adds no second SOR entry
        code, _, err = finish(cli_push(tmp_path, mariadb_server, db, "--run", "50300",
                                       "--period", "3"))  # fmt: skip
        assert code == 0, err
        assert counts(mariadb_server, db, 50300)[1] == 1
