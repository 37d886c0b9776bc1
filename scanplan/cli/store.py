"""``scanplan store``: the run-conditions store (append-only SQLite history) and pushes of
run conditions to PADME's ``PadmeDAQ`` database.

Commands: ``record-plan``, ``record-run``, ``append``, ``history``, ``push-padme``,
``read-padme``, ``parse-tag``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hw_interfaces import padme_db

from ..errors import ScanplanError
from ..store.location import DEFAULT_STORE_FILE
from .common import console, guarded, print_json, rich_table
from .tables import flexible_table

app = typer.Typer(
    name="store",
    help="Run-conditions store (append-only history) and PadmeDAQ run conditions.",
    no_args_is_help=True,
    add_completion=False,
)

StoreOpt = Annotated[
    Path | None,
    typer.Option(help=f"SQLite store file (default: $SCANPLAN_STORE or ./{DEFAULT_STORE_FILE})."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print rows as JSON.")]
DbHostOpt = Annotated[
    str | None,
    typer.Option(help=f"PadmeDAQ host (default $PADME_DB_HOST, else {padme_db.DEFAULT_HOST})."),
]
DbPortOpt = Annotated[
    int | None,
    typer.Option(help=f"PadmeDAQ port (default $PADME_DB_PORT, else {padme_db.DEFAULT_PORT})."),
]
DbUserOpt = Annotated[str | None, typer.Option(help="PadmeDAQ user (default $PADME_DB_USER).")]
DbPasswordOpt = Annotated[
    str | None, typer.Option(help="PadmeDAQ password (default $PADME_DB_PASSWD).")
]
DbNameOpt = Annotated[
    str | None,
    typer.Option(help=f"Database (default $PADME_DB_NAME, else {padme_db.DEFAULT_DATABASE})."),
]

_EVENT_COLUMNS = [
    ("id", "id", "d"),
    ("kind", "kind", ""),
    ("plan", "plan", ""),
    ("period", "period", ""),
    ("run_number", "run", ""),
    ("time_utc", "time (UTC)", ""),
    ("summary", "payload", ""),
]


def _store(path: Path | None, *, read_only: bool = False) -> Any:
    from scanplan.store.sqlite import SQLiteStore

    return SQLiteStore(path, read_only=read_only)


def _plan_sha(store: Any, plan: str) -> str:
    """A plan file (loaded, hash verified) or a hash prefix recorded in the store."""
    from scanplan.records import load_plan

    if Path(plan).is_file():
        loaded = load_plan(plan)
        return loaded.content_sha256
    return store.resolve_plan_sha(plan)


def _summary(payload: dict[str, Any], width: int = 70) -> str:
    text = json.dumps(payload, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_events(events: list[Any], title: str, json_out: bool) -> None:
    rows = [e.as_row() | {"created": e.created} for e in events]
    if json_out:
        print_json(rows)
        return
    table_rows = [
        r | {"plan": (r["plan_sha256"] or "")[:12], "summary": _summary(r["payload"])} for r in rows
    ]
    console.print(flexible_table(title, table_rows, _EVENT_COLUMNS, flexible="summary"))


def _db(
    host: str | None, port: int | None, user: str | None, password: str | None, name: str | None
) -> Any:
    from hw_interfaces.padme_db import PadmeDB

    return PadmeDB(host=host, port=port, user=user, password=password, database=name)


@app.command("record-plan")
@guarded
def record_plan(
    plan_file: Annotated[Path, typer.Argument(help="Plan JSON (hash verified).")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record a plan and one 'planned' event per point (idempotent)."""
    from scanplan.records import load_plan

    plan = load_plan(plan_file)
    st = _store(store)
    events = st.record_plan(plan)
    new = sum(e.created for e in events)
    if json_out:
        print_json(
            {
                "store": str(st.path),
                "plan_sha256": plan.content_sha256,
                "points": len(events),
                "new_events": new,
            }
        )
        return
    _print_events(
        events, f"plan {plan.content_sha256[:12]} in {st.path}: {new} new planned events", False
    )


