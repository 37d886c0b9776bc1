"""The dwell watch (issue 15, item 3): suspenders while a PADME run takes data.

Bluesky's suspenders are the model: during the dwell the run reads the supplies (both dipoles
and every quadrupole that answered at the start) and the TimePix spot every ``cadence_s``.
A condition that makes the data useless suspends the dwell:

* a supply not operational (trip, interlock, communication error) or its readback more than
  ``readback_fail_a`` from the plan, or a record that cannot be read (stale, missing);
* no beam at the TimePix, the TimePix not answering, or the spot moved from where it was at
  the start of the run by more than the spot tolerance (``fail_factor`` x ``alignment_mm``).

A suspension is recorded (``dwell_suspended``: reason, what to do), told to the crew, and
then, per the named :data:`POLICIES`: ``flag`` keeps the PADME run going and resumes when the
condition has cleared *and* a fresh check of the point is not FAIL (``dwell_resumed``, with
the beam-off time), the dwell being extended so that the run gets its planned time with beam;
``stop`` ends the point there (it stays open and is retaken). A suspension that does not
clear within ``max_suspend_s`` stops the point too. The beam-on and beam-off times and the
suspensions go into ``point_done`` and feed the POT accounting (POT scaled by beam-on time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hw_interfaces.btf_records import PsuState
from hw_interfaces.errors import HardwareError, NoBeam

from ..check.dipoles import dipoles

if TYPE_CHECKING:
    from hw_interfaces.clock import Clock

    from ..check.checker import Checker
    from ..records import Plan, Point
    from .ui import RunUI

KIND_SUSPENDED = "dwell_suspended"
KIND_RESUMED = "dwell_resumed"
POLICIES = ("flag", "stop")
QUADS = tuple(f"QUATB00{i}" for i in range(1, 5))


class DwellStopped(Exception):
    """The watch ended the point (policy ``stop`` or a suspension that did not clear)."""


@dataclass
class DwellReport:
    """What the dwell of one run was: seconds with and without beam, suspensions."""

    beam_on_s: float = 0.0
    beam_off_s: float = 0.0
    suspensions: list[dict[str, Any]] = field(default_factory=list)

    def as_payload(self, target_pot: float, dwell_s: float) -> dict[str, Any]:
        frac = self.beam_on_s / dwell_s if dwell_s > 0 else 1.0
        return {
            "beam_on_s": round(self.beam_on_s, 3),
            "beam_off_s": round(self.beam_off_s, 3),
            "suspensions": len(self.suspensions),
            "pot_taken": target_pot * min(1.0, frac),
        }


ADVICE = {
    "supply": "check the supply on the BTF console (reset a trip), then let the run resume; "
    "after a trip the dipole must be re-approached from the plan's branch side (hysteresis)",
    "beam": "no beam at PADME: check the machine state (BTF on, positron mode) with the LINAC "
    "operators; the run resumes when the beam is back",
    "timepix": "the TimePix readout does not answer: check Serval (dashboard, measurement "
    "running); the run resumes when frames arrive",
    "moved": "the beam moved on the TimePix: check the dipole readbacks and the machine; the "
    "run resumes when the spot is back",
}


class DwellWatch:
    """Watch one run's dwell (see the module docstring). ``append(kind, payload)`` records."""

    def __init__(
        self,
        checker: Checker,
        plan: Plan,
        point: Point,
        *,
        clock: Clock,
        ui: RunUI,
        append: Callable[[str, dict[str, Any]], None],
        cadence_s: float = 1.0,
        policy: str = "flag",
        max_suspend_s: float = 600.0,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"dwell policy must be one of {POLICIES}, got {policy!r}")
        self.checker, self.plan, self.point = checker, plan, point
        self.clock, self.ui, self.append = clock, ui, append
        self.cadence_s, self.policy, self.max_suspend_s = cadence_s, policy, max_suspend_s
        self.expected = {d.element: d.planned_current_a(point) for d in dipoles()}
        self.expected.update(
            {q: getattr(point, f"q{q[-1]}_current_a") for q in QUADS if self._readable(q)}
        )
        self.spot0 = self._spot_xy()

    def _readable(self, element: str) -> bool:
        try:
            self.checker.read_psu(element)
            return True
        except HardwareError:
            return False

    def _spot_xy(self) -> tuple[float, float] | None:
        if self.checker.spot_source is None:
            return None
        try:
            s = self.checker.spot_source.read_beam_spot()
        except HardwareError:
            return None
        return (s.x_mm, s.y_mm)

    def condition(self) -> tuple[str, str] | None:
        """``(kind, what happened)`` of the first condition that suspends, or None."""
        tol = self.checker.tol
        for element, want in self.expected.items():
            try:
                r = self.checker.read_psu(element)
            except HardwareError as exc:
                return "supply", f"{element} cannot be read: {exc}"
            if r.status is not PsuState.OPERATIONAL:
                return "supply", f"{element} is {r.status.name} (output {r.output_current_a:.3f} A)"
            if abs(r.output_current_a - want) > tol.power_supply.readback_fail_a:
                return "supply", (
                    f"{element} reads {r.output_current_a:.3f} A, planned {want:.3f} A "
                    f"(more than {tol.power_supply.readback_fail_a:g} A off)"
                )
        src = self.checker.spot_source
        if src is None:
            return None
        try:
            s = src.read_beam_spot()
        except NoBeam as exc:
            return "beam", f"no beam at the TimePix ({exc})"
        except HardwareError as exc:
            return "timepix", f"TimePix not answering: {exc}"
        limit = tol.spot.fail_factor * tol.spot.alignment_mm
        if self.spot0 is None:
            self.spot0 = (s.x_mm, s.y_mm)
        dx, dy = s.x_mm - self.spot0[0], s.y_mm - self.spot0[1]
        if max(abs(dx), abs(dy)) > limit:
            return "moved", f"the beam spot moved by ({dx:+.2f}, {dy:+.2f}) mm (limit {limit:g} mm)"
        return None

    def run(self, dwell_s: float) -> DwellReport:
        """Watch until the run has had ``dwell_s`` seconds with everything in order."""
        report = DwellReport()
        period = self.point.period
        t_good = self.clock.monotonic()  # time of the last reading with everything in order
        while True:
            cond = self.condition()
            now = self.clock.monotonic()
            if cond is None:
                report.beam_on_s += now - t_good
                t_good = now
                if report.beam_on_s >= dwell_s:
                    return report
                self.clock.sleep(min(self.cadence_s, dwell_s - report.beam_on_s))
                continue
            kind, what = cond
            entry = {
                "reason": what,
                "condition": kind,
                "advice": ADVICE[kind],
                "policy": self.policy,
            }
            self.append(KIND_SUSPENDED, {**entry, "n": len(report.suspensions)})
            self.ui.info(f"point {period}: data taking suspended: {what}. {ADVICE[kind]}")
            if self.policy == "stop":
                raise DwellStopped(f"{what} (policy 'stop')")
            self._wait_clear(t_good)
            t_resume = self.clock.monotonic()
            off = t_resume - t_good  # since the last good reading: counted as without beam
            t_good = t_resume
            report.beam_off_s += off
            report.suspensions.append({**entry, "beam_off_s": round(off, 3)})
            self.append(
                KIND_RESUMED, {"n": len(report.suspensions) - 1, "beam_off_s": round(off, 3)}
            )
            self.ui.info(f"point {period}: resumed after {off:.1f} s without good beam")

    def _wait_clear(self, t0: float) -> None:
        """Until the condition is gone and a fresh check is not FAIL (or give up)."""
        while True:
            self.clock.sleep(self.cadence_s)
            if self.clock.monotonic() - t0 > self.max_suspend_s:
                raise DwellStopped(f"the condition did not clear within {self.max_suspend_s:g} s")
            if self.condition() is not None:
                continue
            verdict = self.checker.check(self.plan, self.point.period)
            if verdict.level != "FAIL":
                self.spot0 = self._spot_xy()
                return


