"""``scanplan hw``: read the hardware (BTF power supplies, machine state, TimePix beam spot).

Works the same against the real BTF memcached / TimePix server and against the facility
simulator. Read-only: no command here writes a set point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ScanplanError
from .common import (
    DEFAULT_MEMCACHED,
    DEFAULT_TIMEPIX_URL,
    MAX_HW_TIMEOUT_S,
    JsonOpt,
    MemcachedOpt,
    PrefixOpt,
    TimepixUrlOpt,
    check_number,
    console,
    guarded,
    print_json,
    rich_table,
)

if TYPE_CHECKING:  # pragma: no cover
    from hw_interfaces.btf_controls import BtfControls

app = typer.Typer(
    name="hw",
    help="Read BTF power supplies, machine state and the TimePix beam spot.",
    no_args_is_help=True,
)

TimeoutOpt = Annotated[float, typer.Option("--timeout-s", help="Per-call timeout [s].")]


def _btf(memcached: str, key_prefix: str, timeout_s: float) -> BtfControls:
    from hw_interfaces.btf_controls import BtfControls

    if timeout_s <= 0:
        raise ScanplanError("--timeout-s must be > 0")
    try:
        return BtfControls.from_address(memcached, timeout_s=timeout_s, key_prefix=key_prefix)
    except ValueError as exc:
        raise ScanplanError(f"--memcached: {exc}") from None


def _print_record(record: dict[str, Any], title: str, json_out: bool) -> None:
    """``record`` as JSON, or as a field/value table titled ``title``."""
    if json_out:
        print_json(record)
        return
    rows = [{"field": k, "value": "" if v is None else str(v)} for k, v in record.items()]
    console.print(rich_table(title, rows, [("field", "field", ""), ("value", "value", "")]))


def read_power_supply_record(
    element: str,
    memcached: str,
    key_prefix: str = "",
    timeout_s: float = 1.0,
    wait_change_s: float | None = None,
) -> dict[str, Any]:
    """Decoded ``<ELEMENT>_DYN`` record as a JSON-ready dict (what ``hw read`` prints).

    ``wait_change_s``: also require the record to change within that time (a single read
    cannot tell a live record from a frozen one)."""
    if wait_change_s is not None and wait_change_s <= 0:
        raise ScanplanError("--wait-change-s must be > 0")
    with _btf(memcached, key_prefix, timeout_s) as btf:
        return btf.read_power_supply(element, wait_change_s=wait_change_s).as_dict()


def read_machine_state_record(
    memcached: str, key_prefix: str = "", timeout_s: float = 1.0
) -> dict[str, Any]:
    """Machine state as a JSON-ready dict (what ``hw state`` prints)."""
    with _btf(memcached, key_prefix, timeout_s) as btf:
        return btf.read_machine_state().as_dict()


def read_beam_spot_record(url: str, n_frames: int = 10, timeout_s: float = 5.0) -> dict[str, Any]:
    """Beam spot from a Serval-style server as a JSON-ready dict (what ``hw spot`` prints)."""
    from hw_interfaces.timepix import ServalBeamMonitor, ServalClient

    if n_frames < 1 or timeout_s <= 0:
        raise ScanplanError("--frames must be >= 1 and --timeout-s > 0")
    try:
        client = ServalClient(url, timeout_s=min(2.0, timeout_s))
    except ValueError as exc:
        raise ScanplanError(f"--timepix: {exc}") from None
    return ServalBeamMonitor(client).read_beam_spot(n_frames, timeout_s).as_dict()


@app.command("read")
@guarded
def read(
    element: Annotated[str, typer.Argument(help="Element, e.g. DHSTB001, QUATB003.")],
    memcached: MemcachedOpt = DEFAULT_MEMCACHED,
    key_prefix: PrefixOpt = "",
    timeout_s: TimeoutOpt = 1.0,
    wait_change_s: Annotated[
        float | None,
        typer.Option(
            "--wait-change-s",
            help="Also require the record to change within this time [s] (publisher alive).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Decode and print the power-supply record <ELEMENT>_DYN."""
    check_number(timeout_s, "--timeout-s", low=0, high=MAX_HW_TIMEOUT_S, low_open=True)
    record = read_power_supply_record(element, memcached, key_prefix, timeout_s, wait_change_s)
    _print_record(record, f"{record['element']} — {record['source']}", json_out)


@app.command("state")
@guarded
def state(
    memcached: MemcachedOpt = DEFAULT_MEMCACHED,
    key_prefix: PrefixOpt = "",
    timeout_s: TimeoutOpt = 1.0,
    json_out: JsonOpt = False,
) -> None:
    """Print the DAFNE/BTF machine state (DAFNESTATELAB_JDAT, DAFNESTATE_JDAT)."""
    check_number(timeout_s, "--timeout-s", low=0, high=MAX_HW_TIMEOUT_S, low_open=True)
    record = read_machine_state_record(memcached, key_prefix, timeout_s)
    _print_record(record, f"Machine state — {record['source']}", json_out)


@app.command("spot")
@guarded
def spot(
    timepix: TimepixUrlOpt = DEFAULT_TIMEPIX_URL,
    frames: Annotated[int, typer.Option("--frames", help="Frames to sum.")] = 10,
    timeout_s: Annotated[
        float, typer.Option("--timeout-s", help="Time allowed to collect the frames [s].")
    ] = 5.0,
    json_out: JsonOpt = False,
) -> None:
    """Measure the beam centroid and rms width at the TimePix (mm, PADME frame)."""
    check_number(timeout_s, "--timeout-s", low=0, high=MAX_HW_TIMEOUT_S, low_open=True)
    record = read_beam_spot_record(timepix, frames, timeout_s)
    _print_record(record, f"TimePix beam spot — {record['source']}", json_out)
