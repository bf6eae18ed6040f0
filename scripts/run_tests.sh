#!/usr/bin/env bash
# Runs the test suite in .venv; pytest's exit code 5 (nothing selected) is not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
echo "ruff check (lint)"
.venv/bin/ruff check fltiny tests bench tools || { echo "lint failed: run '.venv/bin/ruff check --fix'" >&2; exit 1; }
echo "clang-format --dry-run --Werror (C lint)"
bash scripts/check_c_format.sh || exit 1
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "0 passed, 0 failed"
  exit 0
fi
exit $rc
