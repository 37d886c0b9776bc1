#!/usr/bin/env bash
# The one test command (README): installs system services and Python deps the tests need,
# then runs the quality gates (ruff, import-linter) and the whole pytest suite.
# Fails loudly if anything cannot be installed or started.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v memcached >/dev/null 2>&1 || need+=(memcached)
{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || need+=(mariadb-server)
# g++ compiles the test reader of the offline table built like PADME's OfflineServer
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing Debian packages: ${need[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "test.sh: need root or sudo to install ${need[*]}" >&2; exit 1; }
        SUDO="sudo"
    fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"; "$PY" -m ruff check .
echo "== import-linter"
"$PY" -c 'import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())'
echo "== mypy"; "$PY" -m mypy
# one pytest worker per core, at most 4 (pytest-xdist; SCANPLAN_TEST_WORKERS overrides, 0 = in
# one process); every service fixture starts its own server per worker on ephemeral ports
CORES=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
WORKERS=${SCANPLAN_TEST_WORKERS:-$(( CORES < 4 ? CORES : 4 ))}
echo "== pytest ($WORKERS workers)"; "$PY" -m pytest -n "$WORKERS" "$@"
