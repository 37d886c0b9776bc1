"""Guards of the guided run (issue 15 items 1, 2, 4): writes, session lock, store integrity,
own runs only, no silent skips. Logic on in-memory fakes and a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fixtures.plans import make_plan

from hw_interfaces.errors import WriteNotConfirmed
from scanplan.cli.run import ConsoleUI
from scanplan.errors import ScanplanError
from scanplan.records import save_plan
from scanplan.run.guard import (
    KIND_WRITE_DONE,
    KIND_WRITE_REFUSED,
    KIND_WRITE_REQUESTED,
    WRITE_KINDS,
    check_plan_for_writes,
    check_readback,
    check_store_file,
    journaled_write,
    session_lock,
    started_here,
    write_confirmer,
)
from scanplan.store import SQLiteStore

pytestmark = pytest.mark.timeout(120)


def one_pass_plan(**point_changes):
    p = make_plan(3)
    pts = [q.model_copy(update={"pass_index": 0}) for q in p.points]
    if point_changes:
        pts[1] = pts[1].model_copy(update=point_changes)
    return p.model_copy(update={"points": pts}).sealed()


def fake_btf_at(plan, period: int = 0, dhstb01_offset_a: float = 0.0):
    """The fake BTF with the dipoles at ``plan``'s point ``period`` (DHSTB001 moved by
    ``dhstb01_offset_a``), and the shipped tolerances."""
    from fixtures.fake_btf import FakeBTF, currents_of

    from scanplan.check import CheckTolerances, SpotPredictor

    tol = CheckTolerances.load()
    currents = currents_of(plan, period)  # dipoles and quadrupoles of the point
    currents["DHSTB001"] += dhstb01_offset_a
    btf = FakeBTF(SpotPredictor("run3_2022"), tol, currents)
    return btf, tol


def test_a_valid_plan_may_be_written():
    check_plan_for_writes(one_pass_plan())


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"dhstb01_current_a": 450.0}, "DHSTB01"),  # beyond the 0..400 A supply
        ({"dhstb02_current_a": -20.0}, "DHSTB02"),  # negative
    ],
)
def test_a_plan_the_validator_rejects_is_never_written(changes, fragment):
    with pytest.raises(ScanplanError, match="nothing written") as exc:
        check_plan_for_writes(one_pass_plan(**changes))
    assert fragment in str(exc.value) or "current" in str(exc.value)


def test_writes_are_confirmed_by_the_plan_hash_not_by_yes():
    sha = one_pass_plan().content_sha256
    assert write_confirmer(sha, sha[:8], None)("write?") is True
    for bad in (sha[:7], "0" * 12, "not-hex!"):
        with pytest.raises(ScanplanError, match="does not name this plan"):
            write_confirmer(sha, bad, None)
    assert write_confirmer(sha, None, None)("write?") is False
    # the console's --yes answers prompts, never a write: with no terminal the write is refused
    ui = ConsoleUI(yes=True, quiet=True)
    assert ui.confirm("go on?") is True
    assert write_confirmer(sha, None, ui.confirm_write)("Set DHSTB001 to 179 A?") is False


def test_every_write_attempt_is_in_the_store_partial_or_not(tmp_path):
    plan = one_pass_plan()
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.record_plan(plan)

    def append(kind, period, step, payload):
        store.append(
            kind,
            plan_sha256=plan.content_sha256,
            period=period,
            payload=payload,
            idempotency_key=f"{period}:{step}",
        )

    def refused() -> str:
        raise WriteNotConfirmed("DHSTB002: set-point write not confirmed")

    assert journaled_write(append, 0, "DHSTB001", 179.0, lambda: "cmd-1") == "cmd-1"
    with pytest.raises(WriteNotConfirmed):
        journaled_write(append, 0, "DHSTB002", 178.0, refused)
    writes = store.history(period=0, kinds=list(WRITE_KINDS))
    kinds = [(e.kind, e.payload["element"]) for e in writes]
    assert kinds == [
        (KIND_WRITE_REQUESTED, "DHSTB001"),
        (KIND_WRITE_DONE, "DHSTB001"),
        (KIND_WRITE_REQUESTED, "DHSTB002"),
        (KIND_WRITE_REFUSED, "DHSTB002"),
    ]


def test_a_write_that_did_not_take_is_caught_by_the_readback():
    check_readback(lambda e: 179.0, {"DHSTB001": 179.0}, 0.01)
    with pytest.raises(ScanplanError, match="did not take"):
        check_readback(lambda e: 150.0, {"DHSTB001": 179.0}, 0.01)


def test_one_session_per_store_and_plan(tmp_path):
    path = tmp_path / "s.sqlite"
    with session_lock(path, "a" * 64):
        with pytest.raises(ScanplanError, match="one session per store and plan"):
            with session_lock(path, "a" * 64):
                pass
        with session_lock(path, "b" * 64):  # another plan on the same store is another session
            pass
    with session_lock(path, "a" * 64):  # released
        pass


def test_a_second_process_is_refused_while_the_first_holds_the_lock(tmp_path):
    path = tmp_path / "s.sqlite"
    code = (
        "import sys; from pathlib import Path; from scanplan.run.guard import session_lock\n"
        "from scanplan.errors import ScanplanError\n"
        "try:\n"
        f"    with session_lock(Path({str(path)!r}), 'c' * 64): sys.exit(0)\n"
        "except ScanplanError as e: print(e); sys.exit(2)\n"
    )
    with session_lock(path, "c" * 64):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2 and f"pid {os.getpid()}" in proc.stdout


def test_damaged_missing_and_foreign_stores_are_refused(tmp_path):
    good = tmp_path / "good.sqlite"
    st = SQLiteStore(good)
    plan = one_pass_plan()
    st.record_plan(plan)
    for i in range(50):
        st.append("reading", plan_sha256=plan.content_sha256, period=0, payload={"i": i})
    check_store_file(good, must_exist=True)
    with pytest.raises(ScanplanError, match="no store"):
        check_store_file(tmp_path / "nonexist" / "x.sqlite", must_exist=True)
    check_store_file(tmp_path / "new.sqlite", must_exist=False)  # run creates it
    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ScanplanError, match="not a readable SQLite store"):
        check_store_file(foreign, must_exist=True)
    damaged = tmp_path / "damaged.sqlite"
    raw = bytearray(good.read_bytes())
    page = 4096
    for k in range(1, len(raw) // page):  # damage the b-tree page headers (200 bytes or so)
        for b in range(8):
            raw[k * page + b] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ScanplanError, match=r"damaged|not a readable"):
        check_store_file(damaged, must_exist=True)


def test_a_run_recorded_by_hand_is_not_this_tools_run(tmp_path):
    plan = one_pass_plan()
    st = SQLiteStore(tmp_path / "s.sqlite")
    st.record_plan(plan)
    sha = plan.content_sha256
    st.append("run_started", plan_sha256=sha, period=0, run_number=777, payload={})
    st.append("run_started", plan_sha256=sha, period=1, run_number=778, payload={"tag": "T1"})
    assert not started_here(st, sha, 777, "T0")
    assert not started_here(st, sha, 778, "T-other")
    assert started_here(st, sha, 778, "T1")


def test_run_refuses_a_resealed_plan_with_wrong_currents_before_touching_the_machine(tmp_path):
    bad = save_plan(one_pass_plan(dhstb01_current_a=450.0), tmp_path / "bad.json")
    proc = subprocess.run(
        [sys.executable, "-m", "scanplan", "run", "--plan", str(bad), "--enable-writes", "--yes",
         "--memcached", "127.0.0.1:1", "--store", str(tmp_path / "s.sqlite")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "plan fails validation, nothing written" in lines[0]


def test_a_check_without_timepix_or_model_says_what_it_did_not_check(tmp_path):
    from scanplan.check import Checker

    plan = one_pass_plan()
    btf, tol = fake_btf_at(plan, 0)
    no_spot = Checker(psu=btf.psu, spot=None, predictor=None, tolerances=tol, clock=btf.clock)
    v = no_spot.check(plan, 0)
    assert v.level == "WARN"
    assert any("beam not checked" in r for r in v.reasons)
    no_model = Checker(
        psu=btf.psu, spot=btf.timepix, predictor=None, tolerances=tol, clock=btf.clock
    )
    v2 = no_model.check(plan, 0)
    assert v2.level != "OK"
    assert any("not compared with the model" in r for r in v2.reasons)


def test_a_hidden_dhstb02_error_is_reported_as_the_current_it_implies(tmp_path):
    """Item 8: the crew reads a current, not only millimetres on the TimePix."""
    plan = one_pass_plan()
    btf, _ = fake_btf_at(plan, 0)
    btf.offsets_a["DHSTB002"] = 0.4  # the field behaves as 0.4 A more than the readback
    v = btf.checker().check(plan, 0)
    xs = [c for c in v.comparisons if c.name.startswith("TimePix x vs model (measured")]
    assert xs and xs[0].level != "OK", v.reasons
    assert xs[0].implied_current_a == pytest.approx(0.4, abs=0.05)
    assert "DHSTB02" in xs[0].reason


def test_check_watch_fails_as_soon_as_the_readback_rests_off_the_plan():
    """Item 8: a wrong set point under --watch is a FAIL within a few polls, not at the
    settle timeout."""
    plan = one_pass_plan()
    btf, _ = fake_btf_at(plan, 0, -30.0)
    pt = plan.point(0)
    # the crew types a wrong DHSTB001 set point 1 s into the watch
    btf.psu.schedule(1.0, lambda: btf.psu.set_currents({"DHSTB001": pt.dhstb01_current_a + 5.0}))
    t0 = btf.clock.monotonic()
    v = btf.checker().check(plan, 0, watch=True, settle_timeout_s=60.0)
    waited = btf.clock.monotonic() - t0
    assert v.level == "FAIL"
    assert waited < 0.25 * 60.0  # about stable_polls x poll_interval, far from the timeout
    assert waited >= 1.0  # it waited for the crew, then failed within a few polls


def test_crew_sets_mode_shows_the_overshoot_steps(tmp_path):
    """Item 8: the crew who sets the currents by hand sees the approach steps the guide
    promises (overshoot first when a descending point has to be reached from below)."""
    from scanplan.run import GuidedRun, QuietUI, RunOptions, RunStopped

    plan = one_pass_plan()
    btf, _ = fake_btf_at(plan, 0, -10.0)  # DHSTB001 10 A below a descending point
    shown: list = []

    class UI(QuietUI):
        def show_point(self, point, steps, writes):
            shown.append((steps, writes))

        def confirm(self, prompt):
            return False  # the crew stops after seeing the steps

    run = GuidedRun(
        plan,
        checker=btf.checker(),
        store=SQLiteStore(tmp_path / "s.sqlite"),
        runcontrol=btf.runcontrol,
        options=RunOptions(periods=(0,)),
        ui=UI(btf.clock),
        clock=btf.clock,
    )
    with pytest.raises(RunStopped):
        run.run()
    steps, writes = shown[0]
    pt = plan.point(0)
    assert not writes and len(steps) == 2
    assert steps[0]["DHSTB001"] > pt.dhstb01_current_a  # overshoot above, then down to it
    assert steps[-1]["DHSTB001"] == pytest.approx(pt.dhstb01_current_a)
