"""The one writer of check records: readings and verdicts into the run-conditions store.

:class:`CheckRecorder` appends, for one :class:`Verdict`, the readings of every settle poll
(kind ``reading``, phase ``settle``), the readings the verdict judged (phase ``check``, poll
-1), the TimePix reading and the verdict itself, each with an idempotency key derived from
the check id (``check:<id>:<poll>:<element>``, ``check:<id>:verdict``), so a retried record
never duplicates an event. The plan is recorded once per recorder before its first check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import Plan
from .verdict import PsuReading, SpotReading, Verdict, finite_or_none

if TYPE_CHECKING:
    from ..store.base import RunConditionsStore


class CheckRecorder:
    """Writes verdicts and their readings to ``store`` (see the module docstring)."""

    def __init__(self, store: RunConditionsStore) -> None:
        self.store = store
        self._recorded_plans: set[str] = set()

    def record_plan(self, plan: Plan) -> str:
        """Record ``plan`` (once per recorder); returns its content hash."""
        sha = plan.content_sha256 or plan.compute_hash()
        if sha not in self._recorded_plans:
            self.store.record_plan(plan)
            self._recorded_plans.add(sha)
        return sha

    def record(self, plan: Plan, verdict: Verdict) -> None:
        """Append the settle polls, readings, spot and verdict of one check of ``plan``."""
        sha = self.record_plan(plan)
        for poll in verdict.settle_polls:
            for element, r in poll.readings.items():
                self._reading(sha, verdict, element, r, poll=poll.poll, phase="settle")
        for element, r in verdict.readings.items():
            self._reading(sha, verdict, element, r, poll=-1, phase="check")
        if verdict.spot is not None:
            self._reading(sha, verdict, verdict.spot.element, verdict.spot, poll=-1, phase="check")
        self.store.append(
            "verdict",
            plan_sha256=sha,
            period=verdict.period,
            payload=verdict.as_dict(),
            idempotency_key=f"check:{verdict.check_id}:verdict",
            time_utc=verdict.time_utc,
        )

    def _reading(
        self,
        sha: str,
        verdict: Verdict,
        element: str,
        reading: PsuReading | SpotReading,
        *,
        poll: int,
        phase: str,
    ) -> None:
        payload = finite_or_none(reading.model_dump(mode="json"))
        payload.update(check_id=verdict.check_id, phase=phase, poll=poll)
        self.store.append(
            "reading",
            plan_sha256=sha,
            period=verdict.period,
            payload=payload,
            idempotency_key=f"check:{verdict.check_id}:{poll}:{element}",
            time_utc=payload["time_utc"],
        )
