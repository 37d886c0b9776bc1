"""Reading the TOML data files under ``lattices/``, with errors that name the file and key.

Public so that ``scanplan`` reads its own data files (``lattices/physics``) the same way;
``error`` is the exception class raised (default :class:`LatticeDataError`). Every data file
is validated by a typed model: subclass :class:`DataModel` and load with
:func:`load_toml_model`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

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


# --- typed data files -------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


class DataModel(BaseModel):
    """Base of every model that validates a data file under ``lattices/`` (or a record).

    Unknown keys are an error (``extra="forbid"``): a misspelt key in a data file must not be
    silently ignored and leave a default in force. Instances are immutable.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<top level>"


def validation_message(where: str, exc: ValidationError) -> str:
    """One line naming the file (``where``) and every offending key of a validation error."""
    parts = []
    for err in exc.errors():
        key = _location(tuple(err.get("loc", ())))
        if err.get("type") == "extra_forbidden":
            parts.append(f"unknown key '{key}'")
        elif err.get("type") == "missing":
            parts.append(f"missing key '{key}'")
        else:
            # a ValueError raised by a validator: its text, without pydantic's prefix
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(msg if not err.get("loc") else f"key '{key}': {msg}")
    return f"{where}: " + "; ".join(parts)


def validate_data(
    data: Mapping[str, Any],
    model: type[M],
    where: str,
    error: type[Exception] = LatticeDataError,
) -> M:
    """Validate an already-parsed mapping against ``model``; errors name ``where`` and keys."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(validation_message(where, exc)) from None


def replace_fields(
    instance: M,
    where: str,
    changes: Mapping[str, Any],
    error: type[Exception] = BeamlineInputError,
) -> M:
    """A validated copy of ``instance`` with ``changes``; an unknown name or a bad value is
    ``error`` naming ``where`` and the key (``model_copy(update=...)`` would not validate)."""
    data = {**instance.model_dump(), **changes}
    return validate_data(data, type(instance), where, error)


def load_toml_model(
    path: Path | str, model: type[M], error: type[Exception] = LatticeDataError
) -> M:
    """Read a TOML data file and validate it with ``model`` (a :class:`DataModel`).

    A syntax error, a missing or unknown key, or a value of the wrong type is ``error`` with
    a message that names the file and the key, e.g.
    ``lattices/checks/tolerances.toml: unknown key 'psu.curent_a'``.
    """
    path = Path(path)
    return validate_data(read_toml(path, error), model, str(path), error)
