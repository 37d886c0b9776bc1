"""``scanplan sim``: run the model-driven virtual BTF on 127.0.0.1 until Ctrl-C or --duration.

Prints where it listens (a table and the ``export SCANPLAN_...`` lines the other commands
read, or one JSON line with ``--json``), then keeps serving. Faults come from ``--fault``
(see :mod:`scanplan.sim_faults`) and, while it runs, from another terminal through its control
channel: ``scanplan sim inject trip:DHSTB001``, ``scanplan sim clear``, ``scanplan sim
status``, ``scanplan sim set-current DHSTB002=182.5`` (``--control`` or
``SCANPLAN_SIM_CONTROL``).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ScanplanError
from .common import (
    MAX_SIM_DURATION_S,
    JsonOpt,
    check_number,
    console,
    guarded,
    print_json,
    rich_table,
)

if TYPE_CHECKING:  # pragma: no cover
    from hw_interfaces.sim import SimControlClient

app = typer.Typer(
    name="sim",
    help="Run the virtual BTF (PSU records in memcached, TimePix HTTP, RunControl TCP); "
    "inject/clear faults in a running one.",
    invoke_without_command=True,
)

ControlOpt = Annotated[
    str,
    typer.Option(
        "--control",
        envvar="SCANPLAN_SIM_CONTROL",
        help="Control URL of a running scanplan sim (printed at its start).",
    ),
]


@app.callback()
@guarded
def sim(
    ctx: typer.Context,
    memcached: Annotated[
        str | None,
        typer.Option(
            "--memcached",
            help="Use this memcached HOST:PORT (default: start Debian's memcached on "
            "127.0.0.1, any free port).",
        ),
    ] = None,
    http_port: Annotated[int, typer.Option("--http-port", help="TimePix HTTP port (0 = any).")] = 0,
    runcontrol_port: Annotated[
        int, typer.Option("--runcontrol-port", help="RunControl TCP port (0 = any).")
    ] = 0,
    control_port: Annotated[
        int, typer.Option("--control-port", help="Control channel HTTP port (0 = any).")
    ] = 0,
    key_prefix: Annotated[str, typer.Option("--key-prefix", help="memcached key namespace.")] = "",
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="Inject a fault: trip:DHSTB001, stale:DHSTB002, nan:..., missing:..., "
            "comm-error:..., corrupt:..., dropped-frames, no-beam, slow, dead:serval, "
            "init-fail, hang, dead:runcontrol, offset:DHSTB002=0.5 (repeatable).",
        ),
    ] = None,
    current: Annotated[
        list[str] | None,
        typer.Option("--current", help="Start current ELEMENT=AMPS (repeatable)."),
    ] = None,
    settings: Annotated[
        str | None,
        typer.Option(
            "--settings",
            help="Model settings (lattices/btf_padme/settings; default: default_settings of "
            "lattices/btf_padme/line.toml).",
        ),
    ] = None,
    slew_rate_a_per_s: Annotated[
        float | None,
        typer.Option(
            "--slew-rate-a-per-s",
            help="Supply slew rate [A/s] (default: the simulator's, hw_interfaces.sim.psu).",
        ),
    ] = None,
    noise_a: Annotated[
        float | None,
        typer.Option(
            "--noise-a",
            help="Readback noise of every supply, rms [A] (default: the simulator's, "
            "hw_interfaces.sim.psu).",
        ),
    ] = None,
    hysteresis: Annotated[
        list[str] | None,
        typer.Option(
            "--hysteresis",
            help="Readback offset per approach branch ELEMENT=UP_A:DOWN_A, e.g. "
            "DHSTB001=0.02:-0.02 (repeatable).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Random seed (noise, hits; default: scanplan.sim's)."),
    ] = None,
    duration_s: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Run the virtual BTF (PSU records in memcached, TimePix HTTP, RunControl TCP)."""
    check_number(duration_s, "--duration", low=0, high=MAX_SIM_DURATION_S, low_open=True)
    check_number(noise_a, "--noise-a", low=0, high=10)
    check_number(slew_rate_a_per_s, "--slew-rate-a-per-s", low=0, high=1000, low_open=True)
    if ctx.invoked_subcommand is not None:
        return
    from hw_interfaces.btf_controls import parse_hostport

    from ..sim import DEFAULT_SEED, SimFacility
    from ..sim_faults import parse_currents, parse_fault, parse_hysteresis

    specs = [parse_fault(f) for f in fault or []]
    currents = parse_currents(current or [])
    for name, port in (
        ("--http-port", http_port),
        ("--runcontrol-port", runcontrol_port),
        ("--control-port", control_port),
    ):
        if not 0 <= port < 65536:
            raise ScanplanError(f"{name} {port} outside 0..65535")
    if duration_s is not None and not duration_s > 0:
        raise ScanplanError("--duration must be > 0")
    if noise_a is not None and not noise_a >= 0:
        raise ScanplanError("--noise-a must be >= 0")
    hyst = parse_hysteresis(hysteresis or [])
    if slew_rate_a_per_s is not None and not slew_rate_a_per_s > 0:
        raise ScanplanError("--slew-rate-a-per-s must be > 0")
    psu_options = {
        k: v
        for k, v in (("slew_rate_a_per_s", slew_rate_a_per_s), ("noise_a", noise_a))
        if v is not None
    }
    mc = None
    if memcached:
        try:
            mc = parse_hostport(memcached)
        except ValueError as exc:
            raise ScanplanError(f"--memcached: {exc}") from None
    stop = threading.Event()

    def _handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handler)
    status = None if json_out else console.status("starting the simulator (building the model)")
    if status is not None:
        status.start()
    facility = SimFacility(
        mc,
        http_port=http_port,
        runcontrol_port=runcontrol_port,
        control_port=control_port,
        key_prefix=key_prefix,
        currents_a=currents,
        settings=settings,
        seed=DEFAULT_SEED if seed is None else seed,
        psu_options=psu_options,
    )
    hw_log = logging.getLogger("hw_interfaces")
    level = hw_log.level
    hw_log.setLevel(logging.ERROR)  # a failed start is reported once, as the error line
    try:
        facility.start()
    finally:
        hw_log.setLevel(level)
        if status is not None:
            status.stop()
    try:
        for element, offsets in hyst.items():
            try:
                facility.facility.psu.configure(element, hysteresis_offset_a=offsets)
            except ValueError as exc:
                raise ScanplanError(f"--hysteresis: {exc}") from None
        for spec in specs:
            facility.inject(spec)
        addresses = facility.addresses()
        doc = {**addresses.as_dict(), "faults": [s.label for s in specs]}
        if json_out:
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()
        else:
            rows = [{"service": k, "address": v} for k, v in addresses.as_dict().items()]
            rows.append({"service": "faults", "address": ", ".join(doc["faults"]) or "none"})
            console.print(
                rich_table(
                    "Virtual BTF", rows, [("service", "service", ""), ("address", "address", "")]
                )
            )
            for k, v in addresses.env().items():
                console.print(f"export {k}={v}", highlight=False, soft_wrap=True)
            console.print("Ctrl-C to stop.", highlight=False)
        t_end = None if duration_s is None else time.monotonic() + duration_s
        while not stop.is_set():
            if t_end is not None and time.monotonic() >= t_end:
                break
            stop.wait(0.2)
    finally:
        facility.stop()
    if not json_out:
        console.print("simulator stopped", highlight=False)


