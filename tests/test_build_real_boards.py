"""Real boards: the rendered PlatformIO projects pass PlatformIO's own configuration check,
`fltiny build` stops within seconds naming the missing platform (no registry here), and the
portable firmware of the Cortex-M boards compiles with arm-none-eabi-gcc."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from fltiny.boards import get_board
from fltiny.build.pio import check_config, platform_installed, registry_reachable
from fltiny.build.project import render_project

pytestmark = pytest.mark.slow

REAL = ["esp32", "esp32-s3", "esp32-c3", "nrf52840", "stm32f4", "rp2040"]


@pytest.fixture(scope="module")
def rendered(har_tiny_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    return {name: render_project(get_board(name), har_tiny_bundle, root / name) for name in REAL}


@pytest.mark.parametrize("name", REAL)
def test_project_config_accepted(rendered, name):
    p = rendered[name]
    out = check_config(p.path)  # `pio project config`
    b = p.board
    assert f"env:{p.env_name}" in out and b.pio_platform in out and b.pio_board in out
    assert b.pio_framework in out
    if b.esp:
        for f in ("CMakeLists.txt", "src/CMakeLists.txt", "sdkconfig.defaults", "partitions.csv"):
            assert (p.path / f).is_file()
        assert (p.path / "src" / "port" / "esp-idf" / "port_espidf.c").is_file()
    else:
        assert (p.path / "src" / "port" / "arduino" / "port_arduino.cpp").is_file()
    assert (p.path / "include" / "fltiny_data.h").is_file()


def test_build_esp32_stops_quickly_naming_the_platform(cli, har_tiny_bundle, tmp_path):
    if platform_installed("espressif32") or registry_reachable(2.0):
        pytest.skip("espressif32 is installed or the registry is reachable: a real build would run")
    t0 = time.monotonic()
    code, out, err = cli("build", "--board", "esp32", "--bundle", har_tiny_bundle,
                         "--out", tmp_path / "esp32")
    assert time.monotonic() - t0 < 30
    assert code == 6
    msg = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(msg) == 1 and "'espressif32'" in msg[0] and "not installed" in msg[0]
    assert "unreachable" in msg[0] and (tmp_path / "esp32" / "platformio.ini").is_file()


CPU_FLAGS = {
    "nrf52840": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "stm32f4": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "rp2040": ["-mcpu=cortex-m0plus", "-mthumb"],
}


def _compile_portable(p, name, tmp_path):
    """Every C source of the project (device loop, runtime, generated backbone, embedded data,
    an application's sensor file) compiled with the project's strict flags and linked into one
    relocatable object; the Arduino glue (C++ on the Arduino core) is left out."""
    sources = [s for s in sorted((p / "src").rglob("*.c"))]
    assert any(s.name == "flt_device.c" for s in sources)
    inc = [f"-I{p / d}" for d in ("src/runtime", "src/app", "src/port", "src/port/common",
                                  "src/generated", "include")]
    flags = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion",
             "-Wcast-qual", "-ffp-contract=off", "-Os", "-ffunction-sections"]
    # the project's own defines (platformio.ini build_flags), e.g. FLT_PORT_CKPT_MAX by storage
    ini = (p / "platformio.ini").read_text()
    flags += sorted({f for f in ini.split() if f.startswith("-D")})
    objs = []
    for s in sources:
        o = tmp_path / (s.stem + ".o")
        r = subprocess.run(["arm-none-eabi-gcc", *CPU_FLAGS[name], *flags, *inc, "-c", str(s), "-o", str(o)],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{s}: {r.stderr}"
        objs.append(str(o))
    out = tmp_path / "portable.o"
    r = subprocess.run(["arm-none-eabi-ld", "-r", "-o", str(out), *objs], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def _static_ram(obj) -> int:
    """Bytes of writable allocated sections (.data, .bss) of an object."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    with open(obj, "rb") as fh:
        return sum(int(sec["sh_size"]) for sec in ELFFile(fh).iter_sections()
                   if sec["sh_flags"] & SH_FLAGS.SHF_ALLOC and sec["sh_flags"] & SH_FLAGS.SHF_WRITE)


@pytest.mark.cross
@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("name", sorted(CPU_FLAGS))
def test_cortex_m_portable_part_compiles(rendered, name, tmp_path):
    """Everything but the Arduino glue (device loop, runtime, generated backbone, embedded data)
    compiles and links into a relocatable object with the project's strict flags."""
    config = (rendered[name].path / "include" / "fltiny_config.h").read_text()
    assert "#define FLT_APP_STORE_WINDOWS 0u" in config  # the blob is compiled in: no store
    _compile_portable(rendered[name].path, name, tmp_path)


SENSOR_C = """/* an application's sample source: a rule labels the steps */
#include "fltiny_config.h"
#include "port.h"

int flt_port_read_sample(int8_t *values, flt_sample_label_t *label)
{
    static uint32_t n;
    for (uint32_t c = 0; c < FLT_APP_SAMPLE_CHANNELS; ++c) {
        values[c] = (int8_t)(n + c);
    }
    label->label = (int32_t)((n++ / FLT_APP_WINDOW_LEN) % 6u);
    return 1;
}
"""


@pytest.mark.cross
@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("name", ["stm32f4", "rp2040"])
def test_cortex_m_sensor_build_compiles_and_fits(har_tiny_bundle, name, tmp_path):
    """`fltiny build --sensor FILE` on a real board: no data blob compiled in, the window store
    sized from the board's RAM, the application's source compiled in; the static RAM of the
    portable part (the store included) stays within the board's RAM and its stack reserve."""
    from fltiny.build.project import stack_bytes

    sensor = tmp_path / "accel.c"
    sensor.write_text(SENSOR_C)
    board = get_board(name)
    p = render_project(board, har_tiny_bundle, tmp_path / "project", sensor=sensor)
    assert p.store.capacity > 0 and p.store.ram_bytes <= board.ram_bytes // 4
    config = (p.path / "include" / "fltiny_config.h").read_text()
    assert "#define FLT_APP_SENSOR 1" in config
    assert f"#define FLT_APP_STORE_WINDOWS {p.store.capacity}u" in config
    assert "#define FLT_EMBEDDED_DATA_LEN 0u" in (p.path / "include" / "fltiny_data.h").read_text()
    obj = _compile_portable(p.path, name, tmp_path)
    assert _static_ram(obj) + stack_bytes(board) <= board.ram_bytes


def test_flash_without_port_lists_candidates(cli):
    code, _, err = cli("flash", "--board", "nrf52840")
    assert code == 2 and "candidate serial ports:" in err and "--port PORT" in err


def test_flash_refuses_emulated_boards(cli):
    code, _, err = cli("flash", "--board", "qemu-m4f", "--port", "/dev/null")
    assert code == 2 and "fltiny emulate" in err


def test_esptool_command_layout(tmp_path):
    from fltiny.devices.flash import esptool_command

    for f in ("bootloader.bin", "partitions.bin", "firmware.bin"):
        (tmp_path / f).write_bytes(b"\0")
    cmd = esptool_command(get_board("esp32-c3"), "/dev/ttyUSB0", tmp_path)
    assert cmd[cmd.index("--chip") + 1] == "esp32c3" and "write_flash" in cmd
    assert cmd[-6:] == ["0x0", str(tmp_path / "bootloader.bin"), "0x8000", str(tmp_path / "partitions.bin"),
                        "0x10000", str(tmp_path / "firmware.bin")]
    assert esptool_command(get_board("esp32"), "COM3", tmp_path)[-6] == "0x1000"
