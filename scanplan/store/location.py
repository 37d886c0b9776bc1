"""Where the run-conditions store lives by default (light: read by CLI help texts)."""

from __future__ import annotations

import os
from pathlib import Path

#: store file used when none is named (``SCANPLAN_STORE`` overrides it)
DEFAULT_STORE_FILE = "scanplan_runs.sqlite"
#: environment variable naming the store file
STORE_ENV_VAR = "SCANPLAN_STORE"


def default_store_path() -> Path:
    """``$SCANPLAN_STORE`` or ``scanplan_runs.sqlite`` in the working directory."""
    return Path(os.environ.get(STORE_ENV_VAR) or DEFAULT_STORE_FILE)
