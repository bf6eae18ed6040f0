"""SCons builder of the fltiny-native platform: the firmware as a Linux executable built with
the host gcc (POSIX port, TCP or MQTT instead of a UART).

The MQTT transport (firmware/ports/native/link_mqtt.c) needs libmosquitto: when its header is
found (Debian libmosquitto-dev, installed by `make setup`) FLT_NATIVE_MQTT is defined and the
firmware links -lmosquitto; without it the firmware builds with TCP only and says so when asked
for --mqtt."""

import os

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment  # noqa: F401

env = DefaultEnvironment()

env.Replace(
    AR="gcc-ar",
    AS="gcc",
    CC="gcc",
    CXX="g++",
    RANLIB="gcc-ranlib",
    SIZETOOL="size",
    ARFLAGS=["rc"],
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
)
env.Append(
    CCFLAGS=["-O2", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off"],
    CFLAGS=["-std=c99"],
    CPPDEFINES=[("_POSIX_C_SOURCE", "200809L")],
    LINKFLAGS=["-Wl,--gc-sections", "-Wl,-Map,${BUILD_DIR}/firmware.map"],
)

MOSQUITTO_HEADERS = ("/usr/include/mosquitto.h", "/usr/local/include/mosquitto.h")
if any(os.path.isfile(h) for h in MOSQUITTO_HEADERS):
    env.Append(CPPDEFINES=["FLT_NATIVE_MQTT"], LIBS=["mosquitto"])

target_elf = env.BuildProgram()
AlwaysBuild(env.Alias("upload", target_elf, env.VerboseAction(
    "echo native board: run it with 'fltiny emulate --board native'", "Nothing to upload")))
Default([target_elf])
