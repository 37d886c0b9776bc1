"""Execute every validation notebook (notebooks/*.ipynb) with nbclient: a failing cell fails CI.

Each notebook runs in a fresh temporary working directory with ``SCANPLAN_NB_OUT`` pointing
into it (figures land there, never in the checkout), on the ``python3`` kernel of the
interpreter running pytest, with a per-cell timeout. The notebooks assert their own
validations (model vs MAD-X, closed form, facts-file numbers).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
#: seconds per cell; the whole notebook is also bounded by the pytest timeout below
CELL_TIMEOUT_S = 120


def _kernel_name() -> str:
    """The ``python3`` kernel spec; installed for this interpreter if missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:  # pragma: no cover - depends on the machine
        from ipykernel.kernelspec import install

        install(user=True, kernel_name="python3")
    return "python3"


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out = tmp_path / "figures"
    monkeypatch.setenv("SCANPLAN_NB_OUT", str(out))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(str(path), as_version=4)
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
    figures = sorted(p.name for p in out.glob("*.png"))
    assert figures, f"{path.name} wrote no figure to SCANPLAN_NB_OUT"
    print(f"{path.name}: {elapsed:.1f} s, figures {figures}")
