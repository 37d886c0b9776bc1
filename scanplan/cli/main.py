"""The ``scanplan`` command line. Each sub-command lives in its own module under
``scanplan.cli`` and imports heavy libraries (xtrack, pandas, ...) only when it runs, so
``scanplan --help`` stays fast and never imports xtrack."""

from __future__ import annotations

import typer

from . import analyse as _analyse
from . import calib as _calib
from . import check as _check
from . import export as _export
from . import hw as _hw
from . import optics as _optics
from . import plan as _plan
from . import run as _run
from . import sim as _sim
from . import spread as _spread
from . import store as _store

app = typer.Typer(
    name="scanplan",
    help="Plan and run resonant energy scans on the BTF -> PADME line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Plan and run resonant energy scans on the BTF -> PADME line."""


# model and calibrations
app.command("optics")(_optics.optics)
app.add_typer(_calib.app, name="calib")
app.command("spread")(_spread.spread)
# planning and run conditions
app.command("plan")(_plan.plan)
app.command("show")(_plan.show)
app.command("validate")(_plan.validate)
app.command("yield")(_plan.yield_)
app.command("sensitivity")(_plan.sensitivity)
app.command("compare")(_plan.compare)
app.command("optimise")(_plan.optimise)
app.command("sweep")(_plan.sweep)
app.command("analyse")(_analyse.analyse)
app.command("export")(_export.export)
app.add_typer(_store.app, name="store")
# control room
app.add_typer(_hw.app, name="hw")
app.add_typer(_sim.app, name="sim")
app.command("check")(_check.check)
app.command("run")(_run.run)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