def _client(control: str, timeout_s: float = 3.0) -> SimControlClient:
    from hw_interfaces.sim import SimControlClient

    if not control:
        raise ScanplanError(
            "no simulator control URL: give --control or set SCANPLAN_SIM_CONTROL "
            "(scanplan sim prints it)"
        )
    if not control.startswith(("http://", "https://")):
        raise ScanplanError(f"--control '{control}' is not an http://host:port URL")
    return SimControlClient(control, timeout_s=timeout_s)


def _print_faults(doc: dict[str, Any], json_out: bool) -> None:
    faults = doc.get("faults", {})
    if json_out:
        print_json(doc)
        return
    rows = [{"target": t, "faults": ", ".join(f)} for t, f in sorted(faults.items())]
    console.print(
        rich_table(
            "Active faults",
            rows or [{"target": "-", "faults": "none"}],
            [("target", "target", ""), ("faults", "faults", "")],
        )
    )


@app.command("inject")
@guarded
def inject(
    faults: Annotated[list[str], typer.Argument(help="Faults as for --fault, e.g. trip:DHSTB001.")],
    control: ControlOpt = "",
    json_out: JsonOpt = False,
) -> None:
    """Inject faults into a running simulator."""
    from ..sim_faults import parse_fault

    specs = [parse_fault(f) for f in faults]  # validate all before sending any
    client = _client(control)
    doc: dict[str, Any] = {}
    for spec in specs:
        name, _, target = spec.label.partition(":")
        doc = client.inject(name, target)
    _print_faults(doc, json_out)


@app.command("clear")
@guarded
def clear(
    faults: Annotated[
        list[str] | None, typer.Argument(help="Faults to clear (none: all, servers revived).")
    ] = None,
    control: ControlOpt = "",
    json_out: JsonOpt = False,
) -> None:
    """Clear faults of a running simulator (a dead server restarts, a trip is reset)."""
    from ..sim_faults import parse_fault

    specs = [parse_fault(f) for f in faults or []]
    client = _client(control)
    if not specs:
        doc = client.clear(None, None)
    for spec in specs:
        name, _, target = spec.label.partition(":")
        doc = client.clear(name, target)
    _print_faults(doc, json_out)


@app.command("status")
@guarded
def status(control: ControlOpt = "", json_out: JsonOpt = False) -> None:
    """Addresses, supplies and active faults of a running simulator."""
    doc = _client(control).status()
    if json_out:
        print_json(doc)
        return
    rows = [
        {"element": e, **{k: v for k, v in s.items()}} for e, s in doc.get("supplies", {}).items()
    ]
    console.print(
        rich_table(
            "Simulated supplies",
            rows,
            [
                ("element", "element", ""),
                ("status", "status", ""),
                ("set_point_a", "set point [A]", ".3f"),
                ("output_current_a", "output [A]", ".3f"),
                ("branch", "branch", ""),
                ("commands_applied", "commands applied", "d"),
                ("commands_refused", "commands refused", "d"),
            ],
        )
    )
    _print_faults(doc, False)


@app.command("set-current")
@guarded
def set_current(
    currents: Annotated[list[str], typer.Argument(help="ELEMENT=AMPS (the simulator's knob).")],
    control: ControlOpt = "",
    json_out: JsonOpt = False,
) -> None:
    """Move simulated set points directly (training: the crew's hand on the console)."""
    from ..sim_faults import parse_currents

    values = parse_currents(currents)
    client = _client(control)
    doc: dict[str, Any] = {}
    for element, amps in values.items():
        doc = client.set_current(element, amps)
    _print_faults(doc, json_out)
