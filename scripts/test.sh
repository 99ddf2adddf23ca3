#!/usr/bin/env bash
# Sets up .venv and runs the default test suite (tests marked `slow` are skipped; add `-m slow` to run them).
# Extra arguments go to pytest. Tests that need ../shared/data or ../shared/weights skip with a reason when
# those folders are absent. Exit status is pytest's: 0 only when tests ran and passed (5 = none collected).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
python -m pytest -q -ra "$@"
