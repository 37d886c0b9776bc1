"""Strip outputs from notebooks before committing them (they are stored without outputs).

    python scripts/strip_notebooks.py                 # every notebooks/*.ipynb, in place
    python scripts/strip_notebooks.py a.ipynb b.ipynb # the given files
    python scripts/strip_notebooks.py --check         # exit 1 and list files that need it

Clears every code cell's outputs and execution count, and drops per-run metadata
(execution timings, collapsed/scrolled state, widget state). Cell ids and sources stay.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CELL_RUN_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")
NB_RUN_METADATA = ("widgets",)


def strip(nb: nbformat.NotebookNode) -> bool:
    """Strip ``nb`` in place; True if anything changed."""
    changed = False
    for key in NB_RUN_METADATA:
        if key in nb.metadata:
            del nb.metadata[key]
            changed = True
    for cell in nb.cells:
        for key in CELL_RUN_METADATA:
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            cell.outputs = []
            changed = True
        if cell.get("execution_count") is not None:
            cell.execution_count = None
            changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)"
    )
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if any is dirty")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        if strip(nb):
            dirty.append(path)
            if not args.check:
                nbformat.write(nb, str(path))
    for path in dirty:
        print(f"{'needs stripping' if args.check else 'stripped'}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