@app.command("record-run")
@guarded
def record_run(
    plan: Annotated[str, typer.Option(help="Plan file or recorded plan hash prefix.")],
    period: Annotated[int, typer.Option(help="Scan point index.")],
    run: Annotated[int, typer.Option(help="PADME run number taken at this point.")],
    time_utc: Annotated[str | None, typer.Option(help="Run start time (ISO 8601 UTC).")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record that run RUN was taken at point PERIOD of a plan ('run_started', idempotent)."""
    from scanplan.store.base import KIND_RUN_STARTED, check_time_utc

    if time_utc is not None:
        check_time_utc(time_utc)
    st = _store(store)
    sha = _plan_sha(st, plan)
    payload: dict[str, Any] = {"run_number": run}
    if time_utc:
        payload["start_time_utc"] = time_utc
    ev = st.append(
        KIND_RUN_STARTED,
        plan_sha256=sha,
        period=period,
        run_number=run,
        payload=payload,
        idempotency_key=f"{KIND_RUN_STARTED}:{sha}:{period}:{run}",
    )
    _print_events([ev], f"store {st.path}", json_out)


#: Events about one PADME run: appending one without its run number is refused.
_RUN_EVENT_KINDS = frozenset(
    {"run_created", "run_started", "run_stopped", "run_failed", "run_abandoned", "point_done",
     "padme_push"}
)  # fmt: skip


def _known_kinds() -> list[str]:
    """Every event kind this tool writes (the store's and the guided run's)."""
    from scanplan.run.events import RUN_KINDS
    from scanplan.store.base import KNOWN_KINDS

    return sorted({*KNOWN_KINDS, *RUN_KINDS})


@app.command("append")
@guarded
def append(
    kind: Annotated[str, typer.Argument(help="applied | measured | reading | verdict | ...")],
    payload: Annotated[str, typer.Option(help="JSON object with the values.")],
    plan: Annotated[str | None, typer.Option(help="Plan file or hash prefix.")] = None,
    period: Annotated[int | None, typer.Option(help="Scan point index.")] = None,
    run: Annotated[int | None, typer.Option(help="PADME run number.")] = None,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key (default: from content).")
    ] = None,
    time_utc: Annotated[str | None, typer.Option(help="Event time (ISO 8601 UTC).")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Append one event to the history (append-only; same key + same content: no-op)."""
    try:
        values = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ScanplanError(f"--payload is not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ScanplanError("--payload must be a JSON object")
    if kind in _RUN_EVENT_KINDS and run is None:
        raise ScanplanError(f"a '{kind}' event names a PADME run: give --run")
    st = _store(store)
    sha = _plan_sha(st, plan) if plan else None
    ev = st.append(
        kind,
        plan_sha256=sha,
        period=period,
        run_number=run,
        payload=values,
        idempotency_key=key,
        time_utc=time_utc,
    )
    _print_events([ev], f"store {st.path}", json_out)


@app.command("history")
@guarded
def history(
    plan: Annotated[str | None, typer.Option(help="Plan file or hash prefix.")] = None,
    period: Annotated[int | None, typer.Option(help="Scan point index.")] = None,
    run: Annotated[int | None, typer.Option(help="PADME run number.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only these kinds (repeatable).")] = None,
    latest: Annotated[
        bool, typer.Option("--latest", help="Current state: latest event per kind/period/run.")
    ] = False,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the history (oldest first) or, with --latest, the current state."""
    known = _known_kinds()
    for k in kind or []:
        if k not in known:
            raise ScanplanError(f"--kind: unknown event kind '{k}'; known: {', '.join(known)}")
    st = _store(store, read_only=True)
    sha = _plan_sha(st, plan) if plan else None
    filters = dict(plan_sha256=sha, period=period, run_number=run, kinds=kind or None)
    events = list(st.latest(**filters).values()) if latest else st.history(**filters)
    events.sort(key=lambda e: e.id)
    _print_events(events, f"store {st.path}: {len(events)} events", json_out)


@app.command("push-padme")
@guarded
def push_padme(
    run: Annotated[int, typer.Option(help="PADME run number (must exist in PadmeDAQ).")],
    period: Annotated[int, typer.Option(help="Scan point index of the run.")],
    plan: Annotated[Path, typer.Option(help="Plan JSON (hash verified).")],
    store: Annotated[
        Path | None,
        typer.Option(
            help="Take the latest applied/measured values of the run from this store "
            "and record the push there (default: the default store if present)."
        ),
    ] = None,
    db_host: DbHostOpt = None,
    db_port: DbPortOpt = None,
    db_user: DbUserOpt = None,
    db_password: DbPasswordOpt = None,
    db_name: DbNameOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a run's conditions to PadmeDAQ: scanplan.* run_config_para rows + SOR tag.

    One transaction holding the run's row lock (concurrent pushes leave one copy). Refused
    (exit 2) if the run's start-of-run tag names another period or plan. Exit 75
    (EX_TEMPFAIL) when the database is unreachable or restarting: retry later.
    """
    from scanplan.records import load_plan
    from scanplan.store.base import KIND_APPLIED, KIND_MEASURED, KIND_PADME_PUSH
    from scanplan.store.padmedaq import PadmeDAQStore
    from scanplan.store.sqlite import SQLiteStore, default_store_path

    loaded = load_plan(plan)
    loaded.point(period)
    sha = loaded.content_sha256
    st = None
    target = store or default_store_path()
    if store is not None or target.exists():
        st = SQLiteStore(target)
    applied: dict[str, Any] = {}
    measured: dict[str, Any] = {}
    if st is not None and st.has_plan(sha):
        for ev in st.history(plan_sha256=sha, run_number=run, kinds=[KIND_APPLIED, KIND_MEASURED]):
            (applied if ev.kind == KIND_APPLIED else measured).update(ev.payload)
    db = _db(db_host, db_port, db_user, db_password, db_name)
    result = PadmeDAQStore(db).push_run_conditions(
        loaded, period, run, applied=applied, measured=measured
    )
    row = result.as_row() | {"database": db.address}
    if st is not None and result.added and st.has_plan(sha):
        digest = hashlib.sha256("\n".join(result.added).encode()).hexdigest()[:16]
        st.append(
            KIND_PADME_PUSH,
            plan_sha256=sha,
            period=period,
            run_number=run,
            payload={"database": db.address, "added": result.added},
            idempotency_key=f"{KIND_PADME_PUSH}:{sha}:{period}:{run}:{digest}",
        )
    if json_out:
        print_json(row | {"added_names": result.added})
        return
    columns = [
        ("database", "database", ""),
        ("run_number", "run", "d"),
        ("period", "period", "d"),
        ("added", "rows added", "d"),
        ("already_present", "already there", "d"),
        ("sor_log_entry_added", "SOR entry added", ""),
    ]
    console.print(rich_table(f"PadmeDAQ push, plan {sha[:12]}", [row], columns))


@app.command("read-padme")
@guarded
def read_padme(
    run: Annotated[int, typer.Option(help="PADME run number.")],
    db_host: DbHostOpt = None,
    db_port: DbPortOpt = None,
    db_user: DbUserOpt = None,
    db_password: DbPasswordOpt = None,
    db_name: DbNameOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a run's scanplan.* rows and the scanplan tags of its SOR entries."""
    from scanplan.store.padmedaq import PadmeDAQStore

    data = PadmeDAQStore(_db(db_host, db_port, db_user, db_password, db_name)).read_run_conditions(
        run
    )
    if json_out:
        print_json(data)
        return
    rows = [{"name": k, "value": v} for k, v in data["paras"].items()]
    rows += [{"name": "SOR tag", "value": json.dumps(t)} for t in data["sor_tags"]]
    console.print(
        rich_table(
            f"run {run} ({data['run_name']})", rows, [("name", "name", ""), ("value", "value", "")]
        )
    )


@app.command("parse-tag")
@guarded
def parse_tag(
    text: Annotated[str, typer.Argument(help="Start-of-run comment containing a scanplan tag.")],
    json_out: JsonOpt = False,
) -> None:
    """Parse the scanplan start-of-run tag inside a comment."""
    from scanplan.exports.sor_tag import parse_sor_tag

    tag = parse_sor_tag(text)
    if json_out:
        print_json(tag)
        return
    console.print(
        rich_table(
            "scanplan tag",
            [{"field": k, "value": v} for k, v in tag.items()],
            [("field", "field", ""), ("value", "value", "")],
        )
    )
