"""Run conditions into PADME's online database ``PadmeDAQ`` (the production target).

For one run, :meth:`PadmeDAQStore.push_run_conditions` adds ``run_config_para`` rows whose
names start with ``scanplan.`` and a ``SOR`` log entry holding the start-of-run tag, all
in one transaction, through :mod:`hw_interfaces.padme_db` (rows only, never a schema
change). Names (added to ``config_para_name`` on first use):

* ``scanplan.plan_sha256``, ``scanplan.plan_name``, ``scanplan.period``,
  ``scanplan.pass_index``, ``scanplan.tag`` (the SOR tag);
* ``scanplan.planned.<point field>`` for every field of the plan's point (set points);
* ``scanplan.applied.<key>`` / ``scanplan.measured.<key>`` for values given by the caller
  (e.g. the latest ``applied``/``measured`` events of the SQLite store).

PadmeDAQ rows are never changed: pushing again adds only the rows that are missing; a row
that exists with a different value is a conflict and nothing is written.

Concurrency: a push is one transaction that first takes the row lock of the run
(``SELECT ... FOR UPDATE`` on ``run``), so two pushes of the same run at the same time are
serialised and the second finds the first's rows: exactly one copy. No schema change.

Consistency with RunControl: if the run's SOR entries already carry a scanplan tag (the
start-of-run comment RunControl stored), a push for another period or plan is refused and
the message shows both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hw_interfaces.clock import utc_now
from hw_interfaces.padme_db import MAX_PARA_NAME_LEN, MAX_PARA_VALUE_LEN, PadmeDB, PadmeDBSession

from ..errors import ScanplanError
from ..exports.common import plan_sha256
from ..exports.sor_tag import format_sor_tag, parse_sor_tag
from ..records import Plan

PARA_PREFIX = "scanplan."
SOR_LOG_TYPE = "SOR"
#: level of the SOR log entries written by scanplan (RunControl's own entries use 0)
DEFAULT_SOR_LEVEL = 0


def _value_text(value: Any, name: str) -> str:
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ScanplanError(f"{name} is not finite ({value!r}); cannot store it in PadmeDAQ")
        text = repr(value)
    elif isinstance(value, (int, str)):
        text = str(value)
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if len(text) > MAX_PARA_VALUE_LEN:
        raise ScanplanError(
            f"{name}: value too long for PadmeDAQ ({len(text)} > {MAX_PARA_VALUE_LEN})"
        )
    return text


def run_condition_paras(
    plan: Plan,
    period: int,
    *,
    applied: Mapping[str, Any] | None = None,
    measured: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The ``scanplan.*`` name -> value rows for the plan's point ``period``."""
    point = plan.point(period)
    sha = plan_sha256(plan)
    values: dict[str, Any] = {
        "plan_sha256": sha,
        "plan_name": plan.name,
        "period": point.period,
        "pass_index": point.pass_index,
        "tag": format_sor_tag(sha, point),
    }
    for key, value in point.model_dump(mode="json").items():
        values[f"planned.{key}"] = value
    for group, extra in (("applied", applied), ("measured", measured)):
        for key, value in (extra or {}).items():
            values[f"{group}.{key}"] = value
    out: dict[str, str] = {}
    for key, value in values.items():
        name = PARA_PREFIX + key
        if len(name) > MAX_PARA_NAME_LEN:
            raise ScanplanError(f"parameter name {name!r} is longer than {MAX_PARA_NAME_LEN}")
        out[name] = _value_text(value, name)
    return out


@dataclass(frozen=True)
class PushResult:
    """What a push added (``added`` names, ``log_entry_id``) and what was already there."""

    run_number: int
    plan_sha256: str
    period: int
    added: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    log_entry_id: int | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "run_number": self.run_number,
            "plan_sha256": self.plan_sha256,
            "period": self.period,
            "added": len(self.added),
            "already_present": len(self.already_present),
            "sor_log_entry_added": self.log_entry_id is not None,
        }


