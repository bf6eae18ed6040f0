"""The processes of a Flower run, started and stopped by fltiny.

Every process gets its own session (process group), PR_SET_PDEATHSIG(SIGTERM) as a backstop,
its log file, and the run's marker in its environment (``MARKER_ENV``). Flower's own children
inherit the marker but not the group: the SuperLink and each SuperNode start a
``flower-superexec`` in a session of its own, which starts ``flwr-serverapp`` /
``flwr-clientapp`` processes in yet another. ``Procs.stop`` therefore ends the groups it
started, then every process on the machine whose environment carries this run's marker
(SIGTERM, then SIGKILL after a grace period), so no Flower process outlives the run, also
after an error, a Ctrl-C or a SuperNode killed from outside.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fltiny.errors import ToolchainError

MARKER_ENV = "FLTINY_FLOWER_RUN"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # in the child, between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def bin_dir() -> Path:
    """The environment's bin/ (flwr's console scripts live beside this Python)."""
    return Path(sys.executable).parent


def flower_binary(name: str) -> Path:
    path = bin_dir() / name
    if not path.is_file():
        raise ToolchainError(f"{name} not found in {bin_dir()} (flwr is not installed in this "
                             "environment): run make setup")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def marked(marker: str) -> list[int]:
    """Pids of the processes whose environment carries ``MARKER_ENV=marker`` (this user's)."""
    needle = f"{MARKER_ENV}={marker}".encode() + b"\0"
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read() + b"\0"
        except OSError:
            continue  # gone, or not ours
        if b"\0" + needle in b"\0" + env:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Proc:
    name: str
    cmd: list[str]
    log: Path
    popen: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> int | None:
        return self.popen.poll()

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(x.strip() for x in text[-lines:])


@dataclass
class Procs:
    """The processes of one run, all marked with ``marker``."""

    marker: str
    env: dict[str, str]
    log: Callable[[str], None] = print  # debug lines: every command line
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, cmd: Sequence[str], log: Path, cwd: Path | None = None) -> Proc:
        env = {**self.env, MARKER_ENV: self.marker}
        self.log(f"starting {name}: {' '.join(map(str, cmd))}")
        with open(log, "ab") as f:
            popen = subprocess.Popen(list(map(str, cmd)), stdin=subprocess.DEVNULL, stdout=f,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        p = Proc(name, list(map(str, cmd)), log, popen)
        self.procs.append(p)
        return p

    def stop_one(self, p: Proc, grace_s: float = 5.0) -> None:
        _signal_group(p.pid, signal.SIGTERM)
        try:
            p.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(p.pid, signal.SIGKILL)
            p.popen.wait(grace_s)

    def stop(self, grace_s: float = 5.0) -> list[int]:
        """End every process of the run; the pids that needed SIGKILL."""
        for p in reversed(self.procs):
            if p.exited() is None:
                _signal_group(p.pid, signal.SIGTERM)
        for pid in marked(self.marker):
            _signal(pid, signal.SIGTERM)
        end = time.monotonic() + grace_s
        while time.monotonic() < end:
            for p in self.procs:
                p.exited()  # reap
            if not any(_alive(pid) for pid in marked(self.marker)):
                break
            time.sleep(0.1)
        killed = [pid for pid in marked(self.marker) if _alive(pid)]
        for pid in killed:
            _signal(pid, signal.SIGKILL)
        for p in self.procs:
            if p.exited() is None:
                _signal_group(p.pid, signal.SIGKILL)
                p.popen.wait(grace_s)
        end = time.monotonic() + grace_s
        while any(_alive(pid) for pid in marked(self.marker)) and time.monotonic() < end:
            time.sleep(0.05)
        return killed


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def wait_listening(p: Proc, port: int, timeout_s: float, what: str) -> None:
    """Until ``port`` accepts connections; ToolchainError (one line, the log's tail) when the
    process exits first or the time runs out."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        code = p.exited()
        if code is not None:
            raise ToolchainError(f"{what} exited with code {code} before listening on "
                                 f"127.0.0.1:{port}: {p.tail()} (log: {p.log})")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ToolchainError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:g} s "
                         f"(log: {p.log})")
