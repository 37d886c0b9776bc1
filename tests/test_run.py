"""Guided run logic on the deterministic fake BTF (fake supplies and set-point writer,
model-driven fake TimePix, fake RunControl, one manual clock): a whole plan with faults
injected and recovered, RunControl failures, and a kill in each window of the state
machine followed by a resume. The store must hold the exact history: every run RunControl
started, once, with its tag. The CLI tests run ``scanplan run`` / ``check`` as processes
against the model-driven simulator (real memcached, HTTP and TCP servers), including a
SIGKILL mid-run and a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from fixtures import facility as fx
from fixtures import fake_btf as fb
from fixtures.facility import sim_env, wait_for
from fixtures.fake_btf import FakeBTF, currents_of

from scanplan.exports.sor_tag import format_sor_tag, parse_sor_tag
from scanplan.run import (
    KIND_POINT_DONE,
    GuidedRun,
    QuietUI,
    RunOptions,
    RunStopped,
    approach_steps,
    combined_steps,
    point_states,
)

facility = fx.facility  # fixture
fake_btf = fb.fake_btf  # fixture
plan = fx.plan  # fixture
plan_path = fx.plan_path  # fixture
predictor = fx.predictor  # fixture
store = fx.store  # fixture
tolerances = fx.tolerances  # fixture


def assert_exact_history(store, plan, runcontrol_runs) -> None:
    """The store and RunControl agree run by run; nothing lost, nothing twice."""
    sha = plan.content_sha256
    events = store.history(plan_sha256=sha)
    assert len({e.idempotency_key for e in events}) == len(events)
    done = Counter(e.period for e in events if e.kind == KIND_POINT_DONE)
    assert done == Counter({p.period: 1 for p in plan.points})
    started = [e for e in events if e.kind == "run_started"]
    stopped = [e for e in events if e.kind == "run_stopped"]
    for kind_events in (started, stopped):
        numbers = [e.run_number for e in kind_events]
        assert len(numbers) == len(set(numbers)), numbers
    rc_runs = {r.number: r for r in runcontrol_runs}
    ran = {n for n, r in rc_runs.items() if r.time_start_utc}
    assert {e.run_number for e in started} == ran
    assert {e.run_number for e in stopped} == ran
    for e in started:
        run = rc_runs[e.run_number]
        assert run.comment_start == e.payload["comment"]
        assert run.status == "END_OK"
        tag = parse_sor_tag(run.comment_start)
        assert tag["period"] == e.period and tag["plan_sha12"] == sha[:12]
        assert e.payload["tag"] == format_sor_tag(sha, plan.point(e.period))
    # runs that never started (init failures) are named in a run_failed/abandoned event
    failed_text = " ".join(
        json.dumps(e.payload) for e in events if e.kind in ("run_failed", "run_abandoned")
    )
    for n, r in rc_runs.items():
        if n not in ran:
            assert str(n) in failed_text, (n, r.status)


def guided_on(btf: FakeBTF, plan, store, options: RunOptions, ui=None) -> GuidedRun:
    """A guided run on the fake BTF: its supplies write the set points."""
    return GuidedRun(
        plan,
        checker=btf.checker(),
        store=store,
        runcontrol=btf.runcontrol,
        options=options,
        ui=ui or QuietUI(btf.clock),
        writer=btf.psu,
        clock=btf.clock,
    )


class FaultyUI(QuietUI):
    """Injects faults at chosen moments and clears them when the run waits to retry."""

    def __init__(self, btf: FakeBTF, inject_at) -> None:
        super().__init__(btf.clock)
        self.btf = btf
        self.inject_at = {k: list(v) for k, v in inject_at.items()}
        self.verdicts: list[tuple[int, str]] = []

    def show_point(self, point, steps, writes) -> None:
        super().show_point(point, steps, writes)
        pending = self.inject_at.get(point.period)
        if pending:  # one fault per attempt at this point
            pending.pop(0)()

    def verdict(self, verdict, attempt) -> None:
        super().verdict(verdict, attempt)
        self.verdicts.append((verdict.period, verdict.level))

    def wait(self, seconds, message) -> None:
        self.btf.clear()  # the crew fixes the problem while the tool waits
        super().wait(seconds, message)


def test_whole_plan_with_faults_injected_and_recovered(fake_btf, plan, store):
    rc = fake_btf.runcontrol
    ui = FaultyUI(
        fake_btf,
        {
            0: [fake_btf.timepix.kill],
            1: [lambda: fake_btf.psu.inject("trip", "DHSTB002")],
            2: [lambda: rc.inject("init_fail"), lambda: rc.inject("broken_frame")],
        },
    )
    opts = RunOptions(dwell_s=0.2, retry_wait_s=0.1, settle_timeout_s=6.0, enable_writes=True)
    guided = guided_on(fake_btf, plan, store, opts, ui)
    rows = guided.run()
    assert all(r.done for r in rows)
    # point 1: the trip gave a FAIL, the reset supply then checked OK/WARN
    p1 = [lvl for p, lvl in ui.verdicts if p == 1]
    assert p1[0] == "FAIL" and p1[-1] != "FAIL"
    fail_ev = [
        e for e in store.history(period=1, kinds=["verdict"]) if e.payload["level"] == "FAIL"
    ]
    assert any("DHSTB002: status INTERLOCK_FAULT" in r for r in fail_ev[0].payload["reasons"])
    # point 0: the dead TimePix gave a FAIL naming it, the revived one an OK
    p0 = [lvl for p, lvl in ui.verdicts if p == 0]
    assert p0[0] == "FAIL" and p0[-1] != "FAIL"
    # point 2: init_fail, then a broken frame, both recorded, then a run
    failed = store.history(period=2, kinds=["run_failed"])
    assert [e.payload["error_type"] for e in failed] == ["RunInitFailed", "ProtocolError"]
    assert "init_fail" in failed[0].payload["error"]
    assert_exact_history(store, plan, rc.runs)
    # the set points were written through the command path, once per attempt
    applied = store.history(kinds=["applied"])
    assert [e.period for e in applied] == [0, 0, 1, 1, 2, 2, 2]
    for e in applied:
        pt = plan.point(e.period)
        assert e.payload["steps"][-1] == {
            "DHSTB001": pt.dhstb01_current_a,
            "DHSTB002": pt.dhstb02_current_a,
        }
    # the run conditions of each started run are the verdict's measured values
    for e in store.history(kinds=["run_started"]):
        assert e.payload["dhstb01_current_a"] == pytest.approx(
            plan.point(e.period).dhstb01_current_a
        )
        assert e.payload["timepix_x_mm"] is not None
    # a second run() does nothing new
    n = len(store.history())
    guided.run()
    assert len(store.history()) == n


def test_dead_runcontrol_stops_then_resumes(fake_btf, plan, store):
    fake_btf.runcontrol.inject("dead")
    opts = RunOptions(dwell_s=0.1, retry_wait_s=0.0, max_attempts=1, periods=(0,))
    guided = guided_on(fake_btf, plan, store, opts)
    with pytest.raises(RunStopped, match="RunControl did not start a run"):
        guided.run()
    failed = store.history(kinds=["run_failed"])
    assert len(failed) == 1 and "cannot connect" in failed[0].payload["error"]
    assert not point_states(store, plan.content_sha256)[0].done
    fake_btf.clear()
    guided.run()
    st = point_states(store, plan.content_sha256)[0]
    assert st.done and len(st.runs) == 1
    assert len(store.history(kinds=["run_requested"])) == 2


def test_crew_sets_the_point_without_writes(fake_btf, plan, store):
    """Read-only run: the crew sets each point when asked; the tool only checks and runs."""
    ui = QuietUI(fake_btf.clock)

    def confirm(prompt: str) -> bool:
        for p in plan.points:
            if prompt.startswith(f"Point {p.period}: set DHSTB001"):
                fake_btf.psu.set_currents(currents_of(plan, p.period))
        return True

    ui.confirm = confirm  # type: ignore[method-assign]
    guided = GuidedRun(
        plan,
        checker=fake_btf.checker(),
        store=store,
        runcontrol=fake_btf.runcontrol,
        options=RunOptions(dwell_s=0.1, settle_timeout_s=5.0),
        ui=ui,
        clock=fake_btf.clock,
    )
    rows = guided.run()
    assert all(r.done for r in rows)
    assert fake_btf.psu.writes == [] and store.history(kinds=["applied"]) == []
    assert_exact_history(store, plan, fake_btf.runcontrol.runs)


def test_approach_steps():
    assert approach_steps(180.0, 183.0, "descending", 5.0, 0.01) == [188.0, 183.0]
    assert approach_steps(185.0, 183.0, "descending", 5.0, 0.01) == [183.0]
    assert approach_steps(185.0, 183.0, "ascending", 5.0, 0.01) == [178.0, 183.0]
    assert approach_steps(183.0, 183.0, "ascending", 5.0, 0.01) == [183.0]
    # both dipoles together: the one already on the right side holds its target
    now, targets = {"A": 180.0, "B": 185.0}, {"A": 183.0, "B": 183.0}
    assert combined_steps(now, targets, "descending", 5.0, 0.01) == [
        {"A": 188.0, "B": 183.0},
        {"A": 183.0, "B": 183.0},
    ]


def _run_cli(plan_path, env, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanplan.cli.main",
            "run",
            "--plan",
            str(plan_path),
            "--yes",
            "--enable-writes",
            "--retry-wait-s",
            "0.5",
            "--settle-timeout-s",
            "8",
            "--json",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_run_then_resume_keeps_exact_history(facility, plan, plan_path, tmp_path):
    from scanplan.store import SQLiteStore

    store_path = tmp_path / "cli.sqlite"
    env = sim_env(facility, store_path)
    st = SQLiteStore(store_path)
    proc = _run_cli(plan_path, env, "--dwell-s", "2")
    try:

        def started_1() -> bool:
            if not store_path.exists():
                return False
            try:
                return bool(st.history(period=1, kinds=["run_started"]))
            except Exception:
                return False

        assert wait_for(started_1, 60.0), proc.stderr.read() if proc.poll() is not None else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed = point_states(st, plan.content_sha256)
    assert killed[0].done and not killed[1].done and killed[1].open_run is not None
    open_run = killed[1].open_run
    # the RunControl run is still RUNNING: nobody stopped it
    rc = {r.number: r for r in facility.facility.runcontrol.runs}
    assert rc[open_run].status == "RUNNING"
    proc2 = _run_cli(plan_path, env, "--dwell-s", "0.5")
    out, err = proc2.communicate(timeout=120)
    assert proc2.returncode == 0, err
    doc = json.loads(out)
    assert doc["status"] == "done" and doc["n_done"] == 3
    assert_exact_history(st, plan, facility.facility.runcontrol.runs)
    stopped = st.history(period=1, kinds=["run_stopped"])
    assert [e.run_number for e in stopped] == [open_run]
    assert rc[open_run].status == "END_OK"


def test_cli_bad_input_is_one_line(plan_path, tmp_path):
    from cli_helpers import assert_user_error, run_cli

    assert_user_error(
        run_cli("run", "--plan", str(tmp_path / "missing.json"), "--yes"), "not found"
    )
    assert_user_error(
        run_cli("run", "--plan", str(plan_path), "--periods", "x", "--yes"), "--periods"
    )
    assert_user_error(
        run_cli("run", "--plan", str(plan_path), "--runcontrol", "host:notaport", "--yes"),
        "port",
    )


def test_cli_check_exit_codes(facility, plan, plan_path, tmp_path):
    from cli_helpers import assert_user_error

    env = sim_env(facility, tmp_path / "c.sqlite")

    def check(*args):
        return subprocess.run(
            [sys.executable, "-m", "scanplan.cli.main", "check", "--plan", str(plan_path), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = check("--point", "0", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["level"] == "OK"
    human = check("--point", "1")  # the machine is at point 0
    assert human.returncode == 3, human.stderr
    assert "FAIL point 1" in human.stdout and "Traceback" not in human.stderr
    assert "DHSTB001 set point:" in human.stdout
    assert_user_error(check("--point", "9"), "no point 9")
    env["SCANPLAN_MEMCACHED"] = "127.0.0.1:1"
    dead = check("--point", "0", "--json", "--timeout-s", "0.2")
    assert dead.returncode == 3
    assert any("unreachable" in r for r in json.loads(dead.stdout)["reasons"])
    from scanplan.store import SQLiteStore

    verdicts = SQLiteStore(tmp_path / "c.sqlite").history(kinds=["verdict"])
    assert [e.payload["level"] for e in verdicts] == ["OK", "FAIL", "FAIL"]
    _ = os.environ  # env copied, not modified


def test_cli_run_crew_says_no(facility, plan_path, tmp_path):
    env = sim_env(facility, tmp_path / "no.sqlite")
    proc = subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", "run", "--plan", str(plan_path)],
        env=env,
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert "stopped by the crew at point 0" in proc.stderr
    assert "Traceback" not in proc.stderr
    from scanplan.store import SQLiteStore

    st = SQLiteStore(tmp_path / "no.sqlite")
    assert st.history(kinds=["run_requested", "run_started", "applied", "verdict"]) == []
    assert len(st.history(kinds=["planned"])) == 3


class Crash(BaseException):
    """Stands for a kill at an exact point of the state machine."""


class CrashingStore:
    """The store, except that the first append of ``kind`` for ``period`` never happens:
    the process 'dies' right before it."""

    def __init__(self, store, kind: str, period: int) -> None:
        self._store, self.kind, self.period, self.crashed = store, kind, period, False

    def append(self, kind, **kw):
        if not self.crashed and kind == self.kind and kw.get("period") == self.period:
            self.crashed = True
            raise Crash(kind)
        return self._store.append(kind, **kw)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.mark.parametrize("window", ["run_started", "run_stopped", "point_done"])
def test_kill_in_each_window_then_resume(fake_btf, plan, store, window):
    crashing = CrashingStore(store, window, 1)
    opts = RunOptions(dwell_s=0.1, retry_wait_s=0.1, settle_timeout_s=5.0, enable_writes=True)
    first = guided_on(fake_btf, plan, crashing, opts)
    with pytest.raises(Crash):
        first.run()
    guided_on(fake_btf, plan, store, opts).run()
    states = point_states(store, plan.content_sha256)
    assert all(states[p.period].done for p in plan.points)
    rc_runs = {r.number: r for r in fake_btf.runcontrol.runs}
    recorded = {e.run_number for e in store.history() if e.run_number is not None}
    assert set(rc_runs) == recorded  # every run RunControl knows is in the store
    assert all(r.status == "END_OK" for r in rc_runs.values())  # none left running
    if window == "run_started":
        # started on RunControl, not recorded as started: recorded as created + abandoned
        abandoned = store.history(kinds=["run_abandoned"])
        assert len(abandoned) == 1 and abandoned[0].payload["outcome"] == "stopped"
        assert len(rc_runs) == 4
    else:
        assert_exact_history(store, plan, fake_btf.runcontrol.runs)
        assert len(rc_runs) == 3
