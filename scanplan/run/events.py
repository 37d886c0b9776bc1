"""The guided run's history: event kinds, the per-point state reconstructed from the store,
and the selection / summary helpers of ``scanplan run``.

Every transition of a point is an event in the run-conditions store with idempotency key
``run:<plan sha>:<period>:<step>`` (see :mod:`scanplan.run.guided`); :func:`point_states`
reads them back to decide what a resumed run still has to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from beamline.datafiles import DataModel

from ..errors import ScanplanError
from ..store.base import RunConditionsStore

KIND_RUN_REQUESTED = "run_requested"
KIND_RUN_CREATED = "run_created"
KIND_RUN_STARTED = "run_started"
KIND_RUN_STOPPED = "run_stopped"
KIND_RUN_FAILED = "run_failed"
KIND_RUN_ABANDONED = "run_abandoned"
KIND_RUN_UNRESOLVED = "run_request_unresolved"
KIND_APPLIED = "applied"
KIND_POINT_DONE = "point_done"
KIND_PADME_PUSH = "padme_push"
RUN_KINDS = (
    KIND_PADME_PUSH,
    KIND_RUN_REQUESTED,
    KIND_RUN_CREATED,
    KIND_RUN_STARTED,
    KIND_RUN_STOPPED,
    KIND_RUN_FAILED,
    KIND_RUN_ABANDONED,
    KIND_RUN_UNRESOLVED,
    KIND_APPLIED,
    KIND_POINT_DONE,
)


@dataclass
class PointState:
    """What the store says about one point of the plan."""

    period: int
    done: bool = False
    requests: int = 0
    applied: int = 0
    open_run: int | None = None
    open_run_started_utc: str = ""
    created_not_started: int | None = None
    dangling_request: str | None = None
    runs: list[int] = field(default_factory=list)
    stopped_runs: list[int] = field(default_factory=list)


def point_states(store: RunConditionsStore, plan_sha: str) -> dict[int, PointState]:
    """Per-period state reconstructed from the history (see the module docstring)."""
    out: dict[int, PointState] = {}
    requests: dict[int, dict[str, bool]] = {}
    created: dict[int, dict[int, bool]] = {}
    started: dict[int, dict[int, str]] = {}
    stopped: dict[int, set[int]] = {}
    for ev in store.history(plan_sha256=plan_sha, kinds=RUN_KINDS):
        if ev.period is None:
            continue
        st = out.setdefault(ev.period, PointState(ev.period))
        p = ev.period
        if ev.kind == KIND_POINT_DONE:
            st.done = True
        elif ev.kind == KIND_APPLIED:
            st.applied += 1
        elif ev.kind == KIND_RUN_REQUESTED:
            st.requests += 1
            requests.setdefault(p, {})[ev.idempotency_key] = False
        elif ev.kind in (KIND_RUN_CREATED, KIND_RUN_FAILED, KIND_RUN_UNRESOLVED):
            req = ev.payload.get("request_key")
            if req in requests.get(p, {}):
                requests[p][req] = True
            if ev.kind == KIND_RUN_CREATED and ev.run_number is not None:
                created.setdefault(p, {})[ev.run_number] = False
        elif ev.kind == KIND_RUN_STARTED and ev.run_number is not None:
            started.setdefault(p, {})[ev.run_number] = ev.time_utc
            created.setdefault(p, {})[ev.run_number] = True
            st.runs.append(ev.run_number)
        elif ev.kind in (KIND_RUN_STOPPED, KIND_RUN_ABANDONED) and ev.run_number is not None:
            stopped.setdefault(p, set()).add(ev.run_number)
            if ev.kind == KIND_RUN_STOPPED:
                st.stopped_runs.append(ev.run_number)
            created.setdefault(p, {})[ev.run_number] = True
    for p, st in out.items():
        for key, answered in requests.get(p, {}).items():
            if not answered:
                st.dangling_request = key
        for number, when in started.get(p, {}).items():
            if number not in stopped.get(p, set()):
                st.open_run, st.open_run_started_utc = number, when
        for number, was_started in created.get(p, {}).items():
            if not was_started and number not in stopped.get(p, set()):
                st.created_not_started = number
    return out


def parse_periods(text: str | None) -> tuple[int, ...] | None:
    """``"0,2,5"`` or ``"3:7"`` (inclusive) -> periods; None/empty -> all."""
    if not text:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if ":" in part:
                a, b = (int(x) for x in part.split(":"))
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise ScanplanError(f"--periods '{text}': use n,m,... or a:b") from None
    return tuple(dict.fromkeys(out))


class PointStatus(DataModel):
    """One row of :meth:`GuidedRun.status`: a selected point, whether it is done, its runs."""

    period: int
    e_beam_mev: float
    done: bool
    runs: list[int]
    open_run: int | None


class RunSummary(DataModel):
    """Counts of points / done points and the run numbers of a status."""

    n_points: int
    n_done: int
    runs: list[int]


def summarize(rows: Iterable[PointStatus]) -> RunSummary:
    """The :class:`RunSummary` of status rows."""
    rows = list(rows)
    return RunSummary(
        n_points=len(rows),
        n_done=sum(1 for r in rows if r.done),
        runs=[n for r in rows for n in r.runs],
    )
