#!/usr/bin/env bash
# Idempotent setup for `make demo` / `make test`: Debian packages where missing, then a
# .venv with the package installed editable. Quick when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
              gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc mosquitto
              libmosquitto-dev  # the native board's MQTT client (firmware/ports/native/link_mqtt.c)
              clang-format    # clang-format-14, the clang-14 family libFuzzer uses
              clang-14 libfuzzer-14-dev libclang-rt-14-dev  # bench/fuzz.py: libFuzzer + ASan/UBSan
              libstdc++-arm-none-eabi-newlib  # C++ headers: tools/check-real-boards' Arduino cores
              chromium)  # headless browser of the dashboard tests (tests/test_dashboard_browser.py)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.fltiny-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing fltiny and its dependencies into .venv (first time: a minute or two)"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import fltiny, numpy, jinja2, click" \
    || { echo "setup: installing into .venv failed" >&2; exit 1; }
  touch "$stamp"
fi
