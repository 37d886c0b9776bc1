"""``scanplan run``: the guided run of a plan (see :mod:`scanplan.run`).

Exit codes: 0 every selected point done, 3 stopped before the end (FAIL verdicts, RunControl
failure, crew said no; run the same command again to resume), 2 bad input, 130 Ctrl-C
(resumable too).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ScanplanError
from ..run.options import DEFAULT_OPTIONS
from .check import (
    SETTLE_TIMEOUT_HELP,
    PlanOpt,
    StoreOpt,
    TimeoutOpt,
    TolOpt,
    poll_text,
    print_verdict,
)
from .common import (
    DEFAULT_MEMCACHED,
    DEFAULT_TIMEPIX_URL,
    MAX_DWELL_S,
    MAX_HW_TIMEOUT_S,
    MAX_WAIT_S,
    JsonOpt,
    MemcachedOpt,
    PrefixOpt,
    TimepixUrlOpt,
    check_number,
    check_output_path,
    console,
    err_console,
    guarded,
    print_json,
    rich_table,
)

if TYPE_CHECKING:
    from rich.status import Status

    from ..check.verdict import SettlePoll, Verdict
    from ..records import Point
    from ..run import PointStatus, RunStopped, RunSummary

#: Ctrl-C (resumable, as a stop)
EXIT_INTERRUPTED = 130
#: the guided run's defaults, read once from their home (scanplan.run.options)
D = DEFAULT_OPTIONS


class ConsoleUI:
    """Rich output and typer prompts (``yes``: confirm everything without asking)."""

    def __init__(self, *, yes: bool, quiet: bool) -> None:
        self.yes = yes
        self.quiet = quiet
        self.status: Status | None = None
        self.log: list[str] = []

    def _print(self, text: str) -> None:
        self.log.append(text)
        if not self.quiet:
            console.print(text, highlight=False)

    def info(self, message: str) -> None:
        self._print(message)

    def confirm(self, prompt: str) -> bool:
        if self.yes:
            self._print(prompt + " [--yes]")
            return True
        try:
            return typer.confirm(prompt, default=False)
        except (typer.Abort, EOFError):  # stdin closed or Ctrl-D: a "no"
            return False

    def confirm_write(self, prompt: str) -> bool:
        """A set-point write is asked for every time: ``--yes`` does not answer it."""
        try:
            return typer.confirm(prompt + " (a write to the machine)", default=False)
        except (typer.Abort, EOFError, OSError):  # no terminal to answer on
            self._print(prompt + " -> not confirmed (no terminal; see --confirm-writes)")
            return False

    def show_point(self, point: Point, steps: list[dict[str, float]], writes: bool) -> None:
        rows = [
            {"step": i + 1, **{e: f"{v:.3f}" for e, v in s.items()}} for i, s in enumerate(steps)
        ]
        if not self.quiet:
            console.print(
                rich_table(
                    f"Point {point.period}: E = {point.e_beam_mev:.3f} MeV, approach "
                    f"{point.branch}" + (" (tool writes)" if writes else " (crew sets)"),
                    rows,
                    [
                        ("step", "step", ""),
                        ("DHSTB001", "DHSTB001 [A]", ""),
                        ("DHSTB002", "DHSTB002 [A]", ""),
                    ],
                )
            )
        self.log.append(f"point {point.period}: set {steps[-1]}")

    def verdict(self, verdict: Verdict, attempt: int) -> None:
        self._stop_spinner()
        self.log.append(f"point {verdict.period} check {attempt}: {verdict.level}")
        if not self.quiet:
            print_verdict(verdict)

    def on_poll(self, poll: SettlePoll) -> None:
        """Spinner with the live readbacks while the check waits for them to settle."""
        if self.quiet:
            return
        if self.status is None:
            self.status = console.status("settling")
            self.status.start()
        self.status.update(poll_text(poll))

    def _stop_spinner(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def wait(self, seconds: float, message: str) -> None:
        import time

        self._print(f"{message} ({seconds:g} s)")
        if seconds <= 0:
            return
        if self.quiet:
            time.sleep(seconds)
            return
        with console.status(message) as st:
            t_end = time.monotonic() + seconds
            while (left := t_end - time.monotonic()) > 0:
                st.update(f"{message}: {left:.0f} s left")
                time.sleep(min(0.5, left))


@guarded
def run(
    plan: PlanOpt,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm every prompt (unattended, simulator).")
    ] = False,
    enable_writes: Annotated[
        bool,
        typer.Option(
            "--enable-writes",
            help="Write the dipole set points through the BTF memcached command path "
            "(each write confirmed at its own prompt; --yes does not confirm writes).",
        ),
    ] = D.enable_writes,
    dwell_policy: Annotated[
        str,
        typer.Option(
            "--dwell-policy",
            help="On a suspension during data taking (trip, no beam, dead TimePix): 'flag' "
            "keeps the PADME run and resumes when clear, 'stop' ends it (point left open).",
        ),
    ] = D.dwell_policy,
    watch_cadence_s: Annotated[
        float,
        typer.Option("--watch-cadence-s", help="Readings during data taking every [s] (0: off)."),
    ] = D.watch_cadence_s,
    confirm_writes: Annotated[
        str | None,
        typer.Option(
            "--confirm-writes",
            metavar="PLAN_HASH",
            help="Confirm the writes of this plan without prompts: the first 8+ hex digits "
            "of its hash (scanplan show prints it).",
        ),
    ] = None,
    no_approach: Annotated[
        bool, typer.Option("--no-approach", help="Write set points directly (no overshoot).")
    ] = not D.approach,
    periods: Annotated[
        str | None, typer.Option("--periods", help="Only these periods: n,m or a:b.")
    ] = None,
    dwell_s: Annotated[
        float | None,
        typer.Option("--dwell-s", help="Run length before the tool stops it [s] (default: ask)."),
    ] = D.dwell_s,
    run_type: Annotated[str, typer.Option("--run-type", help="RunControl run type.")] = D.run_type,
    shift_crew: Annotated[
        str, typer.Option("--shift-crew", help="Shift crew names.")
    ] = D.shift_crew,
    comment: Annotated[
        str, typer.Option("--comment", help="Free text after the start-of-run tag.")
    ] = D.comment,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", help="Checks / run starts per point before stopping.")
    ] = D.max_attempts,
    retry_wait_s: Annotated[
        float, typer.Option("--retry-wait-s", help="Wait between attempts [s].")
    ] = D.retry_wait_s,
    settle_timeout_s: Annotated[
        float | None, typer.Option("--settle-timeout-s", help="Per check: " + SETTLE_TIMEOUT_HELP)
    ] = D.settle_timeout_s,
    runcontrol: Annotated[
        str,
        typer.Option("--runcontrol", envvar="SCANPLAN_RUNCONTROL", help="RunControl HOST:PORT."),
    ] = "127.0.0.1:10000",
    runcontrol_timeout_s: Annotated[
        float, typer.Option("--runcontrol-timeout-s", help="RunControl answer timeout [s].")
    ] = 5.0,
    memcached: MemcachedOpt = DEFAULT_MEMCACHED,
    key_prefix: PrefixOpt = "",
    timepix: TimepixUrlOpt = DEFAULT_TIMEPIX_URL,
    store: StoreOpt = None,
    tolerances: TolOpt = None,
    timeout_s: TimeoutOpt = 1.0,
    audit_log: Annotated[
        Path | None,
        typer.Option("--audit-log", help="Append every write attempt here (JSON lines)."),
    ] = None,
    padme_push: Annotated[
        bool,
        typer.Option(
            "--padme-push",
            help="Push each run's conditions and SOR tag to PadmeDAQ (connection from "
            "PADME_DB_HOST/PORT/USER/PASSWD/NAME); failed pushes are retried on resume.",
        ),
    ] = False,
    status_only: Annotated[
        bool, typer.Option("--status", help="Only show which points are done.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Take the plan point by point: show/set currents, check, start the PADME run with the
    tag, record; resumable after a crash. Exit 0 done, 3 stopped (resume), 2 bad input."""
    check_output_path(audit_log, "--audit-log")
    check_number(dwell_s, "--dwell-s", low=0, high=MAX_DWELL_S)
    check_number(watch_cadence_s, "--watch-cadence-s", low=0, high=MAX_WAIT_S)
    if dwell_policy not in ("flag", "stop"):
        raise ScanplanError(f"--dwell-policy must be flag or stop, got {dwell_policy!r}")
    check_number(retry_wait_s, "--retry-wait-s", low=0, high=MAX_WAIT_S)
    check_number(settle_timeout_s, "--settle-timeout-s", low=0, high=MAX_WAIT_S, low_open=True)
    check_number(timeout_s, "--timeout-s", low=0, high=MAX_HW_TIMEOUT_S, low_open=True)
    check_number(runcontrol_timeout_s, "--runcontrol-timeout-s", low=0, high=MAX_HW_TIMEOUT_S)
    if padme_push and not os.environ.get("PADME_DB_USER"):
        raise ScanplanError("--padme-push needs the PadmeDAQ account: set PADME_DB_USER")
    from ..run import (
        EXIT_STOPPED,
        RunOptions,
        RunStopped,
        open_guided_run,
        parse_periods,
        summarize,
    )

    options = RunOptions(
        run_type=run_type,
        shift_crew=shift_crew,
        comment=comment,
        dwell_s=dwell_s,
        max_attempts=max_attempts,
        retry_wait_s=retry_wait_s,
        settle_timeout_s=settle_timeout_s,
        enable_writes=enable_writes,
        approach=not no_approach,
        periods=parse_periods(periods),
        write_confirmation=confirm_writes,
        dwell_policy=dwell_policy,
        watch_cadence_s=watch_cadence_s,
    )
    ui = ConsoleUI(yes=yes, quiet=json_out)
    stopped: RunStopped | None = None
    try:
        with open_guided_run(
            plan,
            options=options,
            ui=ui,
            memcached=memcached,
            key_prefix=key_prefix,
            timepix=timepix,
            store_path=store,
            tolerances_path=tolerances,
            timeout_s=timeout_s,
            runcontrol=runcontrol,
            runcontrol_timeout_s=runcontrol_timeout_s,
            audit_log=audit_log,
            padme_push=padme_push,
            lock=not status_only,
        ) as guided:
            if status_only:
                rows = guided.status()
            else:
                predictor = guided.checker.predictor
                with console.status("building the beam-line model") if not json_out else _null():
                    if predictor is not None:
                        predictor.beamline  # noqa: B018
                try:
                    rows = guided.run()
                except RunStopped as exc:
                    stopped = exc
                    rows = guided.status()
                except KeyboardInterrupt:
                    err_console.print(
                        "interrupted: run the same command again to resume", highlight=False
                    )
                    raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        ui._stop_spinner()
    print_status(guided.plan.content_sha256, rows, summarize(rows), stopped, status_only, json_out)
    if stopped:
        raise typer.Exit(EXIT_STOPPED)


