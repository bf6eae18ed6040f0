"""Build the instruction-count QEMU plugin (tools/qemu-plugin/insn_count.c), cached.

Debian's QEMU 7.2 ships no plugin header: the plugin declares the few API functions it uses
itself, so a plain `gcc -shared -fPIC` builds it. The output goes to build/qemu-plugin (or
$FLTINY_BUILD_DIR/qemu-plugin) and is rebuilt only when the source changes (the file name
carries a hash of the source).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from fltiny.boards import REPO_ROOT
from fltiny.errors import ToolchainError

log = logging.getLogger(__name__)

SOURCE = REPO_ROOT / "tools" / "qemu-plugin" / "insn_count.c"
CFLAGS = ("-shared", "-fPIC", "-std=c99", "-pedantic", "-O2", "-Wall", "-Wextra", "-Werror")


def plugin_dir() -> Path:
    root = os.environ.get("FLTINY_BUILD_DIR")
    return (Path(root) if root else REPO_ROOT / "build") / "qemu-plugin"


def build_plugin(out_dir: Path | None = None) -> Path:
    """Path of libinsn_count-<hash>.so, compiling it first when missing."""
    src = SOURCE.read_bytes()
    digest = hashlib.sha256(src + " ".join(CFLAGS).encode()).hexdigest()[:12]
    out_dir = Path(out_dir) if out_dir else plugin_dir()
    lib = out_dir / f"libinsn_count-{digest}.so"
    if lib.is_file():
        return lib
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise ToolchainError("no host C compiler (gcc) to build the QEMU plugin: apt-get install gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_suffix(f".tmp{os.getpid()}")
    cmd = [cc, *CFLAGS, "-o", str(tmp), str(SOURCE)]
    log.debug("building the QEMU plugin: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"building {SOURCE.name} failed: {proc.stderr.strip()[-500:]}")
    os.replace(tmp, lib)
    return lib
