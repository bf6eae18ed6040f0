"""One protocol session with one peer: the policy around the runtime's receiver and outbox.

The bytes, the checks and the retransmission state machine are the C runtime's
(fltiny.native.proto: flt_proto_rx_t, flt_proto_tx_t, flt_outbox_t, the same code the device
runs); this module decides what to do with their events: queue messages, answer, deliver,
count, raise. Semantics: docs/protocol.md, "Reliability".

The session does no I/O of its own: it gets ``send(bytes)`` and ``receive() -> bytes``
callables (a serial port, a TCP socket, a QEMU serial socket or a test double) and a
``clock() -> seconds`` (injectable, so the retransmission logic is tested without sleeping).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fltiny.native import messages as m
from fltiny.native import proto
from fltiny.native.errors import DeliveryError, NackError, ProtocolError
from fltiny.native.proto import RxEvent

__all__ = ["RxEvent", "Session", "SessionStats"]


@dataclass
class SessionStats:
    frames_sent: int = 0
    retransmissions: int = 0
    rejected: list[str] = field(default_factory=list)  # status names of rejected frames


class Session:
    """One protocol session with one device (or, with on_host=False, with the host).

    Outgoing messages are queued by ``submit`` and sent one at a time, one chunk at a time;
    each chunk is retransmitted after ``timeout`` seconds without its ACK, at most ``retries``
    times, then ``poll`` raises DeliveryError (and drops that message). A NACK raises
    NackError. Incoming messages are delivered exactly once, in order, to ``inbox`` (``recv``
    pops them). ``poll`` is the single step: read what ``receive`` returns, answer, deliver,
    (re)transmit. ``max_chunk`` lowers the size of the chunks this side sends.

    Answered messages (docs/protocol.md): the device ACKs neither a TRAIN nor a GLOBAL of at
    most FLT_PROTO_ANSWERED_CHUNKS frames. Such a GLOBAL goes out as a burst and is done when
    its last frame is sent; a TRAIN is done when its answer arrives (a DELTA of its round or
    an ERROR), when the device ACKs a retransmission of it (a duplicate: it is training) or
    NACKs it (FLT_ERR_ORDER: a frame before it was lost; the caller resends the GLOBAL). It is
    retransmitted after ``answer_timeout`` seconds without either (default: 8 x ``timeout``,
    at least 2 s: a device answers only after training)."""

    def __init__(self, *, key: bytes, device_id: int, send: Callable[[bytes], object],
                 receive: Callable[[], bytes], on_host: bool = True,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 0.25,
                 retries: int = 8, max_chunk: int | None = None, max_message: int = 1 << 20,
                 first_seq: int = 1, seq_limit: int | None = None,
                 on_rejected: Callable[[RxEvent], None] | None = None,
                 answer_timeout: float | None = None) -> None:
        self.device_id = device_id
        self._on_host = on_host
        self._send = send
        self._receive = receive
        self.clock = clock
        self.timeout = timeout
        self.receiver = proto.Receiver(key, device_id, on_host=on_host, max_message=max_message)
        self.sender = proto.Sender(key, device_id, on_host=on_host,
                                   retx_ms=round(timeout * 1000), retries=retries,
                                   chunk=max_chunk, first_seq=first_seq)
        self.answer_timeout = (answer_timeout if answer_timeout is not None
                               else max(8 * timeout, 2.0))
        self.sender.set_answer_ms(round(self.answer_timeout * 1000))
        self._waiting: deque[tuple[int, m.Message, bytes]] = deque()
        self._current: tuple[int, m.Message] | None = None
        self._tickets = itertools.count(1)
        self.inbox: deque[m.Message] = deque()
        self.stats = SessionStats()
        self.on_rejected = on_rejected  # sees every rejected frame (e.g. a rebooted peer's seq 1)
        # no data frame goes out with a seq at or above this bound (the run store's lease:
        # fltiny.server.store.SEQ_LEASE); a message that would pass it raises DeliveryError
        self.seq_limit = seq_limit

    def set_answer_timeout(self, seconds: float) -> None:
        """Seconds before an unanswered TRAIN is sent again, from its next transmission on (a
        caller that knows how long the device trains raises it: the probe costs a TRAIN down
        and a duplicate ACK up)."""
        self.answer_timeout = seconds
        self.sender.set_answer_ms(round(seconds * 1000))

    # ---- sending -----------------------------------------------------------------------

    def submit(self, msg: m.Message) -> int:
        """Queues a message (encoded now, so a bad message fails here); returns its ticket
        for ``pending``."""
        if m.is_control(msg.TYPE):
            raise ValueError("ACK/NACK are sent by the session itself")
        ticket = next(self._tickets)
        self._waiting.append((ticket, msg, msg.encode()))
        return ticket

    def discard(self, ticket: int) -> bool:
        """Drops the message of ``ticket`` if it is still waiting (not begun); True if it was."""
        for i, (t, _, _) in enumerate(self._waiting):
            if t == ticket:
                del self._waiting[i]
                return True
        return False

    def pending(self, ticket: int) -> bool:
        """True while the message of ``ticket`` is queued or being sent."""
        return ((self._current is not None and self._current[0] == ticket)
                or any(t == ticket for t, _, _ in self._waiting))

    @property
    def current_ticket(self) -> int | None:
        """Ticket of the message being sent (its first frame is out), None when idle."""
        return self._current[0] if self._current is not None else None

    @property
    def idle(self) -> bool:
        return self._current is None and not self._waiting

    @property
    def sending_seq(self) -> int | None:
        """Sequence number of the chunk in flight (None when idle or not begun)."""
        return self.sender.in_flight()[0] if self._current and self.sender.busy else None

    def _ms(self) -> int:
        return int(self.clock() * 1000)

    def _finish(self, ev) -> None:
        msg = self._current[1] if self._current else None
        self._current = None
        if ev.event == proto.OB_NACKED:
            raise NackError(ev.seq, ev.code)
        if ev.event == proto.OB_GAVE_UP:
            answered = self._on_host and isinstance(msg, m.Train)
            what = "answered" if answered else "acknowledged"
            wait = self.answer_timeout if answered else self.timeout
            raise DeliveryError(
                f"{type(msg).__name__} chunk {ev.index + 1}/{ev.chunk_count} (seq {ev.seq}) "
                f"not {what} after {ev.tries} tries of {wait} s; is the device "
                "running and on this port?")

    def _load(self) -> None:
        ticket, msg, payload = self._waiting.popleft()
        chunks = proto.chunk_count(len(payload), self.sender.chunk)
        if self.seq_limit is not None and self.sender.next_seq + chunks > self.seq_limit:
            raise DeliveryError(
                f"{type(msg).__name__} would take sequence numbers up to "
                f"{self.sender.next_seq + chunks - 1}, past the lease ending at "
                f"{self.seq_limit - 1} (the run store renews it at each checkpoint)")
        self.sender.load(msg.TYPE, payload)
        self._current = (ticket, msg)

    def _transmit(self) -> None:
        if self._current is None and self._waiting:
            self._load()
        if self._current is None:
            return
        while True:
            ev, frame = self.sender.service(self._ms())
            if ev.event == proto.OB_FRAME:
                self.stats.frames_sent += 1
                self.stats.retransmissions += ev.tries > 1
                self._send(frame)
                if not ev.done:
                    return
                # a burst (answered messages): its frames go back to back, then the next
                # message at once (the TRAIN whose answer confirms it)
                self._current = None
                if not self._waiting:
                    return
                self._load()
            else:
                if ev.event in (proto.OB_GAVE_UP, proto.OB_FAILED):
                    self._finish(ev)
                return

    def _answers(self, msg: m.Message) -> bool:
        """True when ``msg`` from the device answers the TRAIN in flight."""
        if self._current is None or not isinstance(self._current[1], m.Train):
            return False
        return (isinstance(msg, m.Error)
                or isinstance(msg, m.Delta) and msg.round == self._current[1].round)

    # ---- the step ----------------------------------------------------------------------

    def poll(self) -> None:
        """Reads available bytes, answers and delivers, (re)transmits. Raises NackError or
        DeliveryError for the message being sent (it is dropped)."""
        if self._current is None and self._waiting:
            # a new message goes out at once, not after receive()'s wait for bytes (up to
            # 20 ms of idle line per message on a serial link)
            self._transmit()
        data = self._receive()
        failure: ProtocolError | None = None
        for ev in self.receiver.feed(data) if data else ():
            if ev.reply is not None:
                self._send(self.sender.reply(ev.c))
            if ev.kind == "message":
                self.inbox.append(ev.message)
                if self._on_host and self._answers(ev.message):
                    self.sender.answered()
                    self._current = None
            elif ev.kind == "control" and self._current is not None:
                out = self.sender.on_control(ev.c)
                if out.event != 0:
                    try:
                        self._finish(out)
                    except NackError as e:
                        failure = failure or e
            elif ev.kind == "rejected":
                self.stats.rejected.append(ev.error.status)
                if self.on_rejected is not None:
                    self.on_rejected(ev)
        if failure is not None:
            raise failure
        self._transmit()

    def send(self, msg: m.Message) -> None:
        """Sends one message and waits (polling) until it is acknowledged."""
        ticket = self.submit(msg)
        while self.pending(ticket):
            self.poll()

    def recv(self, timeout: float) -> m.Message:
        """Polls until a message arrives; DeliveryError after ``timeout`` seconds."""
        end = self.clock() + timeout
        while not self.inbox:
            if self.clock() >= end:
                raise DeliveryError(f"no message within {timeout} s")
            self.poll()
        return self.inbox.popleft()
