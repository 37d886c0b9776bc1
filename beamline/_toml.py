"""TOML reading with clear errors for malformed data files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import LatticeDataError


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML data file; a syntax error becomes a ``LatticeDataError`` naming the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise LatticeDataError(f"malformed data file {path}: {exc}") from exc
    except OSError as exc:
        raise LatticeDataError(f"cannot read data file {path}: {exc}") from exc


def require(table: dict[str, Any], key: str, where: str) -> Any:
    """``table[key]`` or a ``LatticeDataError`` saying which key of which file is missing."""
    try:
        return table[key]
    except KeyError:
        raise LatticeDataError(f"{where}: missing key '{key}'") from None
