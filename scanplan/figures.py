"""Writing matplotlib figures: rendered in memory, written atomically, then closed.

``beamline`` returns figures and writes no files; ``scanplan`` writes them here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes


def write_figure(fig: Any, path: Path | str, *, dpi: int = 120, **savefig: Any) -> Path:
    """Render ``fig`` (a matplotlib Figure) in the format of ``path``'s suffix (default PNG),
    write it atomically and close the figure. ``savefig`` are extra ``Figure.savefig``
    keywords (e.g. ``bbox_inches="tight"``). A path that cannot be written (no permission,
    a full disk) is a ScanplanError (one ``error:`` line), never a traceback or a partial
    file; the CLI checks the path first with :func:`check_figure_path`."""
    import matplotlib.pyplot as plt

    target = Path(path)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=target.suffix.lstrip(".").lower() or "png", dpi=dpi, **savefig)
    finally:
        plt.close(fig)
    try:
        return atomic_write_bytes(target, buf.getvalue())
    except OSError as exc:
        from .errors import ScanplanError

        raise ScanplanError(f"cannot write figure {target}: {exc.strerror or exc}") from None


def check_figure_path(path: Path | str, option: str = "--plot") -> Path:
    """``path`` if a figure can be written there: the one output-path check
    (:func:`scanplan.cli.common.check_output_path`) with the image suffixes matplotlib
    knows; checked before the work starts, so a bad path never costs a check or leaves a
    partial file."""
    from matplotlib.backend_bases import FigureCanvasBase

    from .cli.common import check_output_path

    kinds = tuple(sorted(f".{k}" for k in FigureCanvasBase.get_supported_filetypes()))
    checked = check_output_path(path, option, suffixes=kinds)
    assert checked is not None
    return checked