def _check_sor_tag(run_number: int, theirs: Mapping[str, Any], mine: Mapping[str, Any]) -> None:
    """Refuse a push that contradicts the scanplan tag already in the run's SOR entry."""
    for key, label in (("plan_sha12", "plan"), ("period", "period")):
        if theirs.get(key) != mine.get(key):
            raise ScanplanError(
                f"run {run_number}: its start-of-run tag says {label} {theirs.get(key)}, this "
                f"push says {label} {mine.get(key)}; refusing to record conditions that "
                "contradict RunControl's SOR entry (check --run/--period); nothing was written"
            )


class PadmeDAQStore:
    """Run conditions per run in a PadmeDAQ database (rows only, one transaction per push)."""

    def __init__(self, db: PadmeDB | None = None) -> None:
        self.db = db or PadmeDB()

    def push_run_conditions(
        self,
        plan: Plan,
        period: int,
        run_number: int,
        *,
        applied: Mapping[str, Any] | None = None,
        measured: Mapping[str, Any] | None = None,
        sor_level: int = DEFAULT_SOR_LEVEL,
        time_utc: datetime | None = None,
    ) -> PushResult:
        """Add the point's run-condition rows and SOR tag entry for ``run_number``."""
        paras = run_condition_paras(plan, period, applied=applied, measured=measured)
        sha = paras[PARA_PREFIX + "plan_sha256"]
        when = (time_utc or utc_now()).astimezone(timezone.utc)
        when = when.replace(tzinfo=None, microsecond=0)

        def push(s: PadmeDBSession) -> PushResult:
            s.lock_run(run_number)
            tag = paras[PARA_PREFIX + "tag"]
            mine = parse_sor_tag(tag)
            have_tag = False
            for entry in s.read_log_entries(run_number, SOR_LOG_TYPE):
                try:
                    parsed = parse_sor_tag(entry.text or "")
                except ScanplanError:
                    continue
                _check_sor_tag(run_number, parsed, mine)
                if parsed == mine:
                    have_tag = True
            existing: dict[str, set[str]] = {}
            for row in s.read_config_paras(run_number, PARA_PREFIX):
                existing.setdefault(row.name, set()).add(row.value)
            conflicts = [
                f"{name} = {sorted(existing[name])[0]!r} (this push: {value!r})"
                for name, value in paras.items()
                if name in existing and value not in existing[name]
            ]
            if conflicts:
                raise ScanplanError(
                    f"run {run_number} already has different scanplan values in PadmeDAQ: "
                    f"{conflicts[0]}{f' and {len(conflicts) - 1} more' if len(conflicts) > 1 else ''}"
                    "; PadmeDAQ rows are never changed, nothing was written"
                )
            added, present = [], []
            for name, value in paras.items():
                if name in existing:
                    present.append(name)
                else:
                    s.add_run_config_para(run_number, name, value)
                    added.append(name)
            log_id = None
            if not have_tag:
                log_id = s.add_log_entry(run_number, SOR_LOG_TYPE, sor_level, when, tag)
            return PushResult(run_number, sha, period, added, present, log_id)

        return self.db.run_transaction(push)

    def read_run_conditions(self, run_number: int) -> dict[str, Any]:
        """``scanplan.*`` rows of a run and the scanplan tags found in its SOR entries."""
        with self.db.transaction() as s:
            run = s.read_run(run_number)
            paras = s.read_config_paras(run_number, PARA_PREFIX)
            entries = s.read_log_entries(run_number, SOR_LOG_TYPE)
        tags = []
        for entry in entries:
            try:
                tags.append(parse_sor_tag(entry.text or ""))
            except ScanplanError:
                continue
        return {
            "run_number": run.number,
            "run_name": run.name,
            "paras": {p.name: p.value for p in paras},
            "sor_tags": tags,
        }
