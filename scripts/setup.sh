#!/usr/bin/env bash
# Creates .venv next to this repository (once), installs the pinned dependencies and the project, and puts
# .venv/bin on PATH. Run it (`bash scripts/setup.sh`) or source it (`source scripts/setup.sh`) to get the
# `seq2seq` command in your shell; sourcing changes no shell option. Safe to repeat.
_seq2seq_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_seq2seq_install() (
  set -euo pipefail
  if [ ! -x "$_seq2seq_root/.venv/bin/python" ]; then
    echo "[setup] creating $_seq2seq_root/.venv" >&2
    "${PYTHON:-python3}" -m venv "$_seq2seq_root/.venv"
  fi
  "$_seq2seq_root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$_seq2seq_root/requirements.txt"
  "$_seq2seq_root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$_seq2seq_root"
)
if _seq2seq_install; then
  export PATH="$_seq2seq_root/.venv/bin:$PATH"
  export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
else
  echo "[setup] installation failed" >&2
  return 1 2>/dev/null || exit 1
fi
