#!/usr/bin/env bash
# Checks that every checked-in C file (firmware/, tests/c/, tools/) is formatted as .clang-format
# says; generated C (templates/*.j2 output) is not checked. Fix with:
#   clang-format -i $(git ls-files 'firmware/*.[ch]' 'firmware/*.cpp' 'tests/c/*.[ch]' 'tests/c/*.cpp' 'tools/*.[ch]')
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "clang-format not found: run 'make setup' (Debian package clang-format)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files 'firmware/*.[ch]' 'firmware/*.cpp' 'tests/c/*.[ch]' 'tests/c/*.cpp' 'tools/*.[ch]')
clang-format --dry-run --Werror "${files[@]}" || {
  echo "C format check failed: run 'clang-format -i' on the files above" >&2
  exit 1
}
