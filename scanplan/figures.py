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
    keywords (e.g. ``bbox_inches="tight"``)."""
    import matplotlib.pyplot as plt

    target = Path(path)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=target.suffix.lstrip(".").lower() or "png", dpi=dpi, **savefig)
    finally:
        plt.close(fig)
    return atomic_write_bytes(target, buf.getvalue())
