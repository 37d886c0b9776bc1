"""What every validation notebook (``notebooks/*.py``) does at its start and end.

    from scanplan.notebook import NotebookRun

    NB = NotebookRun()          # figures to $SCANPLAN_NB_OUT, else _out/ in the working folder
    ...
    NB.save(fig, "01_optics_vs_madx.png")
    ...
    NB.done()                   # the last cell: every assertion above has passed

The test suite (``tests/test_notebooks.py``) points ``SCANPLAN_NB_OUT`` into a temporary
folder, so executed notebooks never write into the checkout.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes

#: environment variable naming the folder the notebooks write their figures to
FIGURE_DIR_ENV = "SCANPLAN_NB_OUT"
#: the folder used without it (relative to the working folder; ignored by git)
DEFAULT_FIGURE_DIR = "_out"


class NotebookRun:
    """One execution of a notebook: its figure folder ``out`` (created) and its start time.

    Also sets the pandas display width so that the tables of the notebooks print whole.
    """

    def __init__(self, out: Path | str | None = None) -> None:
        import pandas as pd

        pd.set_option("display.width", 160)
        pd.set_option("display.max_columns", 30)
        self.t0_s = time.perf_counter()
        chosen = out or os.environ.get(FIGURE_DIR_ENV) or DEFAULT_FIGURE_DIR
        self.out = Path(chosen).resolve()
        self.out.mkdir(parents=True, exist_ok=True)

    def save(self, fig: Any, name: str, *, dpi: int = 110) -> Path:
        """Write the matplotlib figure ``fig`` to ``out/name`` (format from the suffix)
        atomically and say where; the figure stays open, so the notebook still shows it."""
        path = self.out / name
        buf = io.BytesIO()
        fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
        atomic_write_bytes(path, buf.getvalue())
        print(f"figure written to {path}")
        return path

    def done(self) -> None:
        """Print the run time; reached only when every assertion of the notebook passed."""
        print(f"notebook executed in {time.perf_counter() - self.t0_s:.1f} s; all checks passed")
