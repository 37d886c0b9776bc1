"""Lazy public names of a package (PEP 562): the package ``__init__`` maps each name to the
submodule that defines it and imports that submodule on first use, so importing a light
submodule (e.g. ``scanplan.check.tolerances`` for CLI help) does not load the heavy ones.
The ``__init__`` also imports the names under ``TYPE_CHECKING`` for the type checker."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def homes(names: Mapping[str, str]) -> dict[str, str]:
    """``{submodule: "name1 name2 ..."}`` -> ``{name: submodule}``."""
    return {name: module for module, text in names.items() for name in text.split()}


def lazy_getattr(package: str, home: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package`` for the names in ``home``."""

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        return getattr(importlib.import_module(f".{module}", package), name)

    return __getattr__
