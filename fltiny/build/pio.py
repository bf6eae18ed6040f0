"""Run PlatformIO for a rendered project, offline for the emulated boards.

PlatformIO state lives in a project-local core dir (``build/pio-core`` or
``$FLTINY_BUILD_DIR/pio-core``), provisioned on first use with a local ``tool-scons`` package:
``package.json`` + ``.piopm`` (owner platformio, so PlatformIO does not ask its registry) +
``scons.py``, which runs SCons from the PyPI ``scons`` package of this Python environment.
Update checks and telemetry are off. The local development platforms (platforms/) need no
packages, so `pio run` for qemu-* and native never touches the network.

For real boards the official platform (espressif32, nordicnrf52, ststm32, raspberrypi) must be
installed in the core dir. When it is not, and PlatformIO's registry does not answer within a
few seconds, the build stops with a message naming what is missing (after `pio project
config` has validated the rendered platformio.ini).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fltiny.boards import REPO_ROOT, Board
from fltiny.errors import ToolchainError

log = logging.getLogger("fltiny.build")

REGISTRY_HOSTS = ("api.registry.platformio.org", "dl.registry.platformio.org")
SCONS_VERSION = "4.41101.0"  # what platformio 6.2 asks for (~4.41101.0)

SCONS_ENTRY = '''"""tool-scons entry provided by fltiny: runs SCons from the PyPI package of the
Python environment that runs PlatformIO (see fltiny/build/pio.py)."""
import sys

from SCons.Script.Main import main

if __name__ == "__main__":
    sys.exit(main())
'''


def core_dir() -> Path:
    root = os.environ.get("FLTINY_BUILD_DIR")
    return (Path(root) if root else REPO_ROOT / "build") / "pio-core"


def provision_core(core: Path | None = None) -> Path:
    """Create the core dir with the local tool-scons package (idempotent)."""
    core = core or core_dir()
    pkg = core / "packages" / "tool-scons"
    pkg.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "tool-scons", "version": SCONS_VERSION,
                "description": "SCons from the PyPI scons package (provided by fltiny)",
                "system": "*"}
    piopm = {"type": "tool", "name": "tool-scons", "version": SCONS_VERSION,
             "spec": {"owner": "platformio", "id": 0, "name": "tool-scons",
                      "requirements": None, "uri": None}}
    for name, text in (("package.json", json.dumps(manifest, indent=2)),
                       (".piopm", json.dumps(piopm)), ("scons.py", SCONS_ENTRY)):
        f = pkg / name
        if not f.is_file() or f.read_text() != text:
            f.write_text(text)
    return core


def pio_env(core: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PLATFORMIO_CORE_DIR"] = str(provision_core(core))
    env["PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL"] = "36500"
    env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] = "No"
    env["PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD"] = "0"
    env["PLATFORMIO_NO_ANSI"] = "true"
    env["FLTINY_LINK_KEEP_ELF"] = "1"
    env.pop("PLATFORMIO_BUILD_DIR", None)
    return env


def pio_command() -> list[str]:
    return [sys.executable, "-m", "platformio"]


def run_pio(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [*pio_command(), *args]
    log.debug("running %s (in %s)", " ".join(cmd), cwd)
    try:
        return subprocess.run(cmd, cwd=cwd, env=pio_env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"'{' '.join(cmd)}' did not finish within {timeout:.0f} s") from exc


def check_config(project_dir: Path) -> str:
    """`pio project config`: PlatformIO's own parser and validator of platformio.ini."""
    proc = run_pio(["project", "config", "-d", str(project_dir)], cwd=project_dir, timeout=120)
    if proc.returncode != 0:
        raise ToolchainError(f"PlatformIO rejects {project_dir / 'platformio.ini'}: "
                             f"{_last_error(proc)}")
    return proc.stdout


def platform_installed(name: str, core: Path | None = None) -> bool:
    core = core or core_dir()
    folder = core / "platforms"
    if not folder.is_dir():
        return False
    for p in folder.iterdir():
        mf = p / "platform.json"
        if mf.is_file():
            try:
                if json.loads(mf.read_text()).get("name") == name:
                    return True
            except json.JSONDecodeError:
                continue
    return False


def registry_reachable(timeout: float = 3.0) -> bool:
    """True if PlatformIO's registry answers a TCP connect on 443 within `timeout` seconds
    (name resolution included: it runs in a daemon thread, so a stuck resolver cannot hang us)."""
    import threading

    found = threading.Event()

    def probe() -> None:
        for host in REGISTRY_HOSTS:
            try:
                with socket.create_connection((host, 443), timeout=timeout):
                    found.set()
                    return
            except OSError:
                continue

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return found.is_set()


def _last_error(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or "") + "\n" + (proc.stdout or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for key in ("overflowed", "error:", "Error:", "Error", "error"):
        hits = [ln for ln in lines if key in ln]
        if hits:
            return " | ".join(dict.fromkeys(hits[:4]))
    return lines[-1] if lines else f"exit code {proc.returncode}"


@dataclass
class BuildResult:
    project_dir: Path
    elf: Path | None
    seconds: float
    log: str
    link_overflow: str = ""


def build_project(project_dir: Path, board: Board, env_name: str, verbose: bool = False) -> BuildResult:
    """`pio run` in project_dir. Raises ToolchainError with the compiler's message on failure,
    except a linker region overflow: that returns BuildResult(link_overflow=...) so the caller
    can print the memory report first."""
    project_dir = Path(project_dir)
    if not board.emulated and not platform_installed(board.pio_platform):
        check_config(project_dir)
        if not registry_reachable():
            raise ToolchainError(
                f"PlatformIO platform '{board.pio_platform}' (board {board.pio_board}, framework "
                f"{board.pio_framework}) is not installed in {core_dir()} and PlatformIO's registry "
                f"({REGISTRY_HOSTS[0]}) is unreachable; the project in {project_dir} is rendered "
                "and its platformio.ini validated: build it with 'pio run' on a machine with "
                f"internet access, or install the platform ('pio pkg install -g -p {board.pio_platform}')")
    t0 = time.perf_counter()
    proc = run_pio(["run", "-d", str(project_dir), "-e", env_name] + (["-v"] if verbose else []),
                   cwd=project_dir)
    dt = time.perf_counter() - t0
    out = (proc.stdout or "") + (proc.stderr or "")
    elf = project_dir / ".pio" / "build" / env_name / "firmware.elf"
    if proc.returncode != 0:
        if "overflowed" in out or "will not fit in region" in out:
            return BuildResult(project_dir, None, dt, out, link_overflow=_last_error(proc))
        raise ToolchainError(f"pio run failed for board {board.name}: {_last_error(proc)} "
                             f"(full log: rerun 'pio run -d {project_dir}')")
    if not elf.is_file():
        raise ToolchainError(f"pio run succeeded but {elf} is missing")
    return BuildResult(project_dir, elf, dt, out)
