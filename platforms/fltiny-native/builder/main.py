"""SCons builder of the fltiny-native platform: the firmware as a Linux executable built with
the host gcc (POSIX port, TCP instead of a UART)."""

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

target_elf = env.BuildProgram()
AlwaysBuild(env.Alias("upload", target_elf, env.VerboseAction(
    "echo native board: run it with 'fltiny emulate --board native'", "Nothing to upload")))
Default([target_elf])