def watch_dwell(run: Any, point: Point, number: int, dwell_s: float) -> dict[str, Any]:
    """The dwell of run ``number`` at ``point`` of the guided ``run`` under a
    :class:`DwellWatch`; returns the ``point_done`` fields (beam-on/off time, POT). A stop
    (policy or a condition that did not clear) ends the PADME run, leaves the point open and
    raises :class:`scanplan.run.guided.RunStopped`."""
    from .events import KIND_RUN_ABANDONED
    from .guided import RunStopped

    opts = run.options
    period = point.period
    watch = DwellWatch(
        run.checker,
        run.plan,
        point,
        clock=run.clock,
        ui=run.ui,
        append=lambda kind, payload: run._append(
            kind, period, f"{kind}:{number}:{payload['n']}", payload, number
        ),
        cadence_s=opts.watch_cadence_s,
        policy=opts.dwell_policy,
        max_suspend_s=opts.max_suspend_s,
    )
    run.ui.info(f"point {period}: run {number} taking data for {dwell_s:g} s (watched)")
    try:
        report = watch.run(dwell_s)
    except DwellStopped as exc:
        outcome = run._stop_run(number, f"scanplan: run {number} stopped by the dwell watch")
        run._append(KIND_RUN_ABANDONED, period, f"abandoned:{number}", {**outcome,
                    "reason": str(exc)}, number)  # fmt: skip
        raise RunStopped(
            f"point {period}: run {number} stopped: {exc}; point left open", period
        ) from None
    return report.as_payload(point.target_pot, dwell_s)
