"""Run the installed ``scanplan`` command in a subprocess (the way the crew runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

CLI_TIMEOUT_S = 120


def run_cli(*args: str, check: bool = False, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """``python -m scanplan.cli.main ARGS`` with captured text output."""
    # a wide terminal so that rich never wraps a table row or an error line
    env = {**os.environ, "COLUMNS": "250"}
    proc = subprocess.run(
        [sys.executable, "-m", "scanplan.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"scanplan {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def run_cli_json(*args: str) -> Any:
    proc = run_cli(*args, "--json", check=True)
    return json.loads(proc.stdout)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2, one ``error:`` line on stderr mentioning ``fragments``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
