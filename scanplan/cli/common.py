"""Shared CLI plumbing: one-line errors with exit 2, JSON output, range parsing.

Kept free of heavy imports: ``scanplan --help`` must not import xtrack.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from beamline.errors import BeamlineInputError
from hw_interfaces.errors import HardwareError

from ..errors import ScanplanError

F = TypeVar("F", bound=Callable[..., Any])

#: Exception types that mean "the user asked for something not allowed" or "the device the
#: user named cannot be used" (hw_interfaces' errors, PadmeDAQ's included): one line, exit 2
#: (or the error's ``exit_code``), no traceback. Declared here, not by the command modules,
#: so that every command sees the same set whichever modules it imported.
USER_ERRORS: tuple[type[BaseException], ...] = (BeamlineInputError, ScanplanError, HardwareError)

EXIT_USER_ERROR = 2

# Piped output (logs, tests) is not cut to 80 columns; a terminal uses its own width.
_PIPE_WIDTH = int(os.environ.get("COLUMNS", "200"))
# No console markup: text from data (reasons, payloads, paths, headers such as "t [s]") is
# printed as it is ("[s]" would otherwise turn on strike-through and vanish); the few styled
# words are rich Text objects.
console = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH, markup=False)
err_console = Console(
    stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH, markup=False
)


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (default code 2)."""
    err_console.print(Text("error:", style="bold red"), message, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def guarded(fn: F) -> F:
    """Decorator for commands: known input errors become one line on stderr and exit 2 (or
    the error's own ``exit_code``, e.g. 75 EX_TEMPFAIL for a retryable database outage)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            code = getattr(exc, "exit_code", EXIT_USER_ERROR)
            raise fail(str(exc), code if isinstance(code, int) else EXIT_USER_ERROR) from None

    return wrapper  # type: ignore[return-value]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (numpy scalars converted, NaN/inf as null)."""

    def convert(o: Any) -> Any:
        if isinstance(o, dict):
            return {str(k): convert(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [convert(v) for v in o]
        return _jsonable(o)

    sys.stdout.write(json.dumps(convert(obj), indent=2) + "\n")


def rich_table(
    title: str, rows: list[dict[str, Any]], columns: Iterable[tuple[str, str, str]]
) -> Table:
    """A rich table from rows; ``columns`` are ``(key, header, format)`` triples."""
    table = Table(title=title, header_style="bold")
    cols = list(columns)
    for _, header, _ in cols:
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        cells = []
        for key, _, fmt in cols:
            value = row.get(key)
            cells.append("" if value is None else format(value, fmt) if fmt else str(value))
        table.add_row(*cells)
    return table


#: Where the control-room commands look for the BTF services unless told otherwise: the
#: local ports of the simulator (``scanplan sim`` prints the ``SCANPLAN_*`` variables).
DEFAULT_MEMCACHED = "127.0.0.1:11211"
DEFAULT_TIMEPIX_URL = "http://127.0.0.1:8080"

#: Options shared by the commands that talk to the BTF services (``hw``, ``check``, ``run``).
MemcachedOpt = Annotated[
    str,
    typer.Option("--memcached", envvar="SCANPLAN_MEMCACHED", help="BTF memcached HOST:PORT."),
]
PrefixOpt = Annotated[
    str,
    typer.Option(
        "--key-prefix",
        envvar="SCANPLAN_KEY_PREFIX",
        help="Key namespace (simulators sharing a memcached); empty on the BTF.",
    ),
]
TimepixUrlOpt = Annotated[
    str,
    typer.Option(
        "--timepix", envvar="SCANPLAN_TIMEPIX", help="Serval-style TimePix URL, http://HOST:PORT."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
#: Dask options shared by the commands that map toys or spread jobs over workers
ToySeedOpt = Annotated[int, typer.Option("--seed", help="Base seed of the toys.")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler", help="Dask scheduler address (default: local cluster; 'sync': none)."
    ),
]
WorkersOpt = Annotated[int | None, typer.Option("--workers", help="Local Dask workers.")]


#: Most values a range option may expand to: beyond this it is a typo (a step of 1e-9), and
#: expanding it would exhaust memory instead of answering. Commands may ask for less.
MAX_RANGE_POINTS = 100_000


def parse_range(text: str, name: str, max_points: int = MAX_RANGE_POINTS) -> list[float]:
    """Parse ``a:b:step`` (inclusive of b), ``a:b`` (step 1) or ``v1,v2,...`` into floats.

    Every value must be finite, and the range may hold at most ``max_points`` values; anything
    else is a :class:`ScanplanError` naming the option (``name``).
    """
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) == 2:
                parts.append(1.0)
            if len(parts) != 3:
                raise ValueError
            if not all(math.isfinite(p) for p in parts):
                raise ScanplanError(f"{name}: range '{text}' has a non-finite value")
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise ScanplanError(
                    f"{name}: range '{text}' has no points (need start <= stop and step > 0)"
                )
            n_float = (stop - start) / step + 1e-9
            if n_float >= max_points:
                raise ScanplanError(
                    f"{name}: range '{text}' has {math.floor(n_float) + 1} values; "
                    f"at most {max_points} are allowed (use a larger step)"
                )
            n = math.floor(n_float) + 1
            return [start + i * step for i in range(n)]
        values = [float(p) for p in text.split(",") if p.strip()]
    except ScanplanError:
        raise
    except ValueError:
        raise ScanplanError(
            f"{name}: cannot read '{text}'; use start:stop:step, start:stop or v1,v2,..."
        ) from None
    if not values:
        raise ScanplanError(f"{name}: no values given")
    if not all(math.isfinite(v) for v in values):
        raise ScanplanError(f"{name}: '{text}' has a non-finite value")
    if len(values) > max_points:
        raise ScanplanError(f"{name}: {len(values)} values; at most {max_points} are allowed")
    return values


class FloatRange(list[float]):
    """The values of a range option, in order (a ``list[float]``).

    Annotate a range option with it: typer takes a plain ``list[float]`` annotation as a
    repeatable option, this type as one option whose value :data:`RANGE` expands.
    """


class RangeType:
    """The one range parser of the CLI (``start:stop:step``, ``start:stop``, ``v1,v2,...``).

    A typer option parser: ``Annotated[FloatRange | None, range_option("...")]`` (or
    ``typer.Option(parser=RANGE, metavar=RANGE.metavar)``). A bad range is a usage error
    naming the option (``scanplan.cli.main.main`` prints it as one ``error:`` line, exit 2);
    at most ``max_points`` values, all finite.
    """

    metavar = "a:b:step|v1,v2"

    def __init__(self, max_points: int = MAX_RANGE_POINTS) -> None:
        self.max_points = max_points

    def __call__(self, value: str | Sequence[float]) -> FloatRange:
        if not isinstance(value, str):  # a default given as numbers
            return FloatRange(float(v) for v in value)
        try:
            return FloatRange(parse_range(value, "range", self.max_points))
        except ScanplanError as exc:
            # typer reports this as "Invalid value for '--option': <reason>"
            reason = str(exc).removeprefix("range: ")
            from pydantic_core import PydanticCustomError  # only on a bad range: --help is fast

            raise PydanticCustomError("range", "{reason}", {"reason": reason}) from None


#: Shared parser for range options.
RANGE = RangeType()


def range_option(
    help: str, *param_decls: str, max_points: int | None = None, show_default: bool = True
) -> Any:
    """``typer.Option`` for a range (value type :class:`FloatRange`), parsed by :data:`RANGE`.

    ``max_points`` bounds this option more tightly than :data:`MAX_RANGE_POINTS`.
    """
    parser = RANGE if max_points is None else RangeType(max_points)
    return typer.Option(
        *param_decls,
        parser=parser,
        metavar=RangeType.metavar,
        help=help,
        show_default=show_default,
    )


#: Image formats the plots are written in (matplotlib back-ends that need no extra package).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".pdf", ".svg")


def check_output_path(
    path: str | os.PathLike[str] | None, option: str, *, suffixes: Sequence[str] = ()
) -> Path | None:
    """The one check of an output file named on the command line, made before any work.

    Refused (:class:`ScanplanError` naming ``option``): an empty path, an existing folder or
    anything else that is not a regular file, a suffix outside ``suffixes`` (when given), a
    folder that does not exist (never created silently) or that cannot be written. The
    folder is probed by creating and removing a temporary file, which also catches read-only
    file systems and a root user on ``/proc``. ``None`` (option not given) passes through.
    """
    if path is None:
        return None
    text = os.fspath(path)
    if not text.strip():
        raise ScanplanError(f"{option}: empty path")
    p = Path(text)
    if p.is_dir() or text.endswith(("/", os.sep)):
        raise ScanplanError(f"{option}: {text} is a directory; give a file name")
    if p.exists() and not p.is_file():
        raise ScanplanError(f"{option}: {text} is not a regular file")
    if suffixes and p.suffix.lower() not in suffixes:
        allowed = ", ".join(suffixes)
        raise ScanplanError(
            f"{option}: {text}: unknown image type '{p.suffix}'; use one of {allowed}"
            if set(suffixes) & set(IMAGE_SUFFIXES)
            else f"{option}: {text} must end in one of {allowed}"
        )
    folder = p.parent
    if not folder.exists():
        raise ScanplanError(f"{option}: folder {folder} does not exist (create it first)")
    if not folder.is_dir():
        raise ScanplanError(f"{option}: {folder} is not a folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise ScanplanError(f"{option}: {text} is not writable")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".scanplan-probe-"):
            pass
    except OSError as exc:
        raise ScanplanError(f"{option}: cannot write in folder {folder} ({exc.strerror})") from None
    return p


# Documented maxima of the command line (docs/user_guide.md, "Limits"). Beyond them a value
# is a typo, and honouring it would hang the tool or exhaust the machine.
MAX_HW_TIMEOUT_S = 60.0  #: one hardware call (memcached, Serval, RunControl)
MAX_WAIT_S = 3600.0  #: settle timeouts and waits between attempts
MAX_DWELL_S = 86400.0  #: one PADME run
MAX_SIM_DURATION_S = 7 * 86400.0  #: a simulator session
MAX_PARTICLES = 1e8  #: particles per scan point in the spread engine (about 3.4 GiB)
MAX_POT_PER_POINT = 1e14  #: four orders above the 2022 scan's 7.6e9
MAX_HOURS = 1e5  #: beam-time budgets (11 years)
MIN_STEP_MEV = 1e-3  #: the finest scan step: 0.3 % of the 2022 step, far below the BES
MAX_ENERGY_MEV = 1e4  #: beam energies and masses typed on the command line (the line takes 550)


def check_number(
    value: float | None,
    option: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float | None:
    """``value`` if it is finite and within ``[low, high]`` (``(low, high]`` with
    ``low_open``), else a :class:`ScanplanError` naming ``option``; None passes through."""
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v):
        raise ScanplanError(f"{option}: {value!r} is not a finite number")
    if low is not None and (v <= low if low_open else v < low):
        raise ScanplanError(f"{option} must be {'>' if low_open else '>='} {low:g}, got {v:g}")
    if high is not None and v > high:
        raise ScanplanError(f"{option} must be <= {high:g}, got {v:g}")
    return v


def check_settings(name: str | None) -> str | None:
    """A ``--settings`` value: None (the default settings) or a non-empty name."""
    if name is not None and not name.strip():
        raise ScanplanError("--settings: empty name (omit the option for the default settings)")
    return name


def plan_limits(
    step_mev: float | None,
    pot_per_point: float | None,
    budget_hours: float | None,
    overhead_hours: float | None,
    bes: float | None,
    uptime: float | None,
    settings: str | None,
) -> None:
    """``scanplan plan``'s numbers within the documented maxima (before any planning)."""
    check_number(step_mev, "--step-mev", low=MIN_STEP_MEV, high=MAX_ENERGY_MEV)
    check_number(pot_per_point, "--pot-per-point", low=0, high=MAX_POT_PER_POINT, low_open=True)
    check_number(budget_hours, "--budget-hours", low=0, high=MAX_HOURS, low_open=True)
    check_number(overhead_hours, "--overhead-hours", low=0, high=MAX_HOURS)
    check_number(bes, "--bes", low=0, high=1, low_open=True)
    check_number(uptime, "--uptime", low=0, high=1, low_open=True)
    check_settings(settings)


def yield_limits(mass_mev: float, energy_mev: float) -> None:
    """``scanplan yield``'s mass and beam energy: finite, positive, within the maximum."""
    check_number(mass_mev, "--mass-mev", low=0, high=MAX_ENERGY_MEV, low_open=True)
    check_number(energy_mev, "--energy-mev", low=0, high=MAX_ENERGY_MEV, low_open=True)
