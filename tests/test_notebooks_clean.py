"""Notebooks are stored without outputs and follow the validation-notebook standard.

Strip them with ``python scripts/strip_notebooks.py`` (executed copies never go into git).
"""

from __future__ import annotations

from pathlib import Path

import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path: Path) -> None:
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} carry outputs or execution counts; "
        "run python scripts/strip_notebooks.py"
    )
    assert "widgets" not in nb.metadata, f"{path.name}: widget state stored"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_states_claim_and_asserts_it(path: Path) -> None:
    """Standard: a claim up front, an asserted comparison, a figure written to a file."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "Claim" in first.source, path.name
    assert "Falsified if" in first.source, f"{path.name}: say what would falsify the claim"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "assert " in code, f"{path.name}: no asserted check"
    assert "SCANPLAN_NB_OUT" in code and "savefig" in code, f"{path.name}: no figure file"
