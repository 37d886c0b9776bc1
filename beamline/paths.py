"""Where the versioned lattice data lives.

The data directory is ``lattices/`` at the repository root; ``BTF_SCANPLAN_LATTICES``
overrides it (for a non-editable install or a private copy of the data).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LatticeDataError

ENV_VAR = "BTF_SCANPLAN_LATTICES"


def lattices_dir() -> Path:
    """Root of the lattice data (``lattices/``)."""
    env = os.environ.get(ENV_VAR)
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "lattices"
    if not path.is_dir():
        raise LatticeDataError(
            f"lattice data directory {path} not found; set {ENV_VAR} to the 'lattices' folder "
            "of a btf-scanplan checkout"
        )
    return path


def data_file(*parts: str) -> Path:
    """Path of a file below ``lattices/``, checked to exist."""
    path = lattices_dir().joinpath(*parts)
    if not path.is_file():
        raise LatticeDataError(f"lattice data file {path} not found")
    return path
