"""On-disk cache of model results, keyed by everything that determines them.

Building the xtrack line costs 0.15-0.4 s, but importing xtrack (with pandas, scipy and the
prebuilt-kernel registry) costs 0.6-1.5 s of every process that touches the model. A result
that is a pure function of the lattice data, the settings, the calibrations, the model code
and the arguments is therefore cached as JSON, so a repeated command imports no xtrack at
all. The key hashes:

* every file under ``lattices/`` (sequence, settings, beams, calibrations, tolerances);
* the source of every ``beamline`` module (a model change invalidates the cache);
* the installed xtrack, xobjects and xdeps versions;
* the kind of result and its arguments.

Location: ``$SCANPLAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/btf-scanplan``, else
``~/.cache/btf-scanplan``; ``SCANPLAN_CACHE_DIR=off`` disables it. A missing, corrupt or
unwritable cache only costs the computation, never an error. Entries are written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text

CACHE_ENV = "SCANPLAN_CACHE_DIR"
_VERSIONED = ("xtrack", "xobjects", "xdeps")


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "no") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "btf-scanplan"


@functools.lru_cache(maxsize=1)
def model_inputs_hash() -> str:
    """sha256 of the lattice data, the beamline sources and the xsuite versions."""
    from importlib import metadata

    import beamline
    from beamline.paths import lattices_dir

    h = hashlib.sha256()
    root = lattices_dir()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for path in sorted(Path(beamline.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in _VERSIONED:
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=none".encode())
    return h.hexdigest()


def cache_key(kind: str, params: dict[str, Any]) -> str:
    doc = {"kind": kind, "inputs": model_inputs_hash(), "params": params}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cached_json(kind: str, params: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """``compute()`` (a JSON-able value) through the cache entry for ``kind`` and ``params``."""
    folder = cache_dir()
    if folder is None:
        return compute()
    path = folder / f"{kind}-{cache_key(kind, params)[:32]}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable: compute it
    value = compute()
    try:
        atomic_write_text(path, json.dumps({"kind": kind, "params": params, "value": value}))
    except OSError:
        pass  # a read-only home: the result is still right, only not reused
    return value
