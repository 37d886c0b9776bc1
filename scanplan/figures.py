"""Writing matplotlib figures: rendered in memory, written atomically, then closed.

``beamline`` returns figures and writes no files; ``scanplan`` writes them here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes
from .errors import ScanplanError


def write_figure(fig: Any, path: Path | str, *, dpi: int = 120, **savefig: Any) -> Path:
    """Render ``fig`` (a matplotlib Figure) in the format of ``path``'s suffix (default PNG),
    write it atomically and close the figure. ``savefig`` are extra ``Figure.savefig``
    keywords (e.g. ``bbox_inches="tight"``).

    A format matplotlib cannot write, or a path that cannot be written (a folder, no
    permission), is a :class:`ScanplanError` (one ``error:`` line in the CLI), never a
    traceback or a partial file."""
    import matplotlib.pyplot as plt

    target = Path(path)
    fmt = target.suffix.lstrip(".").lower() or "png"
    buf = io.BytesIO()
    try:
        if fmt not in fig.canvas.get_supported_filetypes():
            raise ScanplanError(
                f"figure {target}: format '{fmt}' not supported; use .png, .pdf or .svg"
            )
        fig.savefig(buf, format=fmt, dpi=dpi, **savefig)
    finally:
        plt.close(fig)
    try:
        return atomic_write_bytes(target, buf.getvalue())
    except OSError as exc:
        raise ScanplanError(f"cannot write figure {target}: {exc.strerror or exc}") from None
