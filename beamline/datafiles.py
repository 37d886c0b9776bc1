"""Reading the TOML data files under ``lattices/``, with errors that name the file and key.

Public so that ``scanplan`` reads its own data files (``lattices/physics``) the same way;
``error`` is the exception class raised (default :class:`LatticeDataError`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import BeamlineInputError, LatticeDataError
from .paths import data_file, lattices_dir


def data_names(*folder: str) -> list[str]:
    """Names (file stems) of the TOML data files in ``lattices/<folder>``, sorted."""
    return sorted(p.stem for p in lattices_dir().joinpath(*folder).glob("*.toml"))


def named_data_file(what: str, name: str, *folder: str) -> Path:
    """``lattices/<folder>/<name>.toml``; a name not there is a BeamlineInputError listing
    the ``what`` entries available."""
    known = data_names(*folder)
    if name not in known:
        raise BeamlineInputError(f"unknown {what} '{name}'; available: {', '.join(known)}")
    return data_file(*folder, f"{name}.toml")


def read_toml(path: Path, error: type[Exception] = LatticeDataError) -> dict[str, Any]:
    """Parse a TOML data file; a syntax or read error becomes ``error`` naming the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"malformed data file {path}: {exc}") from exc
    except OSError as exc:
        raise error(f"cannot read data file {path}: {exc}") from exc


def require(
    table: dict[str, Any], key: str, where: str, error: type[Exception] = LatticeDataError
) -> Any:
    """``table[key]`` or ``error`` saying which key of which file is missing."""
    try:
        return table[key]
    except KeyError:
        raise error(f"{where}: missing key '{key}'") from None
