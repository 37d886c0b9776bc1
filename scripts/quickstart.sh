#!/usr/bin/env bash
# Newcomer's main job on built-in defaults: install, then print the BTF->PADME optics
# for the 2022 (Run III) settings and write the optics plot.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e .
"$PY" -m scanplan optics --plot optics.png
