#!/usr/bin/env bash
# Sets up .venv (and, as root, the Debian packages of scripts/system_packages.sh), checks lint and format with
# ruff, and runs the default test suite (tests marked `slow` are skipped; add `-m slow` to run them).
# Extra arguments go to pytest. Tests that need ../shared/data or ../shared/weights, Java or Chromium skip with a
# reason when those are absent. Exit status: ruff's when it fails, else pytest's: 0 only when tests ran and passed
# (5 = none collected).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_packages.sh
source scripts/setup.sh
python -m ruff check .
python -m ruff format --check .
python -m pytest -q -ra "$@"