def print_status(
    plan_sha256: str,
    rows: list[PointStatus],
    summary: RunSummary,
    stopped: RunStopped | None,
    status_only: bool,
    json_out: bool,
) -> None:
    """The per-point table (or JSON) after a run or ``--status``."""
    if json_out:
        print_json(
            {
                "plan_sha256": plan_sha256,
                "status": "stopped" if stopped else "done" if not status_only else "status",
                "stopped_reason": str(stopped) if stopped else None,
                "stopped_at_period": stopped.period if stopped else None,
                "points": [r.model_dump() for r in rows],
                **summary.model_dump(),
            }
        )
        return
    table_rows = [
        {
            "period": r.period,
            "e": r.e_beam_mev,
            "done": "yes" if r.done else "no",
            "runs": ",".join(str(n) for n in r.runs),
            "open": r.open_run or "",
        }
        for r in rows
    ]
    console.print(
        rich_table(
            f"Plan {plan_sha256[:12]}: {summary.n_done}/{summary.n_points} points done",
            table_rows,
            [
                ("period", "period", ""),
                ("e", "E [MeV]", ".3f"),
                ("done", "done", ""),
                ("runs", "runs", ""),
                ("open", "open run", ""),
            ],
        )
    )
    if stopped:
        err_console.print(f"stopped: {stopped}; run again to resume", highlight=False)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
