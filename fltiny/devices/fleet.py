"""Start N emulated boards (QEMU or native processes), each with its own endpoint; stop all.

    with start_fleet(board, elf, blobs) as fleet:
        for dev in fleet.devices:
            sock = dev.connect()          # a connected socket (the board starts now)
        ...
    # leaving the block (or fleet.stop(), Ctrl-C, the host dying) stops every process

Each device gets a TCP listening socket on 127.0.0.1 created here (port 0 = any free port) and
inherited by QEMU (`-chardev socket,fd=N`) or the native process (`--listen-fd N`); the
endpoint is host:port, for `socket.create_connection` or pyserial's
`serial_for_url("socket://host:port")`. A native board given an MQTT identity
(``start_fleet(..., mqtt=...)``) has no listening socket: it connects to the fleet's broker
itself (port 0 in its Device). Processes get PR_SET_PDEATHSIG(SIGTERM) as a
backstop, and stop() terminates, then kills, every one of them explicitly.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fltiny.boards import Board
from fltiny.errors import ToolchainError

from .native import MqttIdentity, native_command
from .qemu import qemu_command, write_boot_secret

log = logging.getLogger("fltiny.devices")

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass  # the explicit terminate in Fleet.stop still applies


@dataclass
class Device:
    index: int
    board: Board
    host: str
    port: int
    proc: subprocess.Popen
    command: list[str]
    device_id: int
    _listener: socket.socket | None = None
    _sock: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """pyserial URL of the device's serial port / TCP link."""
        return f"socket://{self.host}:{self.port}"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A connected TCP socket to the board (the board starts running on connection)."""
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    @property
    def on_mqtt(self) -> bool:
        return self._listener is None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)


@dataclass
class Fleet:
    board: Board
    devices: list[Device] = field(default_factory=list)
    workdir: Path | None = None
    _tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, grace: float = 2.0) -> None:
        for d in self.devices:
            if d._sock is not None:
                try:
                    d._sock.close()
                except OSError:
                    pass
            if d.proc.poll() is None:
                d.proc.terminate()
        deadline = time.monotonic() + grace
        for d in self.devices:
            try:
                d.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait()
            if d._listener is not None:
                d._listener.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def restart(self, d: Device) -> None:
        """Kill the board's process and start it again with the same command: a reboot (QEMU
        boards come back with the factory state; the native board keeps its state file, as a
        board with flash keeps its checkpoint). Its TCP listener stays, so the port is the
        same."""
        if d._sock is not None:
            d._sock.close()
            d._sock = None
        d.proc.kill()
        d.proc.wait()
        secret = self.workdir / f"device{d.index}.secret"
        if secret.is_file():  # a reboot draws a new boot secret
            write_boot_secret(secret)
        fds = (d._listener.fileno(),) if d._listener is not None else ()
        d.proc = _spawn(self, d.index, d.board, d.host, d.port, d.command, d.device_id,
                        d._listener, fds, capture=True).proc


def start_fleet(board: Board, elf: Path, blobs: Sequence[bytes | None] | int = 1, *,
                workdir: Path | None = None, host: str = "127.0.0.1", icount: bool = False,
                capture: bool = True,
                mqtt: Callable[[int], MqttIdentity] | None = None) -> Fleet:
    """Start one device per entry of `blobs` (the data blob bytes, or None for none; an int n
    means n devices without data). Returns a Fleet whose devices wait for a connection, or,
    with `mqtt` (native boards only: device id -> its broker identity), connect to the broker."""
    if mqtt is not None and board.port != "native":
        raise ToolchainError(f"board {board.name} has no MQTT client (only native boards do)")
    if not board.emulated:
        raise ToolchainError(f"board {board.name} is real hardware: use 'fltiny flash', not emulation")
    elf = Path(elf)
    if not elf.is_file():
        raise ToolchainError(f"firmware {elf} does not exist; run 'fltiny build --board {board.name}' first")
    items: list[bytes | None] = [None] * blobs if isinstance(blobs, int) else list(blobs)
    fleet = Fleet(board)
    if workdir is None:
        fleet._tmp = tempfile.TemporaryDirectory(prefix=f"fltiny-{board.name}-")
        workdir = Path(fleet._tmp.name)
    fleet.workdir = Path(workdir)
    fleet.workdir.mkdir(parents=True, exist_ok=True)
    try:
        for i, blob in enumerate(items):
            data_path = None
            device_id = i + 1
            if blob is not None:
                data_path = fleet.workdir / f"device{i}.blob"
                data_path.write_bytes(blob)
                device_id = int.from_bytes(blob[8:12], "little")
            state = fleet.workdir / f"device{i}.state"
            if mqtt is not None:
                cmd = native_command(elf, mqtt=mqtt(device_id), data=data_path, state=state)
                fleet.devices.append(_spawn(fleet, i, board, host, 0, cmd, device_id, None, (),
                                            capture))
                continue
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # the board's end (accepted by QEMU / the native process) inherits TCP_NODELAY: a
            # small frame (an ACK) is written at once instead of waiting for the previous
            # segment's TCP ACK (Nagle + delayed ACKs cost ~40 ms per stop-and-wait chunk)
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            listener.bind((host, 0))
            listener.listen(1)
            fd = listener.fileno()
            if board.port == "native":
                cmd = native_command(elf, listen_fd=fd, data=data_path, state=state)
            else:
                secret = write_boot_secret(fleet.workdir / f"device{i}.secret")
                cmd = qemu_command(board, elf, serial_fd=fd, data=data_path, icount=icount,
                                   secret=secret)
            fleet.devices.append(_spawn(fleet, i, board, host, listener.getsockname()[1], cmd,
                                        device_id, listener, (fd,), capture))
        time.sleep(0.05)
        dead = [d for d in fleet.devices if d.proc.poll() is not None]
        if dead:
            d = dead[0]
            log_text = ""
            logf = fleet.workdir / f"device{d.index}.log"
            if logf.is_file():
                log_text = logf.read_text(errors="replace").strip().splitlines()[-1:] or ""
            raise ToolchainError(f"{board.name} device {d.index} exited at start (code {d.proc.returncode}): "
                                 f"{' '.join(d.command)} {log_text}")
    except BaseException:
        fleet.stop()
        raise
    return fleet


def _spawn(fleet: Fleet, i: int, board: Board, host: str, port: int, cmd: list[str],
           device_id: int, listener: socket.socket | None, fds: tuple[int, ...],
           capture: bool) -> Device:
    log.debug("starting %s", " ".join(cmd))
    out = subprocess.DEVNULL
    if capture:
        out = open(fleet.workdir / f"device{i}.log", "wb")  # type: ignore[operator]  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            pass_fds=fds, preexec_fn=_die_with_parent, cwd=fleet.workdir)
    if capture:
        out.close()  # type: ignore[union-attr]
    return Device(i, board, host, port, proc, cmd, device_id, _listener=listener)


def run_to_exit(board: Board, elf: Path, timeout: float = 60.0, data: bytes | None = None, *,
                icount: bool = False, extra_args: Sequence[str] = ()) -> tuple[int, str]:
    """Run one QEMU board with the serial port on stdout until the guest exits (semihosting /
    virt finisher); returns (exit code, output). For on-target self-tests and benchmarks
    (``extra_args``: e.g. a ``-plugin``)."""
    with tempfile.TemporaryDirectory(prefix="fltiny-run-") as tmp:
        data_path = None
        if data is not None:
            data_path = Path(tmp) / "data.blob"
            data_path.write_bytes(data)
        cmd = [*qemu_command(board, Path(elf), serial_fd=None, data=data_path, icount=icount),
               *extra_args]
        log.debug("running %s", " ".join(cmd))
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise ToolchainError(f"{board.name}: the guest did not exit within {timeout:.0f} s: "
                                 f"{out.decode(errors='replace')[-300:]}") from None
        return proc.returncode, out.decode(errors="replace")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
