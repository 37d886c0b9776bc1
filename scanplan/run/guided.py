"""Guided run (``scanplan run``): take a plan point by point on the machine.

Per point, a small state machine whose every transition is an event in the run-conditions
store (idempotency key ``run:<plan sha>:<period>:...``):

1. show the set points (DHSTB001/DHSTB002 from the plan, with the hysteresis approach of
   ``beamline.hysteresis``); the crew sets them and confirms, or, only with
   ``enable_writes`` and a confirmation per write, the tool writes them (``applied``);
2. check with ``watch`` (:class:`scanplan.check.Checker`): readings and ``verdict`` events;
   FAIL -> wait ``retry_wait_s`` and check again, up to ``max_attempts``, then stop;
3. ``run_requested`` (write-ahead: the tag about to be sent), RunControl ``new_run`` with the
   start-of-run tag as comment -> ``run_created`` (run number), ``start_run`` ->
   ``run_started``; an init failure -> ``run_failed`` and a retry;
4. keep the run going for ``dwell_s`` (or until the crew confirms), ``stop_run`` ->
   ``run_stopped``; then ``point_done``.

Resuming (same command after a crash, a kill or a stop): points with ``point_done`` are
skipped. For the first open point the history says what happened: a started run that was
never stopped is stopped after the rest of its dwell (``run_stopped``); a run created but
never started is stopped and marked ``run_abandoned``; a request without an answer is
marked ``run_request_unresolved`` (RunControl may or may not have created a run: look for
the tag in PadmeDAQ). Nothing is recorded twice: each key names the step and, where there
is one, the run number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from hw_interfaces.clock import SYSTEM_CLOCK, Clock, iso_utc, parse_utc
from hw_interfaces.errors import HardwareError
from hw_interfaces.protocols import RunControlFactory, SetPointWriter

from ..check.checker import Checker
from ..check.dipoles import dipoles
from ..check.recorder import CheckRecorder
from ..check.verdict import FAIL, Verdict
from ..errors import ScanplanError
from ..exports.sor_tag import format_sor_tag
from ..records import Plan, Point
from ..store.base import RunConditionsStore
from .events import (
    KIND_APPLIED,
    KIND_PADME_PUSH,
    KIND_POINT_DONE,
    KIND_RUN_ABANDONED,
    KIND_RUN_CREATED,
    KIND_RUN_FAILED,
    KIND_RUN_REQUESTED,
    KIND_RUN_STARTED,
    KIND_RUN_STOPPED,
    KIND_RUN_UNRESOLVED,
    PointState,
    PointStatus,
    point_states,
)
from .options import RunOptions
from .setpoints import combined_steps, crew_steps_text, quad_targets_text
from .ui import QuietUI, RunUI

EXIT_DONE = 0
EXIT_STOPPED = 3


class PushResultRow(Protocol):
    """What a PadmeDAQ push returns: the row recorded in the ``padme_push`` event."""

    def as_row(self) -> dict[str, Any]: ...


class RunConditionsPusher(Protocol):
    """Pushes a started run's conditions and SOR tag to PadmeDAQ
    (:class:`scanplan.store.padmedaq.PadmeDAQStore`)."""

    def push_run_conditions(
        self, plan: Plan, period: int, run_number: int, *, measured: Mapping[str, Any] | None
    ) -> PushResultRow: ...


class RunStopped(ScanplanError):
    """The guided run stopped before the end of the plan (resumable); ``period`` is the
    point it stopped at."""

    def __init__(self, message: str, period: int | None = None) -> None:
        super().__init__(message)
        self.period = period


class GuidedRun:
    """Runs a plan on the machine (see the module docstring).

    ``checker``: the step checker (its verdicts are recorded into ``store`` by a
    :class:`CheckRecorder`). ``runcontrol``: a :class:`RunControlFactory` (one connected
    session per dialogue). ``writer``: a :class:`SetPointWriter` (only used with
    ``options.enable_writes``); every write asks ``ui.confirm``. ``padme``: a
    :class:`RunConditionsPusher`: after each run start (and for every
    started run not pushed yet, e.g. after a crash or a database outage) the point's run
    conditions and SOR tag are pushed to PadmeDAQ (``padme_push`` event); the values come
    from the stored ``run_started`` event, so a repeated push is identical (PadmeDAQ adds
    only missing rows). A push that fails is retried at the next start/end of ``run``.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        checker: Checker,
        store: RunConditionsStore,
        runcontrol: RunControlFactory,
        options: RunOptions | None = None,
        ui: RunUI | None = None,
        writer: SetPointWriter | None = None,
        padme: RunConditionsPusher | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.plan = plan
        self.sha = plan.content_sha256 or plan.compute_hash()
        if plan.content_sha256 and plan.content_sha256 != plan.compute_hash():
            raise ScanplanError("plan content hash mismatch: the plan was modified")
        self.checker = checker
        self.store = store
        self.recorder = CheckRecorder(store)
        self.runcontrol = runcontrol
        self.options = options or RunOptions()
        self.ui = ui or QuietUI(clock)
        self.writer = writer
        self.padme = padme
        self.clock = clock
        if self.options.enable_writes and writer is None:
            raise ScanplanError("writes enabled but no BTF writer given")
        if self.options.max_attempts < 1:
            raise ScanplanError("max_attempts must be >= 1")

    # -- helpers --------------------------------------------------------------------------
    def _key(self, period: int, step: str) -> str:
        return f"run:{self.sha}:{period}:{step}"

    def _append(
        self,
        kind: str,
        period: int,
        step: str,
        payload: dict[str, Any],
        run_number: int | None = None,
    ) -> None:
        self.store.append(
            kind,
            plan_sha256=self.sha,
            period=period,
            run_number=run_number,
            payload=payload,
            idempotency_key=self._key(period, step),
            time_utc=iso_utc(self.clock.now(), timespec="milliseconds"),
        )

    def points(self) -> list[Point]:
        """Points to take, in plan order (``options.periods`` selects)."""
        if self.options.periods is None:
            return list(self.plan.points)
        return [self.plan.point(p) for p in self.options.periods]

    def status(self) -> list[PointStatus]:
        """One row per selected point: done, runs, open run."""
        states = point_states(self.store, self.sha) if self._plan_recorded() else {}
        rows = []
        for pt in self.points():
            st = states.get(pt.period, PointState(pt.period))
            rows.append(
                PointStatus(
                    period=pt.period,
                    e_beam_mev=pt.e_beam_mev,
                    done=st.done,
                    runs=list(st.runs),
                    open_run=st.open_run,
                )
            )
        return rows

    def _plan_recorded(self) -> bool:
        has = getattr(self.store, "has_plan", None)
        return bool(has(self.sha)) if has is not None else True

    # -- the run --------------------------------------------------------------------------
    def run(self) -> list[PointStatus]:
        """Take every selected point not yet done; returns the status rows. Raises
        :class:`RunStopped` when a point cannot be completed (resume later)."""
        self.recorder.record_plan(self.plan)
        self.push_pending()
        for pt in self.points():
            st = point_states(self.store, self.sha).get(pt.period, PointState(pt.period))
            if st.done:
                self.ui.info(f"point {pt.period}: already done (runs {st.runs}), skipped")
                continue
            if self._recover(pt, st):
                continue
            self._take_point(pt)
        self.push_pending()
        return self.status()

    # -- PadmeDAQ -------------------------------------------------------------------------
    def push_pending(self) -> list[int]:
        """Push the run conditions of every started run of the plan not pushed yet;
        returns the run numbers pushed now (failures are reported, not raised)."""
        if self.padme is None:
            return []
        events = self.store.history(plan_sha256=self.sha, kinds=[KIND_RUN_STARTED, KIND_PADME_PUSH])
        pushed = {e.run_number for e in events if e.kind == KIND_PADME_PUSH}
        done: list[int] = []
        for ev in events:
            number = ev.run_number
            if ev.kind != KIND_RUN_STARTED or number is None or number in pushed:
                continue
            if ev.period is not None and self._push(ev.period, number, ev.payload):
                done.append(number)
        return done

    def _push(self, period: int, number: int, started: Mapping[str, Any]) -> bool:
        if self.padme is None:
            return False
        measured = {
            k: started[k]
            for k in (
                "dhstb01_current_a",
                "dhstb02_current_a",
                "timepix_x_mm",
                "timepix_y_mm",
                "level",
                "verdict",
            )
            if started.get(k) is not None
        }
        try:
            res = self.padme.push_run_conditions(self.plan, period, number, measured=measured)
        except (HardwareError, ScanplanError) as exc:
            self.ui.info(
                f"point {period}: PadmeDAQ push for run {number} failed (retried later): {exc}"
            )
            return False
        self._append(KIND_PADME_PUSH, period, f"padme:{number}", res.as_row(), run_number=number)
        self.ui.info(f"point {period}: run {number} conditions pushed to PadmeDAQ")
        return True

    def _recover(self, pt: Point, st: PointState) -> bool:
        """Settle what an interrupted session left; True if the point is now done."""
        period = pt.period
        if st.dangling_request is not None:
            self.ui.info(
                f"point {period}: a run request was sent before the interruption and not "
                "answered; RunControl may have created a run with this tag: check PadmeDAQ"
            )
            self._append(
                KIND_RUN_UNRESOLVED,
                period,
                st.dangling_request.rsplit(":", 1)[-1] + ":unresolved",
                {"request_key": st.dangling_request, "tag": self._tag(pt)},
            )
        if st.created_not_started is not None:
            n = st.created_not_started
            self.ui.info(f"point {period}: run {n} was created but never started: ending it")
            outcome = self._stop_run(n, f"scanplan: run {n} abandoned (never started)")
            self._append(KIND_RUN_ABANDONED, period, f"abandoned:{n}", outcome, run_number=n)
        if st.open_run is not None:
            n = st.open_run
            left = 0.0
            try:
                started = parse_utc(st.open_run_started_utc)
            except ValueError:
                started = None
            if self.options.dwell_s is not None and started is not None:
                ran_s = (self.clock.now() - started).total_seconds()
                left = max(0.0, self.options.dwell_s - ran_s)
            self.ui.info(f"point {period}: run {n} is still open from an interrupted session")
            self._end_run(pt, n, left)
            return True
        if st.stopped_runs:  # interrupted between run_stopped and point_done
            self._append(KIND_POINT_DONE, period, "done", {"runs": [st.stopped_runs[-1]]})
            self.ui.info(f"point {period}: done (run {st.stopped_runs[-1]}, recorded on resume)")
            return True
        return False

    def _tag(self, pt: Point) -> str:
        return format_sor_tag(self.sha, pt)

    def _take_point(self, pt: Point) -> None:
        period = pt.period
        opts = self.options
        for attempt in range(1, opts.max_attempts + 1):
            steps = self._steps(pt)
            self.ui.show_point(pt, steps, opts.enable_writes)
            if opts.enable_writes:
                self._write(pt, steps)
            elif not self.ui.confirm(
                f"Point {period}: set {crew_steps_text(steps)} (approach {pt.branch}) and "
                f"{quad_targets_text(pt)}, then confirm to check"
            ):
                raise RunStopped(f"stopped by the crew at point {period}", period)
            verdict = self.checker.check(
                self.plan,
                period,
                watch=True,
                settle_timeout_s=opts.settle_timeout_s,
                on_poll=self.ui.on_poll,
            )
            self.recorder.record(self.plan, verdict)
            self.ui.verdict(verdict, attempt)
            if verdict.level == FAIL:
                if attempt < opts.max_attempts:
                    self.ui.wait(opts.retry_wait_s, f"point {period}: check FAIL, retrying")
                    continue
                raise RunStopped(
                    f"point {period}: check FAIL after {attempt} attempts: "
                    + "; ".join(verdict.reasons[:3]),
                    period,
                )
            if not self.ui.confirm(
                f"Point {period}: check {verdict.level}; start the PADME run with tag "
                f"'{self._tag(pt)}'?"
            ):
                raise RunStopped(f"stopped by the crew before the run of point {period}", period)
            number = self._start_run(pt, verdict)
            if number is None:
                if attempt < opts.max_attempts:
                    self.ui.wait(opts.retry_wait_s, f"point {period}: run start failed, retrying")
                    continue
                raise RunStopped(
                    f"point {period}: RunControl did not start a run after {attempt} attempts",
                    period,
                )
            self._end_run(pt, number, opts.dwell_s)
            return

    def _steps(self, pt: Point) -> list[dict[str, float]]:
        """Set-point steps for both dipoles (approach from the plan's branch side)."""
        from beamline.hysteresis import parameters

        targets = {d.element: d.planned_current_a(pt) for d in dipoles()}
        # the crew setting by hand follows the same overshoot steps (shown to them)
        if not self.options.approach:
            return [targets]
        hp = parameters()
        now: dict[str, float] = {}
        for element in targets:
            # where the magnet really is: the output (after a trip 0 A, whatever the set
            # point says), unknown (NaN: overshoot) when the supply is not operational
            try:
                r = self.checker.read_psu(element)
                now[element] = r.output_current_a if r.ok else math.nan
            except HardwareError:
                now[element] = math.nan
        return combined_steps(now, targets, pt.branch, hp.overshoot_a, hp.min_step_a)

    def _write(self, pt: Point, steps: list[dict[str, float]]) -> None:
        period = pt.period
        ids: list[str] = []
        assert self.writer is not None  # checked in __init__
        for i, step in enumerate(steps):
            for element, value in step.items():
                try:
                    ids.append(
                        self.writer.write_current_setting(element, value, confirm=self.ui.confirm)
                    )
                except HardwareError as exc:
                    raise RunStopped(
                        f"point {period}: set-point write failed: {exc}", period
                    ) from None
            if i < len(steps) - 1:
                self._wait_setpoints(step)
        st = point_states(self.store, self.sha).get(period, PointState(period))
        self._append(
            KIND_APPLIED,
            period,
            f"applied:{st.applied}",
            {"steps": steps, "command_ids": ids, "approach": pt.branch},
        )

    def _wait_setpoints(self, step: dict[str, float]) -> None:
        """Wait until the readbacks reach an intermediate (overshoot) step."""
        tol = self.checker.tol
        timeout_s = self.options.settle_timeout_s
        deadline = self.clock.monotonic() + (
            tol.settle.timeout_s if timeout_s is None else timeout_s
        )
        while self.clock.monotonic() < deadline:
            try:
                if all(
                    abs(self.checker.read_psu(e).output_current_a - v)
                    <= tol.power_supply.readback_warn_a
                    for e, v in step.items()
                ):
                    return
            except HardwareError:
                pass
            self.clock.sleep(tol.settle.poll_interval_s)

    def _start_run(self, pt: Point, verdict: Verdict) -> int | None:
        period = pt.period
        opts = self.options
        st = point_states(self.store, self.sha).get(period, PointState(period))
        req = f"req{st.requests}"
        tag = self._tag(pt)
        comment = f"{tag} {opts.comment}".strip()
        request_key = self._key(period, req)
        self._append(
            KIND_RUN_REQUESTED,
            period,
            req,
            {"tag": tag, "comment": comment, "verdict": verdict.check_id, "level": verdict.level},
        )
        number: int | None = None
        try:
            with self.runcontrol() as rc:
                res = rc.new_run(opts.run_type, opts.shift_crew, comment)
                number = res.run_number
                self._append(
                    KIND_RUN_CREATED,
                    period,
                    f"created:{number}",
                    {"request_key": request_key, "setup": res.setup, "run_type": res.run_type},
                    run_number=number,
                )
                rc.start_run()
        except HardwareError as exc:
            self.ui.info(f"point {period}: RunControl: {exc}")
            payload = {
                "request_key": request_key,
                "error": str(exc),
                "error_type": type(exc).__name__,
            }
            if number is None:
                self._append(KIND_RUN_FAILED, period, f"{req}:failed", payload)
            else:
                outcome = self._stop_run(number, f"scanplan: run {number} abandoned ({exc})")
                self._append(
                    KIND_RUN_ABANDONED,
                    period,
                    f"abandoned:{number}",
                    {**payload, **outcome},
                    run_number=number,
                )
            return None
        spot = verdict.beam_spot
        self._append(
            KIND_RUN_STARTED,
            period,
            f"started:{number}",
            {
                "request_key": request_key,
                "tag": tag,
                "comment": comment,
                "verdict": verdict.check_id,
                "level": verdict.level,
                **{d.plan_field: verdict.output_current_a(d.element) for d in dipoles()},
                "timepix_x_mm": spot.x_mm if spot is not None else None,
                "timepix_y_mm": spot.y_mm if spot is not None else None,
            },
            run_number=number,
        )
        if self.padme is not None:
            ev = self.store.history(
                plan_sha256=self.sha, run_number=number, kinds=[KIND_RUN_STARTED]
            )[0]
            self._push(period, number, ev.payload)
        self.ui.info(f"point {period}: run {number} started ({tag})")
        return number

    def _stop_run(self, number: int, end_comment: str) -> dict[str, Any]:
        try:
            with self.runcontrol() as rc:
                rc.stop_run(end_comment)
            return {"outcome": "stopped", "end_comment": end_comment}
        except HardwareError as exc:
            return {"outcome": "stop_failed", "error": str(exc), "error_type": type(exc).__name__}

    def _end_run(self, pt: Point, number: int, dwell_s: float | None) -> None:
        period = pt.period
        if dwell_s is None:
            if not self.ui.confirm(f"Point {period}: end run {number} and go on?"):
                raise RunStopped(
                    f"point {period}: run {number} left running (run again to end it and go on)",
                    period,
                )
        else:
            self.ui.wait(dwell_s, f"point {period}: run {number} taking data")
        outcome = self._stop_run(number, f"scanplan: end of point {period} ({self._tag(pt)})")
        if outcome["outcome"] != "stopped":
            self.ui.info(f"point {period}: stopping run {number} failed: {outcome['error']}")
            if "no active run" not in outcome.get("error", ""):
                raise RunStopped(
                    f"point {period}: could not stop run {number}: {outcome['error']}", period
                )
        self._append(KIND_RUN_STOPPED, period, f"stopped:{number}", outcome, run_number=number)
        self._append(KIND_POINT_DONE, period, "done", {"runs": [number]})
        self.ui.info(f"point {period}: done (run {number})")
