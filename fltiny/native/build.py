"""Compile the firmware runtime (firmware/runtime) for the host.

The runtime is organised in components, one folder each (kernels, train, delta, ...); the
``core`` folder (status, float bit casts, little-endian bytes) belongs to every build. A build
names the components it needs, so a half-written component never breaks the others' tests.

Builds are cached under ``build/native/<hash>/`` (or ``$FLTINY_BUILD_DIR/native``), keyed by
the compiler command line and the content of every source and header, so repeated test runs
cost nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from fltiny.errors import ToolchainError

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DIR = REPO_ROOT / "firmware" / "runtime"
CORE = "core"  # the base every component includes: in every build, never named by a caller

STRICT_FLAGS = (
    "-std=c99",
    "-pedantic",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wconversion",
    "-Wcast-qual",
    "-Wshadow",
    "-ffp-contract=off",
)
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1")


def build_dir() -> Path:
    root = os.environ.get("FLTINY_BUILD_DIR")
    base = Path(root) if root else REPO_ROOT / "build"
    return base / "native"


KERNELS_DIR = RUNTIME_DIR / "kernels"


def kernel_variant_dir(variant: str) -> Path:
    """firmware/runtime/kernels/<variant>/, checked to exist."""
    folder = KERNELS_DIR / variant
    if not variant or "/" in variant or not folder.is_dir():
        raise ToolchainError(f"unknown kernel variant '{variant}' (no folder {folder})")
    return folder


def runtime_sources(components: Sequence[str], kernel_variant: str | None = None) -> list[Path]:
    """The C sources of ``core`` plus the named components, in a stable order.

    kernels/<target>/ folders are skipped (they are for their targets, fltiny.build.project)
    unless ``kernel_variant`` names one: then each of its files replaces the reference kernel
    of the same name, as the board build does. A build with a variant needs ``-I kernels``
    (variant_flags) for the variant's ``#include "conv.h"``."""
    variant = {f.name: f for f in kernel_variant_dir(kernel_variant).glob("*.c")} \
        if kernel_variant else {}
    sources: list[Path] = []
    for name in [CORE, *(c for c in components if c != CORE)]:
        folder = RUNTIME_DIR / name
        if not folder.is_dir():
            raise ToolchainError(f"unknown runtime component '{name}' (no folder {folder})")
        if name == "kernels":
            sources += sorted(variant.get(f.name, f) for f in folder.glob("*.c"))
        else:
            sources += sorted(folder.rglob("*.c"))
    return sources


def variant_flags(kernel_variant: str | None) -> list[str]:
    """The include flag a kernel variant's sources need (none for the reference kernels)."""
    return [f"-I{KERNELS_DIR}"] if kernel_variant else []


def _digest(cmd: Sequence[str], files: Sequence[Path], include_dirs: Sequence[Path] = ()) -> str:
    h = hashlib.sha256("\0".join(cmd).encode())
    headers = sorted(RUNTIME_DIR.rglob("*.h"))
    for d in include_dirs:  # e.g. firmware/app: its headers change the build as much
        headers += sorted(Path(d).glob("*.h"))
    for path in [*files, *headers]:
        h.update(str(path).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _compile(cmd: list[str], out: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out.unlink(missing_ok=True)
        raise ToolchainError(f"C build failed: {' '.join(cmd)}\n{proc.stderr.strip()}")


def _cached_build(sources: Sequence[Path], flags: Sequence[str], filename: str,
                  include_dirs: Sequence[Path] = (), cc: str | None = None) -> Path:
    """Compile and link ``sources`` with ``flags`` into build/native/<key>/<filename>, unless
    a build with the same compiler (``cc``, else $CC, else gcc), flags and file contents
    (sources, the runtime's headers and those of ``include_dirs``) is already there."""
    cc = cc or os.environ.get("CC", "gcc")
    out = build_dir() / _digest([cc, *flags], sources, include_dirs) / filename
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")  # concurrent builders never share a file
    _compile([cc, *flags, "-o", str(tmp), *map(str, sources), "-lm"], tmp)
    tmp.replace(out)
    return out


def build_shared_library(
    components: Sequence[str],
    extra_sources: Sequence[Path] = (),
    include_dirs: Sequence[Path] = (),
    name: str = "fltrt",
    kernel_variant: str | None = None,
) -> Path:
    """Build ``lib<name>.so`` from the runtime components (for ctypes), with the reference
    kernels or, given ``kernel_variant`` (e.g. "rv32", a portable-C variant), the files of
    kernels/<variant>/ in their place. Returns its path."""
    sources = [*runtime_sources(components, kernel_variant), *map(Path, extra_sources)]
    flags = [*STRICT_FLAGS, "-O2", "-fPIC", "-shared", f"-I{RUNTIME_DIR}",
             *variant_flags(kernel_variant), *(f"-I{d}" for d in include_dirs)]
    return _cached_build(sources, flags, f"lib{name}.so", include_dirs)


def build_executable(
    main_sources: Sequence[Path],
    components: Sequence[str],
    name: str,
    sanitize: bool = True,
    include_dirs: Sequence[Path] = (),
    kernel_variant: str | None = None,
) -> Path:
    """Build a host test executable (under ASan and UBSan by default), with the reference
    kernels or those of ``kernel_variant`` (as build_shared_library). Returns its path."""
    sources = [*runtime_sources(components, kernel_variant), *map(Path, main_sources)]
    flags = [*STRICT_FLAGS, f"-I{RUNTIME_DIR}", *variant_flags(kernel_variant),
             *(f"-I{d}" for d in include_dirs), *(SANITIZE_FLAGS if sanitize else ("-O2",))]
    return _cached_build(sources, flags, name, include_dirs)


def build_program(cc: str, sources: Sequence[Path], flags: Sequence[str], name: str,
                  include_dirs: Sequence[Path] = ()) -> Path:
    """Build ``name`` from ``sources`` with compiler ``cc`` and exactly ``flags`` (e.g. the
    libFuzzer harnesses of bench/fuzz.py: clang with -fsanitize=fuzzer), cached like the
    builds above. Returns its path."""
    return _cached_build(sources, flags, name, include_dirs, cc)


def have_compiler(name: str) -> bool:
    return shutil.which(name) is not None
