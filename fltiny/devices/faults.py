"""Injected link faults between the host and an emulated board: a TCP proxy that, by seed,
corrupts bytes, drops, duplicates, reorders and stalls what it forwards, disconnects the host's
side, and resets the board (its process killed and started again, a reboot as the host sees
it). bench/faults.py runs a fleet through these proxies and tabulates fault -> outcome; the
tests use the same proxy.

The proxy forwards what arrives in each direction as one unit (a ``recv`` of at most
``CHUNK`` bytes) and draws, per unit, at most one fault of the kinds it was given, with the
given probability each; byte corruption flips one bit in a share of the bytes. Every fault is
counted in ``counts`` by kind. The board side stays connected except across a reset.
"""

from __future__ import annotations

import collections
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = 512
KINDS = ("corrupt", "drop", "duplicate", "reorder", "stall", "disconnect", "reset")


@dataclass(frozen=True)
class FaultRates:
    """Probabilities per forwarded unit (corrupt: per byte)."""

    corrupt: float = 0.0
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    stall: float = 0.0
    disconnect: float = 0.0
    reset: float = 0.0
    stall_s: tuple[float, float] = (0.2, 1.0)  # a stall's length, uniform in this range


@dataclass
class FaultProxy:
    """host <-> proxy (127.0.0.1:port) <-> board at ``upstream``; ``reset_board`` restarts the
    board (None: no resets) and returns when it accepts connections again."""

    upstream: tuple[str, int]
    rates: FaultRates
    seed: int
    reset_board: Callable[[], None] | None = None
    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.up = socket.create_connection(self.upstream)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.client: socket.socket | None = None
        self.held: dict[str, bytes] = {}  # a unit held back for reordering, by direction
        self._stop = False
        self._reset_asked = threading.Event()
        self._reset_done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop = True
        self.thread.join(3)
        for s in (self.client, self.lsock, self.up):
            if s is not None:
                s.close()

    def reset_now(self, timeout: float = 30.0) -> None:
        """Resets the board now, at a point the caller picks (counted as a reset); returns when
        the proxy is connected to the rebooted board. The host's connection stays up: the host
        learns of the reboot only from the board's fresh HELLO."""
        self._reset_done.clear()
        self._reset_asked.set()  # done by the proxy's own thread, between two units
        if not self._reset_done.wait(timeout):
            raise TimeoutError(f"the board was not back within {timeout:g} s")

    # ---- faults ----
    def _corrupt(self, data: bytes) -> bytes:
        if self.rates.corrupt <= 0:
            return data
        b = bytearray(data)
        for i in range(len(b)):
            if self.rng.random() < self.rates.corrupt:
                b[i] ^= 1 << self.rng.randrange(8)
                self.counts["corrupt"] += 1
        return bytes(b)

    def _pick(self) -> str | None:
        r = self.rng.random()
        for kind in KINDS[1:]:
            p = getattr(self.rates, kind)
            if kind == "reset" and self.reset_board is None:
                continue
            if r < p:
                return kind
            r -= p
        return None

    def _forward(self, direction: str, data: bytes) -> None:
        """Apply the drawn fault to one unit and send what remains."""
        dst = self.up if direction == "up" else self.client
        kind = self._pick()
        out: list[bytes] = []
        if kind is not None:
            self.counts[kind] += 1
        if kind == "drop":
            return
        if kind == "reorder" and direction not in self.held:
            self.held[direction] = data  # goes out after the next unit of this direction
            return
        out.append(self._corrupt(data))
        if direction in self.held:
            out.append(self._corrupt(self.held.pop(direction)))
        if kind == "duplicate":
            out.append(out[0])
        if kind == "stall":
            time.sleep(self.rng.uniform(*self.rates.stall_s))
        try:
            for chunk in out:
                if dst is not None:
                    dst.sendall(chunk)
        except OSError:
            if direction == "down":
                self._drop_client()
        if kind == "disconnect":
            self._drop_client()
        elif kind == "reset":
            self._reset()

    def _drop_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        self.held.pop("down", None)

    def _reset(self) -> None:
        assert self.reset_board is not None
        self.up.close()
        self.held.clear()
        self.reset_board()
        deadline = time.monotonic() + 20
        while True:
            try:
                self.up = socket.create_connection(self.upstream, timeout=2)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # ---- the loop ----
    def _loop(self) -> None:
        while not self._stop:
            if self._reset_asked.is_set():
                self._reset_asked.clear()
                self.counts["reset"] += 1
                self._reset()
                self._reset_done.set()
            socks = [self.up, self.lsock] + ([self.client] if self.client else [])
            try:
                ready, _, _ = select.select(socks, [], [], 0.05)
            except (OSError, ValueError):
                time.sleep(0.01)
                continue
            for s in ready:
                if s is self.lsock:
                    c, _ = self.lsock.accept()
                    if self.client is not None:
                        self.client.close()
                    self.client = c
                    continue
                try:
                    data = s.recv(CHUNK)
                except OSError:
                    data = b""
                if s is self.up:
                    if data:
                        self._forward("down", data)
                    elif not self._stop:  # the board went away (a reset): wait for it
                        time.sleep(0.05)
                    continue
                if not data:
                    self._drop_client()
                    continue
                self._forward("up", data)
