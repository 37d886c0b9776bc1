"""Checks with their wiring: :func:`check_point` (sources given), :func:`open_checker` (a
checker on the real adapters at given addresses, shared by ``scanplan check`` and the guided
run) and :func:`run_check` (what ``scanplan check`` does: load, connect, check, record)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hw_interfaces.protocols import BeamSpotSource, PowerSupplySource

from ..errors import ScanplanError
from ..records import Plan
from .checker import Checker, PollCallback
from .predictor import SpotPredictor
from .recorder import CheckRecorder
from .tolerances import CheckTolerances
from .verdict import Verdict

if TYPE_CHECKING:
    from beamline.model import BeamLine

    from ..store.base import RunConditionsStore


def check_point(
    plan: Plan,
    period: int,
    *,
    psu: PowerSupplySource,
    spot: BeamSpotSource | None = None,
    model: SpotPredictor | BeamLine | None = None,
    store: RunConditionsStore | None = None,
    tolerances: CheckTolerances | None = None,
    watch: bool = False,
    settle_timeout_s: float | None = None,
) -> Verdict:
    """Check plan point ``period`` (see :class:`Checker`) and record it in ``store`` (if
    given). ``model`` is a :class:`SpotPredictor` or a :class:`beamline.model.BeamLine`
    (wrapped, not cached across calls)."""
    tol = tolerances or CheckTolerances.load()
    predictor: SpotPredictor | None
    if model is None or isinstance(model, SpotPredictor):
        predictor = model
    else:
        predictor = SpotPredictor(None, beamline=model, rel_spread=plan.inputs.bes)
    checker = Checker(psu=psu, spot=spot, predictor=predictor, tolerances=tol)
    verdict = checker.check(plan, period, watch=watch, settle_timeout_s=settle_timeout_s)
    if store is not None:
        CheckRecorder(store).record(plan, verdict)
    return verdict


def predictor_for(plan: Plan, tol: CheckTolerances) -> SpotPredictor:
    """The cached model for ``plan``'s beam-line settings and BES (built on first use; near
    the plan's currents its disk-cached linearisation, ``[linear_model]``)."""
    return SpotPredictor(
        plan.provenance.settings or None,
        rel_spread=plan.inputs.bes,
        resolution_a=tol.simulator.cache_resolution_a,
        linear=tol.linear_model,
    )


@contextmanager
def open_checker(
    plan: Plan,
    tol: CheckTolerances,
    *,
    memcached: str,
    key_prefix: str = "",
    timepix: str = "",
    timeout_s: float = 1.0,
    use_model: bool = True,
) -> Iterator[Checker]:
    """A :class:`Checker` on the real adapters at these addresses (``timepix`` empty: no
    TimePix), with the plan's model unless ``use_model`` is False; closed on exit."""
    from .connections import connect

    predictor = predictor_for(plan, tol) if use_model else None
    with connect(
        memcached, timepix or None, key_prefix=key_prefix, tolerances=tol, timeout_s=timeout_s
    ) as conn:
        yield Checker(psu=conn.psu, spot=conn.spot, predictor=predictor, tolerances=tol)


def run_check(
    plan_path: Path,
    period: int,
    *,
    memcached: str,
    key_prefix: str = "",
    timepix: str = "",
    store_path: Path | None = None,
    tolerances_path: Path | None = None,
    watch: bool = False,
    settle_timeout_s: float | None = None,
    timeout_s: float = 1.0,
    use_model: bool = True,
    on_poll: PollCallback | None = None,
) -> Verdict:
    """Load the plan, connect, check point ``period`` and record it (``scanplan check``;
    callable from a notebook). Bad input raises ScanplanError before anything is read."""
    from ..records import load_plan
    from ..store import SQLiteStore

    plan = load_plan(plan_path)
    plan.point(period)
    tol = CheckTolerances.load(tolerances_path)
    if settle_timeout_s is not None and not settle_timeout_s > 0:
        raise ScanplanError("--settle-timeout-s must be > 0")
    store = SQLiteStore(store_path)
    with open_checker(
        plan,
        tol,
        memcached=memcached,
        key_prefix=key_prefix,
        timepix=timepix,
        timeout_s=timeout_s,
        use_model=use_model,
    ) as checker:
        if checker.predictor is not None:
            checker.predictor.check_settings()  # bad settings: a clear error before reading
        verdict = checker.check(
            plan, period, watch=watch, settle_timeout_s=settle_timeout_s, on_poll=on_poll
        )
    CheckRecorder(store).record(plan, verdict)
    return verdict
