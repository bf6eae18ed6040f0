"""ESP-IDF project settings derived from a board file: the one place that maps boards/*.toml to
sdkconfig.defaults (templates/project/esp-idf/sdkconfig.defaults.j2) and to the main component's
requirements (src/CMakeLists.txt).

Without these, IDF uses its own defaults whatever the board file says: 2 MB of flash (the 3 MB
factory partition of partitions.csv does not fit), 160 MHz on the ESP32 and ESP32-S3 (the boards
run at 240 MHz), ``-Og`` (debug optimisation), and the console on UART0 (which carries the
protocol on UART builds). Names are IDF 5.5's Kconfig symbols; tools/check-real-boards runs IDF's
own kconfgen on the rendered file and checks the resulting sdkconfig.h against the board file.
"""

from __future__ import annotations

from fltiny.boards import Board
from fltiny.errors import UsageError

# Kconfig choices of IDF 5.5 (components/esptool_py/Kconfig.projbuild,
# components/esp_system/port/soc/<target>/Kconfig.cpu)
FLASH_SIZES_MB = (1, 2, 4, 8, 16, 32, 64, 128)
CPU_MHZ = {"esp32": (80, 160, 240), "esp32s3": (80, 160, 240), "esp32c3": (80, 160)}

# components the port uses (driver/uart.h is esp_driver_uart's, pulled in by driver)
IDF_REQUIRES = ("driver", "esp_wifi", "esp_netif", "esp_event", "nvs_flash", "esp_timer", "lwip")

# The main task only starts the device task (16 KiB, port_espidf.c); training rounds run for
# seconds without blocking, so the task watchdog gets a generous timeout (it warns, no panic).
COMMON = (
    ("CONFIG_ESP_MAIN_TASK_STACK_SIZE", "8192"),
    ("CONFIG_ESP_TASK_WDT_TIMEOUT_S", "30"),
    ("CONFIG_PARTITION_TABLE_CUSTOM", "y"),
    ("CONFIG_PARTITION_TABLE_CUSTOM_FILENAME", '"partitions.csv"'),
    ("CONFIG_COMPILER_OPTIMIZATION_PERF", "y"),  # -O2: training is the device's hot loop
)

# UART transport: UART0 (the USB-serial bridge) carries the protocol, so nothing else may print
# there. The ROM's first-stage boot messages cannot be turned off from sdkconfig (eFuse only):
# the host's framing skips them (frames start after a 0x00 delimiter and carry a tag).
UART_QUIET = (
    ("CONFIG_ESP_CONSOLE_NONE", "y"),
    ("CONFIG_LOG_DEFAULT_LEVEL_NONE", "y"),
    ("CONFIG_BOOTLOADER_LOG_LEVEL_NONE", "y"),
)


def idf_target(board: Board) -> str:
    return str(board.espidf["target"])


def flash_size_mb(board: Board) -> int:
    mb, rest = divmod(board.flash_bytes, 1 << 20)
    if rest or mb not in FLASH_SIZES_MB:
        raise UsageError(f"board '{board.name}': flash_bytes {board.flash_bytes} is not an ESP-IDF "
                         f"flash size ({', '.join(f'{m} MB' for m in FLASH_SIZES_MB)})")
    return mb


def cpu_mhz(board: Board) -> int:
    mhz, rest = divmod(board.clock_hz, 1_000_000)
    allowed = CPU_MHZ.get(idf_target(board), ())
    if rest or mhz not in allowed:
        raise UsageError(f"board '{board.name}': clock_hz {board.clock_hz} is not a CPU frequency "
                         f"of {idf_target(board)} ({', '.join(f'{m} MHz' for m in allowed)})")
    return mhz


def sdkconfig_defaults(board: Board, *, uart_link: bool) -> list[tuple[str, str]]:
    """(symbol, value) pairs of sdkconfig.defaults for `board`; uart_link: the protocol runs on
    UART0 (no Wi-Fi), so the console and every log are kept off it."""
    items = [(f"CONFIG_ESPTOOLPY_FLASHSIZE_{flash_size_mb(board)}MB", "y"),
             (f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{cpu_mhz(board)}", "y"), *COMMON]
    if uart_link:
        items += UART_QUIET
    return items
