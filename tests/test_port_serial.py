"""The real boards' serial paths do not stall (issue 13), tested on builds of the ports that run
or compile here:

- the ESP-IDF port's UART read (flt_short_read.h) against a model of IDF's uart_read_bytes on a
  virtual clock: a buffered frame is taken at once, an arriving one as soon as its first byte is
  there (asking uart_read_bytes for a whole buffer waits for it to fill or the whole timeout);
- the Arduino port on the host against a stub Arduino.h that declares `byte` as the cores do,
  with -Wshadow -Werror: wait_event honours its timeout and returns once a byte arrives;
- compiled for the Cortex-M boards with arm-none-eabi-g++: `wfi` only where a periodic tick wakes
  the core (STM32duino's SysTick), never on the nRF5 core (RTC1 interrupts every 512 s) or mbed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from fltiny.boards import REPO_ROOT

FW = REPO_ROOT / "firmware"
STUB = REPO_ROOT / "tests" / "c" / "arduino_stub"
PORT = FW / "ports" / "arduino" / "port_arduino.cpp"
INCLUDES = [f"-I{p}" for p in (STUB, FW / "runtime", FW / "app", FW / "ports", FW / "ports" / "common")]
STRICT = ["-Wall", "-Wextra", "-Werror", "-Wshadow"]


def _data_header(tmp_path: Path) -> str:
    """The two generated headers the port includes: a 4-byte data blob and a config without
    FLT_APP_SENSOR (the board has no sample source)."""
    (tmp_path / "fltiny_data.h").write_text(
        "#define FLT_EMBEDDED_DATA_LEN 4u\nstatic const unsigned char flt_embedded_data[4] = {1, 2, 3, 4};\n")
    (tmp_path / "fltiny_config.h").write_text('#define FLT_BOARD_NAME "host-test"\n')
    return f"-I{tmp_path}"


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_uart_short_reads(tmp_path):
    exe = tmp_path / "short_read"
    r = _run(["gcc", "-std=c99", "-pedantic", *STRICT, "-Wconversion", f"-I{FW / 'ports' / 'common'}",
              str(REPO_ROOT / "tests" / "c" / "short_read_test.c"), "-o", str(exe)])
    assert r.returncode == 0, r.stderr
    r = _run([str(exe)])
    assert r.returncode == 0, r.stdout
    assert "ok buffered frame: 20 bytes at t=0 ms" in r.stdout
    assert "ok frame arriving: 1 bytes at t=30 ms" in r.stdout


def test_esp_port_reads_through_short_read():
    """The UART branch of the ESP-IDF port asks the driver only for what it holds."""
    src = (FW / "ports" / "esp-idf" / "port_espidf.c").read_text()
    assert "flt_short_read(&rx_ring" in src and "uart_get_buffered_data_len" in src
    calls = re.findall(r"uart_read_bytes\(([^;]*)\);", src)
    assert calls and all("sizeof" not in c for c in calls), calls


@pytest.mark.tools("g++")
def test_arduino_port_on_the_host(tmp_path):
    exe = tmp_path / "arduino_port"
    r = _run(["g++", "-std=gnu++17", *STRICT, "-DFLT_PORT_CKPT_MAX=0u", *INCLUDES,
              _data_header(tmp_path), str(PORT), str(REPO_ROOT / "tests" / "c" / "arduino_port_test.cpp"),
              "-o", str(exe)])
    assert r.returncode == 0, r.stderr
    r = _run([str(exe)])
    assert r.returncode == 0, r.stdout
    assert "ok timeout honoured without a byte" in r.stdout and "ok returns once a byte" in r.stdout


def test_byte_parameter_is_what_wshadow_flags(tmp_path):
    """The stub is strict enough to catch the defect: a parameter named `byte` fails."""
    bad = tmp_path / "bad.cpp"
    bad.write_text('#include "Arduino.h"\nint take(uint8_t *byte) { return *byte; }\n')
    r = _run(["g++", *STRICT, f"-I{STUB}", "-c", str(bad), "-o", str(tmp_path / "bad.o")])
    assert r.returncode != 0 and "shadows" in r.stderr


CORES = {  # what each core's PlatformIO builder defines, and whether a tick bounds `wfi`
    "ARDUINO_ARCH_STM32": True,   # STM32duino: SysTick 1 kHz (HAL tick)
    "ARDUINO_ARCH_NRF5": False,   # arduino-nRF5 (nrf52840_dk): RTC1 overflow only, every 512 s
    "ARDUINO_ARCH_RP2040": False,  # ArduinoCore-mbed: the RTOS idles
}


@pytest.mark.cross
@pytest.mark.tools("arm-none-eabi-g++")
@pytest.mark.parametrize("arch", sorted(CORES))
def test_wfi_only_with_a_tick(tmp_path, arch):
    asm = tmp_path / "port.s"
    cpu = ["-mcpu=cortex-m0plus"] if "RP2040" in arch else ["-mcpu=cortex-m4", "-mfloat-abi=hard",
                                                              "-mfpu=fpv4-sp-d16"]
    r = _run(["arm-none-eabi-g++", *cpu, "-mthumb", "-Os", "-fno-exceptions", "-fno-rtti", *STRICT,
              f"-D{arch}", "-DFLT_PORT_CKPT_MAX=0u", *INCLUDES, _data_header(tmp_path), "-S",
              str(PORT), "-o", str(asm)])
    assert r.returncode == 0, r.stderr
    text = asm.read_text()
    body = text[text.index("flt_port_wait_event:"):]
    body = body[:body.index(".size\tflt_port_wait_event")]
    assert ("wfi" in body) == CORES[arch], body
