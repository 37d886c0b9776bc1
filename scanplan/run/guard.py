"""Guards of the guided run (issue 15, items 1 and 2).

* **Writes.** A plan is written to the machine only if :func:`scanplan.planning.validation.
  validate_plan` finds no error, every set point lies in its supply's range (the simulator's
  control channel applies the same check, :func:`scanplan.sim_faults.check_supply_current`),
  and the write is confirmed by the crew for itself: ``--yes`` confirms prompts, never a
  write. Unattended writes need ``--confirm-writes PLAN_HASH``, which names the plan (at least
  :data:`MIN_HASH_PREFIX` hex digits of its hash). Every attempt is an append-only store event
  before (``write_requested``) and after (``write_done`` / ``write_refused`` /
  ``write_failed``); the set point is read back after the last step.
* **Session lock.** One guided run per store and plan: an exclusive ``flock`` on
  ``<store>.<plan hash>.lock`` held for the whole session (released by the kernel if the
  process dies, so ``kill -9`` never leaves a stale lock).
* **Store integrity.** ``run`` and ``run --status`` refuse a store file that is missing
  (``--status``) or that SQLite's ``quick_check`` finds damaged, instead of reading a partial
  history as "points not done".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScanplanError
from ..records import Plan

if TYPE_CHECKING:
    from hw_interfaces.clock import Clock

    from ..check.checker import Checker
    from ..store.base import RunConditionsStore

MIN_HASH_PREFIX = 8
KIND_WRITE_REQUESTED = "write_requested"
KIND_WRITE_DONE = "write_done"
KIND_WRITE_REFUSED = "write_refused"
KIND_WRITE_FAILED = "write_failed"
WRITE_KINDS = (KIND_WRITE_REQUESTED, KIND_WRITE_DONE, KIND_WRITE_REFUSED, KIND_WRITE_FAILED)


def check_plan_for_writes(plan: Plan) -> None:
    """Refuse to write a plan that ``scanplan validate`` rejects, or a set point its supply
    cannot deliver, whatever the plan file says."""
    from ..check.dipoles import dipoles
    from ..planning.validation import validate_plan
    from ..sim_faults import check_supply_current

    errors = [p for p in validate_plan(plan) if p.level == "error"]
    if errors:
        first = errors[0]
        where = f" (point {first.period})" if first.period is not None else ""
        raise ScanplanError(
            f"plan fails validation, nothing written: {first.message}{where}"
            + (f"; {len(errors) - 1} more error(s): run 'scanplan validate'" if len(errors) > 1
               else "")
        )  # fmt: skip
    for pt in plan.points:
        for d in dipoles():
            check_supply_current(d.element, d.planned_current_a(pt), f"point {pt.period}")


def write_confirmer(
    plan_sha: str, token: str | None, ask: Callable[[str], bool] | None
) -> Callable[[str], bool]:
    """The confirmation of each write: ``token`` (a prefix of the plan hash) confirms the
    writes of this plan only; else ``ask`` (an interactive prompt that ``--yes`` does not
    answer); with neither, every write is refused."""
    if token is not None:
        t = token.strip().lower()
        if len(t) < MIN_HASH_PREFIX or not plan_sha.startswith(t):
            raise ScanplanError(
                f"--confirm-writes {token!r} does not name this plan (hash {plan_sha[:12]}...): "
                f"give at least {MIN_HASH_PREFIX} hex digits of its hash"
            )
        return lambda _prompt: True
    if ask is None:
        return lambda _prompt: False
    return ask


def check_store_file(path: Path, *, must_exist: bool) -> None:
    """Refuse a missing store (when ``must_exist``) or one SQLite finds damaged."""
    if not path.exists():
        if must_exist:
            raise ScanplanError(f"--store: no store at {path} (nothing was recorded there)")
        return
    if not path.is_file():
        raise ScanplanError(f"--store: {path} is not a file")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            result = con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise ScanplanError(f"--store: {path} is not a readable SQLite store ({exc})") from None
    if not result or result[0] != "ok":
        raise ScanplanError(
            f"--store: {path} is damaged (SQLite quick_check: {result[0] if result else '?'}); "
            "restore it from a backup before taking or counting points"
        )


@contextlib.contextmanager
def session_lock(store_path: Path, plan_sha: str) -> Iterator[Path]:
    """Hold the one guided-run session of ``plan_sha`` on the store at ``store_path``."""
    lock_path = store_path.with_name(f"{store_path.name}.{plan_sha[:12]}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise ScanplanError(
                f"another scanplan run (pid {holder}) is taking plan {plan_sha[:12]} on store "
                f"{store_path}: one session per store and plan"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock_path
    finally:
        os.close(fd)  # releases the lock


def journaled_write(
    append: Callable[[str, int, str, dict[str, object]], None],
    period: int,
    element: str,
    current_a: float,
    write: Callable[[], str],
) -> str:
    """``write()`` (the adapter's write of ``current_a`` to ``element``) between two store
    events, so that a refused, failed or half-done sequence of writes is in the history."""
    import uuid

    from hw_interfaces.errors import HardwareError, InvalidValue, WriteNotConfirmed

    wid = uuid.uuid4().hex[:12]
    what: dict[str, object] = {"write_id": wid, "element": element, "current_a": current_a}
    append(KIND_WRITE_REQUESTED, period, f"write:{wid}", what)
    try:
        command_id = write()
    except (WriteNotConfirmed, InvalidValue) as exc:
        append(KIND_WRITE_REFUSED, period, f"write:{wid}:refused", {**what, "reason": str(exc)})
        raise
    except HardwareError as exc:
        append(KIND_WRITE_FAILED, period, f"write:{wid}:failed", {**what, "reason": str(exc)})
        raise
    append(KIND_WRITE_DONE, period, f"write:{wid}:done", {**what, "command_id": command_id})
    return command_id


def check_readback(
    read_setting_a: Callable[[str], float],
    step: dict[str, float],
    tol_a: float,
    *,
    clock: Clock | None = None,
    timeout_s: float = 0.0,
    poll_s: float = 0.2,
) -> None:
    """After the writes, the supplies must report the set points written (within ``tol_a``),
    at the latest ``timeout_s`` later (the control system republishes records at its rate)."""
    from hw_interfaces.errors import HardwareError

    deadline = (clock.monotonic() if clock is not None else 0.0) + timeout_s
    while True:
        got: dict[str, float] = {}
        for element in step:
            try:
                got[element] = read_setting_a(element)
            except HardwareError:
                got[element] = float("nan")
        bad = {e: g for e, g in got.items() if not abs(g - step[e]) <= tol_a}
        if not bad:
            return
        if clock is None or clock.monotonic() >= deadline:
            e, g = next(iter(bad.items()))
            raise ScanplanError(
                f"{e}: wrote {step[e]:.4f} A but the supply reports a set point of {g:.4f} A: "
                "the write did not take; check the supply before going on"
            )
        clock.sleep(poll_s)


#: Fields of a run_started event pushed to PadmeDAQ as the run's measured conditions.
PUSHED_FIELDS = (
    "dhstb01_current_a",
    "dhstb02_current_a",
    "timepix_x_mm",
    "timepix_y_mm",
    "level",
    "verdict",
)


def started_here(store: RunConditionsStore, plan_sha: str, run_number: int, tag: str) -> bool:
    """True if the store shows that this tool started run ``run_number`` with ``tag`` (its
    ``run_started`` event carries the start-of-run tag). A run recorded by hand (``store
    record-run``) or started by someone else is never stopped by the guided run."""
    from .events import KIND_RUN_STARTED

    events = store.history(plan_sha256=plan_sha, run_number=run_number, kinds=[KIND_RUN_STARTED])
    return any(ev.payload.get("tag") == tag for ev in events)


def wait_readbacks(
    checker: Checker, step: dict[str, float], timeout_s: float | None, clock: Clock
) -> None:
    """Wait (at most ``timeout_s``, default the settle timeout) until the readbacks are within
    ``readback_warn_a`` of an intermediate (overshoot) ``step``."""
    from hw_interfaces.errors import HardwareError

    tol = checker.tol
    deadline = clock.monotonic() + (tol.settle.timeout_s if timeout_s is None else timeout_s)
    while clock.monotonic() < deadline:
        try:
            if all(
                abs(checker.read_psu(e).output_current_a - v) <= tol.power_supply.readback_warn_a
                for e, v in step.items()
            ):
                return
        except HardwareError:
            pass
        clock.sleep(tol.settle.poll_interval_s)


#: Written before every ``stop_run``: a resumed session knows the stop was its own.
KIND_RUN_STOP_REQUESTED = "run_stop_requested"


def stop_requested(store: RunConditionsStore, plan_sha: str, run_number: int) -> bool:
    """True if this tool already asked RunControl to stop run ``run_number``. A later
    ``stop_run`` that fails with "no active run" then still ends the point (the answer was
    lost to a crash); without it the run ended elsewhere, at an unknown time: its dwell is
    not known and the point stays open."""
    events = store.history(
        plan_sha256=plan_sha, run_number=run_number, kinds=[KIND_RUN_STOP_REQUESTED]
    )
    return bool(events)


def request_stop(
    store: RunConditionsStore,
    plan_sha: str,
    run_number: int,
    append: Callable[..., None],
    period: int,
) -> bool:
    """Write ahead that this tool is stopping run ``run_number`` (once); True if it had
    already asked before (a resumed session: see :func:`stop_requested`)."""
    if stop_requested(store, plan_sha, run_number):
        return True
    append(KIND_RUN_STOP_REQUESTED, period, f"stop:{run_number}", {}, run_number)
    return False


def stop_failure(run_number: int, outcome: dict[str, object]) -> str:
    """What the crew is told when a run could not be ended by this tool."""
    if "no active run" in str(outcome.get("error", "")):
        return (
            f"run {run_number} had already ended (not by scanplan): its dwell is not known, "
            "so the point stays open; run again to retake it"
        )
    return f"could not stop run {run_number}: {outcome.get('error')}"
