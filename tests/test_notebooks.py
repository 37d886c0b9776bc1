"""The validation notebooks: jupytext percent-format sources under ``notebooks/*.py``.

The ``.py`` files are the notebooks (no ``.ipynb`` is stored): jupytext turns each into an
nbformat notebook, which nbclient executes on the ``python3`` kernel of the interpreter running
pytest, so a failing cell (every notebook asserts its own validations: model vs MAD-X, closed
form, facts-file numbers) fails the suite. Each runs in a fresh temporary working directory
with ``SCANPLAN_NB_OUT`` pointing into it (figures land there, never in the checkout), with a
per-cell timeout.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.py"))
#: seconds per cell; the whole notebook is also bounded by the pytest timeout below
CELL_TIMEOUT_S = 120


def _read(path: Path):
    import jupytext

    return jupytext.read(path, fmt="py:percent")


def _kernel_name() -> str:
    """The ``python3`` kernel spec; installed for this interpreter if missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:  # pragma: no cover - depends on the machine
        from ipykernel.kernelspec import install

        install(user=True, kernel_name="python3")
    return "python3"


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_states_claim_and_asserts_it(path: Path) -> None:
    """Standard: a claim up front, an asserted comparison, a figure written to a file
    (``scanplan.notebook.NotebookRun``), and a last cell reached only if all checks passed."""
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "Claim" in first.source, path.name
    assert "Falsified if" in first.source, f"{path.name}: say what would falsify the claim"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 3, f"{path.name}: not split into cells (missing '# %%' markers?)"
    joined = "\n".join(code)
    assert "assert " in joined, f"{path.name}: no asserted check"
    assert "NotebookRun()" in joined and ".save(fig" in joined, f"{path.name}: no figure file"
    assert code[-1].strip() == "NB.done()", f"{path.name}: the last cell must be NB.done()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_source_is_canonical_percent_format(path: Path) -> None:
    """What jupytext writes back (e.g. when the notebook is saved from Jupyter) is the file
    itself: no version stamps or reordered metadata creep into the source."""
    import jupytext

    assert jupytext.writes(_read(path), fmt="py:percent") == path.read_text(encoding="utf-8")


def test_notebook_run_saves_figures_atomically_and_keeps_them_open(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scanplan.notebook import NotebookRun

    nb = NotebookRun(tmp_path / "figs")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = nb.save(fig, "line.png")
    assert path == tmp_path / "figs" / "line.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")  # the PNG signature
    assert plt.fignum_exists(fig.number), "the notebook must still be able to show it"
    assert [p.name for p in path.parent.iterdir()] == ["line.png"], "no temp file left"
    plt.close(fig)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out = tmp_path / "figures"
    monkeypatch.setenv("SCANPLAN_NB_OUT", str(out))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = _read(path)
    client = NotebookClient(
        nb,
        kernel_name=_kernel_name(),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
        allow_errors=False,
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    elapsed = time.perf_counter() - t0
    executed = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in executed), f"{path.name}: a code cell did not run"
    figures = sorted(p.name for p in out.glob("*.png"))
    assert figures, f"{path.name} wrote no figure to SCANPLAN_NB_OUT"
    print(f"{path.name}: {elapsed:.1f} s, figures {figures}")
