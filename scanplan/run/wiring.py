"""Wiring of a guided run from addresses (what ``scanplan run`` does before it runs): the
plan, tolerances, store, model, the real adapters (memcached, TimePix, RunControl,
PadmeDAQ) and the :class:`GuidedRun` on top of them. The CLI stays a thin shell around
:func:`open_guided_run`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hw_interfaces.protocols import RunControlFactory
from hw_interfaces.runcontrol import RunControlClient

from ..check.connections import check_timeout
from ..check.session import open_checker
from ..check.tolerances import CheckTolerances
from ..errors import ScanplanError
from .guided import GuidedRun, RunConditionsPusher
from .options import RunOptions
from .ui import RunUI

#: RunControl's init / terminate dialogues take at least this long on the real DAQ [s]
MIN_DIALOGUE_TIMEOUT_S = 10.0


def check_options(options: RunOptions) -> RunOptions:
    """``options`` if every number is in range, else ScanplanError naming the option."""
    if not (options.retry_wait_s >= 0 and math.isfinite(options.retry_wait_s)):
        raise ScanplanError("--retry-wait-s must be >= 0")
    if options.dwell_s is not None and not (
        options.dwell_s >= 0 and math.isfinite(options.dwell_s)
    ):
        raise ScanplanError("--dwell-s must be >= 0")
    if options.settle_timeout_s is not None:
        check_timeout(options.settle_timeout_s, "--settle-timeout-s")
    return options


def runcontrol_factory(address: str, timeout_s: float) -> RunControlFactory:
    """A factory of :class:`RunControlClient` sessions on ``HOST:PORT`` (default port 10000)."""
    from hw_interfaces.btf_controls import parse_hostport

    check_timeout(timeout_s, "--runcontrol-timeout-s")
    try:
        host, port = parse_hostport(address, default_port=10000)
    except ValueError as exc:
        raise ScanplanError(str(exc)) from None
    dialogue_s = max(MIN_DIALOGUE_TIMEOUT_S, 4 * timeout_s)

    def make() -> RunControlClient:
        return RunControlClient(
            host,
            port,
            timeout_s=timeout_s,
            init_timeout_s=dialogue_s,
            terminate_timeout_s=dialogue_s,
        )

    return make


def padme_pusher() -> RunConditionsPusher:
    """PadmeDAQ from ``PADME_DB_HOST/PORT/USER/PASSWD/NAME``."""
    from hw_interfaces.padme_db import PadmeDB

    from ..store.padmedaq import PadmeDAQStore

    return PadmeDAQStore(PadmeDB())


@contextmanager
def open_guided_run(
    plan_path: Path,
    *,
    options: RunOptions,
    ui: RunUI,
    memcached: str,
    key_prefix: str = "",
    timepix: str = "",
    store_path: Path | None = None,
    tolerances_path: Path | None = None,
    timeout_s: float = 1.0,
    runcontrol: str = "127.0.0.1:10000",
    runcontrol_timeout_s: float = 5.0,
    audit_log: Path | None = None,
    padme_push: bool = False,
) -> Iterator[GuidedRun]:
    """The guided run of the plan at ``plan_path`` on the machine at these addresses; every
    client is closed on exit. Bad input raises ScanplanError before anything is contacted."""
    from hw_interfaces.btf_controls import BtfControls

    from ..records import load_plan
    from ..store import SQLiteStore

    plan = load_plan(plan_path)
    tol = CheckTolerances.load(tolerances_path)
    check_options(options)
    rc_factory = runcontrol_factory(runcontrol, runcontrol_timeout_s)
    store = SQLiteStore(store_path)
    padme = padme_pusher() if padme_push else None
    with open_checker(
        plan, tol, memcached=memcached, key_prefix=key_prefix, timepix=timepix, timeout_s=timeout_s
    ) as checker:
        writer = None
        if options.enable_writes:
            writer = BtfControls.from_address(
                memcached,
                timeout_s=timeout_s,
                key_prefix=key_prefix,
                writes_enabled=True,
                audit_path=audit_log,
            )
        try:
            yield GuidedRun(
                plan,
                checker=checker,
                store=store,
                runcontrol=rc_factory,
                options=options,
                ui=ui,
                writer=writer,
                padme=padme,
            )
        finally:
            if writer is not None:
                writer.close()
