"""The ``scanplan`` command line. Each sub-command lives in its own module under
``scanplan.cli`` and imports heavy libraries (xtrack, pandas, ...) only when it runs, so
``scanplan --help`` stays fast and never imports xtrack."""

from __future__ import annotations

import typer

from . import optics as _optics

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


app.command("optics")(_optics.optics)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
