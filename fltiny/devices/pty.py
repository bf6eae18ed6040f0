"""Emulated boards whose serial lines are ptys: ``fltiny emulate --pty``.

Each board keeps the serial link the rest of fltiny uses (a TCP socket handed to QEMU with
``wait=on``, or the native board's ``--listen-fd``: fltiny.devices.fleet); this process
connects to it and bridges it to a pty pair it creates (``os.openpty``). Another process (a
``fltiny run --port /dev/pts/N``, a terminal program) opens the slave side like any serial
port. The board's data blob is loaded by this process into QEMU (or the native process) and
never crosses the pty.

Why not QEMU's own ``-serial pty``: it works for HELLO (checked with QEMU 7.2: a host opening
the slave 2 s after the start gets the board's HELLO retransmissions within 0.1 s, and again
after closing and reopening it), but QEMU starts the guest at once and drops what the guest
writes while nobody holds the slave open (PLATFORM_NOTES), its pty path has to be parsed from
QEMU's output, and the native board has no such option. Here every emulated board keeps the
one serial path the rest of fltiny uses and tests, the guest starts when this process
connects (nothing it writes is lost before that), and this process holds the slave open
itself, so the pty never hangs up when a host closes it and opens it again. Bytes
the board writes while no host reads queue in the pty; beyond ``QUEUE_LIMIT`` the oldest are
dropped (like a UART nobody listens to; the device retransmits its HELLO until a host answers,
and a host's pyserial flushes stale input when it opens the port). The slave is put in raw mode
(no echo, no line editing, no CR/LF or XON/XOFF translation): the link carries binary frames.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
import tty
from collections.abc import Sequence
from dataclasses import dataclass, field

from fltiny.devices.fleet import Device

log = logging.getLogger("fltiny.devices")

QUEUE_LIMIT = 1 << 16  # bytes from the board kept for a host that does not read (yet)


@dataclass
class PtyLine:
    """One board's serial line as a pty: ``path`` is what a host opens."""

    device: Device
    path: str
    sock: socket.socket
    master: int
    slave: int
    pending: bytearray = field(default_factory=bytearray)  # board -> pty, not yet written
    dropped: int = 0  # board bytes dropped because nobody read the pty
    closed: bool = False  # the board closed its side (it exited)


class PtyBridge:
    """Bridges each device's serial socket to a pty pair this process owns (module
    docstring). ``lines[i].path`` is device i's pty; ``close()`` ends the bridging."""

    def __init__(self, devices: Sequence[Device]) -> None:
        self.lines: list[PtyLine] = []
        try:
            for d in devices:
                master, slave = os.openpty()
                tty.setraw(slave)
                os.set_blocking(master, False)
                sock = d.connect()  # the board starts now (wait=on)
                sock.settimeout(None)
                self.lines.append(PtyLine(d, os.ttyname(slave), sock, master, slave))
        except BaseException:
            self.close()
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fltiny-pty", daemon=True)
        self._thread.start()

    def __enter__(self) -> PtyBridge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            live = [ln for ln in self.lines if not ln.closed]
            readers = [ln.sock for ln in live] + [ln.master for ln in live]
            writers = [ln.master for ln in live if ln.pending]
            try:
                ready_r, ready_w, _ = select.select(readers, writers, [], 0.1)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                raise
            for ln in live:
                if ln.sock in ready_r:
                    self._from_board(ln)
                if ln.master in ready_r:
                    self._from_host(ln)
                if ln.master in ready_w and ln.pending:
                    self._flush(ln)

    def _from_board(self, ln: PtyLine) -> None:
        try:
            data = ln.sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            ln.closed = True  # the board exited; the caller notices its process
            return
        ln.pending += data
        if len(ln.pending) > QUEUE_LIMIT:
            cut = len(ln.pending) - QUEUE_LIMIT
            del ln.pending[:cut]
            ln.dropped += cut
        self._flush(ln)

    def _flush(self, ln: PtyLine) -> None:
        try:
            n = os.write(ln.master, ln.pending)
        except BlockingIOError:
            return  # the pty is full: nobody reads; keep the bytes until QUEUE_LIMIT
        except OSError as exc:
            log.debug("pty %s: write failed: %s", ln.path, exc)
            return
        del ln.pending[:n]

    def _from_host(self, ln: PtyLine) -> None:
        try:
            data = os.read(ln.master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: no slave open (cannot happen: we hold one)
                log.debug("pty %s: read failed: %s", ln.path, exc)
            return
        if data:
            try:
                ln.sock.sendall(data)
            except OSError:
                ln.closed = True

    def close(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            self._thread.join(2)
        for ln in self.lines:
            for fd in (ln.master, ln.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.lines = []
