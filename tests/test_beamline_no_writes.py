"""beamline does no file I/O beyond reading lattices/: no call in its source writes a file.

import-linter forbids ``tempfile``/``shutil`` in beamline (pyproject contract "beamline does
no file writes"); this test looks at the calls themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import beamline

#: Modules allowed to write (none: the spread table writer lives in scanplan.spread).
ALLOWED: set[str] = set()

WRITE_METHODS = {"write_text", "write_bytes", "mkdir", "touch", "unlink", "rename", "rmdir"}
#: methods that write when given a destination (a path or buffer argument)
EXPORT_METHODS = {"to_csv", "to_parquet", "to_json", "to_hdf", "to_pickle", "to_feather", "savefig"}
OS_WRITES = {"replace", "rename", "remove", "unlink", "makedirs", "mkdir", "rmdir", "fdopen"}


def _writes_mode(call: ast.Call, position: int) -> bool:
    args = list(call.args[position : position + 1])
    args += [k.value for k in call.keywords if k.arg == "mode"]
    for mode in args:
        if not isinstance(mode, ast.Constant) or not isinstance(mode.value, str):
            return True  # a mode not written out: cannot prove it only reads
        if set(mode.value) & set("wax+"):
            return True
    return False


def write_calls(source: str) -> list[str]:
    """``line: call`` for every call in ``source`` that writes or changes a file."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "open" and _writes_mode(node, 1):
            found.append(f"{node.lineno}: open(..., write mode)")
        elif isinstance(f, ast.Attribute):
            owner = f.value.id if isinstance(f.value, ast.Name) else ""
            if f.attr == "open" and owner != "os" and _writes_mode(node, 0):
                found.append(f"{node.lineno}: .open(write mode)")
            elif f.attr in WRITE_METHODS and owner not in ("os", "shutil"):
                found.append(f"{node.lineno}: .{f.attr}()")
            elif f.attr in EXPORT_METHODS and (node.args or node.keywords):
                found.append(f"{node.lineno}: .{f.attr}(destination)")
            elif owner == "os" and f.attr in OS_WRITES:
                found.append(f"{node.lineno}: os.{f.attr}()")
            elif owner == "shutil":
                found.append(f"{node.lineno}: shutil.{f.attr}()")
    return found


def test_the_checker_finds_writes():
    bad = """
open(p, "w"); open(p, mode="ab"); Path(p).open("x"); p.write_text("t"); p.write_bytes(b"")
df.to_csv(p); fig.savefig(p, dpi=1); os.replace(a, b); shutil.copy(a, b); p.mkdir()
"""
    assert len(write_calls(bad)) == 10
    fine = """
open(p, "rb"); open(p); Path(p).read_text(); df.to_dict(orient="records"); df.to_csv()
"""
    assert write_calls(fine) == []


def test_beamline_writes_no_files():
    root = Path(beamline.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10
    offences = {
        str(p.relative_to(root)): calls
        for p in files
        if p.name not in ALLOWED and (calls := write_calls(p.read_text()))
    }
    assert offences == {}
