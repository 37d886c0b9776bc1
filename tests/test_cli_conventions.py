"""CLI conventions: --version, flags shown as flags, 'start:stop:step' literal in help,
usage errors as one 'error:' line with exit 2 (run as subprocesses, as the crew runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import pytest


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "scanplan", *args],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"scanplan {version('btf-scanplan')}"


def test_help_shows_flags_and_ranges_literally():
    text = cli("sensitivity", "--help").stdout
    json_line = next(ln for ln in text.splitlines() if ln.strip().startswith("--json"))
    assert "<bool>" not in json_line and "BOOLEAN" not in json_line
    assert "a:b:step" in text and "🅱" not in text
    assert "--current-a a:b:step|v1,v2" in " ".join(cli("calib", "energy", "--help").stdout.split())


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["export"], "Missing argument"),
        (["sensitivity", "plan.json", "--toys", "many"], "Invalid value for '--toys'"),
        (["export", "plan.json", "--bogus"], "No such option: --bogus"),
        (["no-such-command"], "No such command"),
    ],
)
def test_usage_errors_are_one_error_line_exit_2(args, fragment):
    proc = cli(*args)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0]
    assert "Traceback" not in proc.stderr and not proc.stdout
