"""The bridge fleet: real or emulated boards over serial / TCP as a ``fltiny.server.rounds.Fleet``.

One protocol session per device (fltiny.bridge.session), one thread per device during a round:

    HELLO (once per device session) -> GLOBAL (FULL, or a compressed DELTA when the device holds
    exactly the previous version: built and applied with the runtime's flt_delta_compress /
    flt_delta_apply) -> TRAIN -> DELTA (until the round deadline)

The device ACKs neither the TRAIN nor a GLOBAL of at most 4 chunks (protocol v3, docs/protocol.md
"Answered messages"): the GLOBAL goes out as a burst, the DELTA confirms both, a lost frame of
them makes the device NACK the TRAIN (the resync below), and an unanswered TRAIN is probed
after twice the device's longest TRAIN -> DELTA time so far (before its first DELTA: a quarter
of the round's time left; at least the session's default).

Every DELTA is checked before it can reach the model:
1. the session has authenticated it (HMAC tag), checked sequence numbers and chunking;
2. its round and base version are the ones the host sent;
3. the runtime's C accumulator validates its payload with the decoder's rules and the model's
   limits and measures its norm (``measure_payload``); the update goes on as that payload,
   never densified on the aggregation path (fltiny.native.accumulate);
4. its example count is at most the windows its board trains on (``Endpoint.max_windows``,
   the board's ``max_windows``: FedAvg weights by it) and its personal metric is in range
   (an accuracy in [0, 1]);
5. **replay**, only where the host holds the device's data blob (emulation, CI, desk tests):
   the host runs the same round through ``HostRound`` (the device's C compiled for the host)
   from the parameters the device holds, its data blob, the TRAIN configuration and the
   host-tracked device state, and the payload, example count, loss and personal metric must be
   byte-identical. A device whose data the host never sees (a real sensor) cannot be replayed:
   its update is checked by 1-4 here and by the server's validation (finite values, L2 norm
   bound, anomaly score: fltiny.server.validate), and its ``RoundLog.verification`` says
   "checks" instead of "replay".
Anything else is rejected with its reason (``DeviceResult.error``, which the round loop writes
to the run store).

Churn: a broken link is reopened (same session: the device keeps its sequence state); a device
that rebooted (its HELLO arrives with sequence number 1, which the old session rejects as a
replay) gets a new session, a FULL GLOBAL, and its residual restarts at zero on both sides;
a device more than one version behind (missed rounds, new session, unknown state) gets a FULL
GLOBAL; a device whose endpoint answers later joins the next round (``devices()``).

Host restart (docs/protocol.md "Host restart"): ``host_state`` gives, for every checkpoint,
what the host knows of each device (version and exact parameters held, round state, RESET
flag, last device seq, HELLO) and the next seq it would send; the host then sends no seq past
that number plus the store's lease until the next checkpoint. A resumed host (``fltiny run
--resume``, boards that outlived the killed one) ``restore``s each re-attached board from the
store, with a session counting from the store's lease, and re-runs the round that was in
flight: the device answers the repeated GLOBAL (a no-op) and TRAIN (its kept DELTA) so the
round gives the bytes it gave, or would have given, the killed host. Not persisted: the
unconfirmed rounds (``_UnconfirmedRound``, a replay aid for boards whose data the host holds,
which the host starts itself and which die with it).

Training switch (``set_training``, the round loop's ``fltiny ctl disable|enable``): DISABLE
or ENABLE (docs/protocol.md) goes to the device at once when it is reachable, else when it is
next reachable (``devices()``), and again after a reboot (a device boots enabled); the answer
to the STATUS that follows says which model it serves ("serving=factory training=off").

Secure aggregation (``secagg``, fltiny.bridge.secagg; ``fltiny run --secagg``): TRAIN carries
the SECAGG and NO_FEEDBACK flags, the device keeps its round delta and its DELTA has an empty
body; after the round's DELTAs the bridge runs the SecAggRound over the devices it accepted,
through their sessions, and returns no individual update: ``secure_aggregate(round)`` gives
the round loop the survivors' exact mean. The replay (where the host holds the data) still
checks the DELTA's examples, loss and personal metric bit for bit and tracks the device's
state; the masked values themselves cannot be compared (``RoundLog.verification``
"replay-metadata", ``masked`` True).

Residual bookkeeping: the device commits its new residual when the host's ACK of the DELTA
arrives. When that ACK is lost for good the device keeps the previous residual; the host keeps
both and the replay of the next round tells which one the device holds.
"""

from __future__ import annotations

import collections
import io
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from fltiny.bridge import messages as m
from fltiny.bridge.link import Link, open_link
from fltiny.bridge.ports import key_id
from fltiny.bridge.secagg import REPLY, BridgeSecAgg
from fltiny.bridge.session import RxEvent, Session
from fltiny.devices.data import DataBlob
from fltiny.devices.replay import DeviceState
from fltiny.errors import FltinyError
from fltiny.native.accumulate import Accumulator, measure_payload
from fltiny.native.errors import DeliveryError, NackError, PayloadError, ProtocolError
from fltiny.native.messages import MsgType
from fltiny.native.proto import chunk_count, max_chunk, wire_size
from fltiny.native.status import status_name
from fltiny.server.downlink import DEFAULT_BITS, DEFAULT_TOPK, Held, global_message
from fltiny.server.rounds import DeviceResult, TrainParams, device_seed
from fltiny.server.store import SEQ_LEASE, DeviceRecord, params_sha256
from fltiny.strategies.base import ClientUpdate


@dataclass
class Endpoint:
    """Where a device is and what the host knows of it. ``blob``: the device's data blob when
    the host holds it (its rounds are then replayed); None for a device whose data stays on
    the device (a real sensor, a board the host did not start)."""

    device_id: int
    url: str  # tcp://host:port, host:port, socket://host:port, /dev/ttyUSB0, ...
    blob: DataBlob | None = None
    max_windows: int = 1 << 30  # the board's FLT_APP_MAX_WINDOWS (training windows it uses)
    key: bytes = b""
    board: str = ""
    open: Callable[[], Link] | None = None  # default: open_link(url)
    # a board this host did not start (a port, a fleet file): it outlives the host, so a
    # resumed host carries on with it where the run store's checkpoint left it (``restore``);
    # ``hello``: the HELLO its probe saw (fltiny.bridge.ports), kept with the host state
    running: bool = False
    hello: m.Hello | None = None


@dataclass
class RoundLog:
    """What the bridge measured for one device in one round (beside DeviceResult)."""

    round: int
    device_id: int
    board: str
    accepted_by_bridge: bool
    reason: str
    payload_bytes: int = 0  # DELTA body (the delta payload)
    delta_message_bytes: int = 0  # DELTA message (its varint head + the payload)
    delta_wire_bytes: int = 0  # the DELTA's frames on the wire (framing, tag, CRC, COBS bound)
    wire_up: int = 0  # every byte from the device this round (frames, ACKs, retransmissions)
    wire_down: int = 0
    global_kind: str = ""  # full | delta | none
    # the model the device trained from: its version, and the sha256 of the parameters it
    # held (a sparse GLOBAL delta leaves it an approximation of the server's model)
    model_version: int = -1
    model_sha256: str = ""
    replayed: bool = False
    replay_match: bool = False
    # how the DELTA was verified: "replay" (byte-identical to the host's replay), "checks"
    # (the host holds no data of the device: authentication, format, counts and ranges here,
    # norm and anomaly in the server's validation), "" (no DELTA verified)
    verification: str = ""
    rejected_frames: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    personal_n: int = 0  # the device's personal metric, as its DELTA reported it (replayed)
    personal_metric: float | None = None
    # the device's self-check of the GLOBAL failed (TRAIN self-check drop, flt_device.h): it
    # reverted to its factory model; "replayed" when the host's flt_round_self_check on its
    # data gives the same verdict and figures, "mismatch" when not, "reported" without data
    self_check: str = ""
    # secure aggregation (fltiny.bridge.secagg): the DELTA carried no update (its values went
    # masked, not replay-verified); the plain payload the replay computed for the same round
    # (0: not replayed); the MASKED payload's bytes; why the device left the masked round
    masked: bool = False
    plain_payload_bytes: int = 0
    masked_payload_bytes: int = 0
    secagg_wire_up: int = 0  # the masked round's SECAGG frames (and their ACKs), in wire_up too
    secagg_wire_down: int = 0
    secagg_error: str = ""
    trains_sent: int = 0  # TRAIN messages sent this round (each may be a device's release)


def f32_bits(value: float) -> bytes:
    """The float32 bits of a value (a DELTA's float fields are compared bit for bit)."""
    return np.float32(value).tobytes()


# Attempts of one device round (GLOBAL + TRAIN, again after a reboot or a refused message);
# the round's deadline bounds them too. On a faulty line a FULL GLOBAL of many chunks can be
# refused several times in a row (docs/benchmarks.md "Link faults"): 4 cost boards rounds.
MAX_ATTEMPTS = 10


STATE_FORMAT = 1  # the layout of _DeviceState.encode_state


def decode_state(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of ``_DeviceState.encode_state``; ValueError when it is not one."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a device state of this fltiny ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        raise ValueError(f"device state format {meta.get('format') if isinstance(meta, dict) else '?'}"
                         f", this fltiny reads {STATE_FORMAT}")
    return meta, arrays


class _Reset(Exception):
    """The device rebooted (a fresh HELLO): start a new session."""


@dataclass
class _UnconfirmedRound:
    """A round whose TRAIN reached the device but whose DELTA the host did not accept (it came
    after the deadline, or never): the link may still have acknowledged that DELTA, and the
    device commits its state at that acknowledgement (firmware/app/flt_device.c). The host can
    replay it to learn that state: the parameters the device held and the TRAIN."""

    params: np.ndarray
    train: m.Train


MAX_UNCONFIRMED = 3  # unconfirmed rounds kept per device: 2 x 2^3 chains to replay at most


class _DeviceState:
    def __init__(self, ep: Endpoint, n_params: int, timeout: float, retries: int,
                 send_chunk: int | None) -> None:
        self.ep = ep
        self.link: Link | None = None
        self.broken = False
        self.session: Session | None = None
        self.hello: m.Hello | None = None
        self.hello_problem = ""
        self.version: int | None = None  # model version the device holds (None: unknown)
        self.params: np.ndarray | None = None  # exact float32 parameters the device holds
        # the device's round state (residual, drift, served model) as of its last
        # acknowledged DELTA, and the one before (kept by a device whose ACK was lost)
        self.state = DeviceState.fresh(n_params)
        self.prev_state: DeviceState | None = None
        self.in_flight: _UnconfirmedRound | None = None  # this round's, once its TRAIN is sent
        # the rounds since its last accepted DELTA whose TRAIN it got (oldest first)
        self.unconfirmed: list[_UnconfirmedRound] = []
        self.needs_reset = False  # its next TRAIN carries RESET (a replay mismatch)
        self.reset_seen = False
        self.resets = 0
        self.reconnects = 0
        self.sent = 0
        self.received = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.timeout = timeout
        self.retries = retries
        self.send_chunk = send_chunk
        self.training_wanted = True  # what the host asked for (set_training)
        # what the device was last told (a boot: enabled; None: unknown, told again)
        self.training_on_device: bool | None = True
        self.seq_limit: int | None = None  # the run store's sequence lease (host_state)
        # the longest TRAIN -> DELTA time seen: the session probes a TRAIN only after twice it
        # (docs/protocol.md "Answered messages"); 0 before its first DELTA
        self.answer_s = 0.0

    # ---- link ----
    def _send(self, data: bytes) -> None:
        if self.link is None or self.broken:
            return  # the retransmission timer repeats it after the reconnect
        try:
            self.link.send(data)
            self.sent += len(data)
        except ConnectionError:
            self.broken = True

    def _receive(self) -> bytes:
        if self.link is None or self.broken:
            raise ConnectionError("link down")
        data = self.link.receive()
        self.received += len(data)
        return data

    def connect(self, timeout: float) -> None:
        opener = self.ep.open or (lambda: open_link(self.ep.url, timeout=timeout))
        self.link = opener()
        self.broken = False

    def drop_link(self) -> None:
        if self.link is not None:
            self.link.close()
        self.link = None

    def new_session(self, first_seq: int | None = None) -> None:
        # outgoing chunks may be smaller than a full chunk (the receiver still takes full
        # ones): on a noisy line a 297-byte frame rarely arrives intact.
        # The new session's sequence numbers go on from the old one's: a rebooted device may
        # have accepted frames the old session sent before its HELLO reached the host, and
        # its receiver refuses every number up to the last it accepted (REPLAY). A resumed
        # host's first session starts at the run store's lease (``first_seq``, restore)
        first = (first_seq if first_seq is not None
                 else self.session.sender.next_seq if self.session is not None else 1)
        self.session = Session(key=self.ep.key, device_id=self.ep.device_id, send=self._send,
                               receive=self._receive, timeout=self.timeout, retries=self.retries,
                               on_rejected=self._on_rejected, max_chunk=self.send_chunk,
                               first_seq=first, seq_limit=self.seq_limit)
        self.reset_seen = False

    # ---- host state in the run store (BridgeFleet.host_state / restore) ----

    def encode_state(self) -> bytes:
        """What the host knows of this device, for the run store: the model version and the
        exact float32 parameters it holds, its round state (residual, drift, served model; the
        previous one), whether its next TRAIN carries RESET, the last sequence number the
        host accepted from it and its HELLO. For a board this host started (it dies with the
        host: a resumed run starts it again, fresh) only the meta part, which names it."""
        hello = self.hello or self.ep.hello
        meta = {"format": STATE_FORMAT, "device_id": self.ep.device_id, "url": self.ep.url,
                "board": self.ep.board, "running": self.ep.running,
                "key_id": key_id(self.ep.key), "version": self.version,
                "needs_reset": self.needs_reset,
                "device_seq": self.session.receiver.last_seq if self.session else 0,
                "hello": hello.encode().hex() if hello is not None else None}
        arrays = {"meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)}
        if self.ep.running:
            if self.version is not None and self.params is not None:
                arrays["params"] = self.params
            for name, st in (("state", self.state), ("prev", self.prev_state)):
                if st is None:
                    continue
                arrays[f"{name}_residual"], arrays[f"{name}_drift"] = st.residual, st.drift
                if st.served is not None:
                    arrays[f"{name}_served"] = st.served
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    def _on_rejected(self, ev: RxEvent) -> None:
        status = ev.error.status if ev.error is not None else "?"
        self.rejected[status] += 1
        h = ev.header
        # an authenticated HELLO with seq 1 rejected as a replay (the session has accepted later
        # frames from this device): the device rebooted. (A duplicate seq 1 is only a
        # retransmitted HELLO whose ACK was lost.)
        if (h is not None and h.type == MsgType.HELLO and h.seq == 1 and h.chunk_index == 0
                and status == "FLT_ERR_REPLAY"):
            self.reset_seen = True


class BridgeFleet:
    """``Fleet`` over protocol sessions with real or emulated boards (module docstring)."""

    def __init__(self, endpoints: Sequence[Endpoint], host_round, *, model_hash: bytes,
                 global_delta: bool = True, down_topk: float = DEFAULT_TOPK,
                 down_bits: int = DEFAULT_BITS,
                 log: Callable[[str], None] = lambda _m: None,
                 timeout: float = 0.3, retries: int = 20, hello_wait: float = 5.0,
                 reconnect_wait: float = 10.0, send_chunk: int | None = None,
                 replay_lock: threading.Lock | None = None,
                 secagg: BridgeSecAgg | None = None) -> None:
        self.hr = host_round
        self.secagg = secagg  # secure aggregation (fltiny.bridge.secagg): masked updates
        self.n_params = int(host_round.n_params)
        # the head a factory-fresh or reverted device serves and trains (version 0)
        self.factory_params = np.ascontiguousarray(host_round.head.params, dtype=np.float32)
        self._meter = Accumulator(self.n_params)  # validates and measures payloads (C)
        self.model_hash = bytes(model_hash)
        self.global_delta = global_delta
        self.down_topk, self.down_bits = down_topk, down_bits
        self.log = log
        self.hello_wait = hello_wait
        self.reconnect_wait = reconnect_wait
        self._devs: dict[int, _DeviceState] = {}
        self._timeout, self._retries, self._send_chunk = timeout, retries, send_chunk
        # the host round's C keeps static buffers: bridges sharing one HostRound (gateways)
        # share one lock
        self._replay_lock = replay_lock or threading.Lock()
        self.personal_max = (1.0 if host_round.manifest.task == "classification"
                             else float("inf"))  # an accuracy, or an MAE
        self.replays = 0
        self.replay_mismatches = 0
        self.logs: list[RoundLog] = []
        for ep in endpoints:
            self.add(ep)

    # ---- membership ----------------------------------------------------------------------

    def add(self, ep: Endpoint) -> None:
        """A device that joins (from the next ``devices()`` on)."""
        if ep.device_id in self._devs:
            raise ValueError(f"device {ep.device_id} is already in the fleet")
        d = _DeviceState(ep, self.n_params, self._timeout, self._retries, self._send_chunk)
        self._devs[ep.device_id] = d

    def device_ids(self) -> list[int]:
        """Every device of this fleet (reachable or not)."""
        return sorted(self._devs)

    def devices(self) -> list[int]:
        """Devices with an open link: connects new ones and waits briefly for their HELLO."""
        pending = []
        for d in self._devs.values():
            if d.link is None or d.broken or not d.link.up():
                try:
                    d.drop_link()
                    d.connect(timeout=2.0)
                    d.reconnects += d.session is not None
                except ConnectionError as exc:
                    self.log(f"device {d.ep.device_id}: not reachable yet ({exc})")
                    continue
            if d.session is None:
                d.new_session()
            if d.hello is None:
                pending.append(d)
        end = time.monotonic() + self.hello_wait
        while pending and time.monotonic() < end:
            for d in list(pending):
                try:
                    self._poll(d)
                except (ConnectionError, ProtocolError):
                    pending.remove(d)
                    continue
                if d.hello is not None:
                    pending.remove(d)
        for d in self._devs.values():  # a switch that did not reach its device, or a reboot
            if (d.training_wanted != d.training_on_device and d.hello is not None
                    and d.link is not None and not d.broken):
                r = self._switch_training(d, self.hello_wait)
                self.log(f"device {d.ep.device_id}: training "
                         f"{'enabled' if d.training_wanted else 'disabled'} again: "
                         f"{r.get('status') or r.get('reason')}")
        return sorted(i for i, d in self._devs.items() if d.link is not None and not d.broken)

    # ---- training switch -----------------------------------------------------------------

    def set_training(self, device_id: int, enabled: bool, wait_s: float = 10.0) -> dict[str, object]:
        """DISABLE (``enabled`` False) or ENABLE a device's training. Returns what happened,
        for the audit record: ``{"delivered": True, "status": <its STATUS text>}``, or
        ``{"delivered": False, "reason": ...}`` (it is sent when the device is next
        reachable)."""
        d = self._devs.get(device_id)
        if d is None:
            return {"delivered": False, "reason": f"device {device_id} is not in this fleet"}
        d.training_wanted = enabled
        return self._switch_training(d, wait_s)

    def _switch_training(self, d: _DeviceState, wait_s: float) -> dict[str, object]:
        end = time.monotonic() + wait_s
        try:
            if d.link is None or d.broken:
                self._reconnect(d)
            if d.session is None:
                d.new_session()
            while d.hello is None:
                if time.monotonic() >= end:
                    raise TimeoutError("no authenticated HELLO yet")
                try:
                    self._poll(d)
                except _Reset:
                    self._handle_reset(d, end)
            want = d.training_wanted
            try:
                self._send(d, m.Disable(not want), end)
            except _Reset:  # rebooted: enabled, a new session; tell it again
                self._handle_reset(d, end)
                self._send(d, m.Disable(not want), end)
            d.training_on_device = want
            status = self._query_status(d, end)
        except (ProtocolError, TimeoutError, ConnectionError, _Reset) as exc:
            return {"delivered": False, "reason": f"{type(exc).__name__}: {exc}"}
        return {"delivered": True, "status": status}

    def status(self, device_id: int, wait_s: float = 10.0) -> str:
        """The device's answer to a STATUS (firmware/app/flt_device.h; parse it with
        fltiny.devices.data.DeviceDataStatus)."""
        d = self._devs[device_id]
        if d.link is None or d.broken:
            self._reconnect(d)
        if d.session is None:
            d.new_session()
        end = time.monotonic() + wait_s
        try:
            return self._query_status(d, end)
        except _Reset:  # rebooted while asked: a new session, ask again
            self._handle_reset(d, end)
            return self._query_status(d, end)

    def _query_status(self, d: _DeviceState, end: float) -> str:
        assert d.session is not None
        self._send(d, m.Status("status"), end)
        while True:
            for msg in list(d.session.inbox):
                if isinstance(msg, m.Status):
                    d.session.inbox.remove(msg)
                    return msg.text
            if time.monotonic() >= end:
                raise TimeoutError("no STATUS answer before the deadline")
            self._poll(d)

    def close(self) -> None:
        for d in self._devs.values():
            d.drop_link()

    # ---- host state: the run store's device_states (a resumed host carries on) -------------

    def host_state(self) -> dict[int, DeviceRecord]:
        """Every device's host state for the checkpoint being written (the round loop calls it
        between rounds, with no exchange in flight), and the next sequence number the host
        would send it. From now on the host sends no seq at or above that number plus
        ``SEQ_LEASE`` (the lease the checkpoint records) until the next checkpoint."""
        out = {}
        for i, d in self._devs.items():
            nxt = d.session.sender.next_seq if d.session is not None else 1
            d.seq_limit = max(d.seq_limit or 0, nxt + SEQ_LEASE)
            if d.session is not None:
                d.session.seq_limit = d.seq_limit
            out[i] = DeviceRecord(d.encode_state(), nxt)
        return out

    def restore(self, device_id: int, blob: bytes | None, first_seq: int | None) -> str:
        """A resumed host (``fltiny run --resume`` with boards that outlived the previous
        one): carry on with the device where the run store's last checkpoint left it. With
        ``blob`` (its ``device_states`` record; the board was re-attached: it said no new
        HELLO), the host restores what the device holds (version, exact parameters, round
        state, RESET flag, HELLO), its receiver's last seq, and a session whose sequence
        numbers start at ``first_seq`` (the store's lease: above any number the previous
        host sent). Without (a board that said HELLO again: it rebooted or never got an
        answer), only the lease applies: the device is new to the host as after any boot.
        Returns what was restored, for the log; ValueError for a record of another device
        or model."""
        d = self._devs[device_id]
        if first_seq is not None:
            d.seq_limit = first_seq + SEQ_LEASE
            if d.session is not None:
                d.session.seq_limit = d.seq_limit
        if blob is None:  # its HELLO is on the way: a session above the lease waits for it
            if first_seq is not None:
                d.new_session(first_seq)
            return "said HELLO again: resynced as after a boot"
        meta, arrays = decode_state(blob)
        if meta.get("device_id") != device_id:
            raise ValueError(f"the record is of device {meta.get('device_id')}")
        if any(a.shape != (self.n_params,) for a in arrays.values()):
            raise ValueError(f"the record's parameters are not the model's {self.n_params}")

        def f32(name: str) -> np.ndarray | None:
            a = arrays.get(name)
            return None if a is None else np.ascontiguousarray(a, dtype=np.float32).copy()

        params = f32("params")
        d.version, d.params = (meta["version"], params) if params is not None else (None, None)
        d.state = (DeviceState(f32("state_residual"), f32("state_drift"), f32("state_served"))
                   if "state_residual" in arrays else DeviceState.fresh(self.n_params))
        d.prev_state = (DeviceState(f32("prev_residual"), f32("prev_drift"), f32("prev_served"))
                        if "prev_residual" in arrays else None)
        d.needs_reset = bool(meta["needs_reset"])
        if meta.get("hello"):
            d.hello = m.Hello.decode(bytes.fromhex(meta["hello"]))
            d.hello_problem = self._hello_problem(d.hello)
        d.new_session(first_seq)
        d.session.receiver.resume_after(int(meta["device_seq"]))
        return (f"re-attached: holds version {d.version if d.version is not None else '?'}, "
                f"host seq from {d.session.sender.next_seq}, device seq above {meta['device_seq']}")

    # ---- one round -----------------------------------------------------------------------

    def run_round(self, round_: int, devices: Sequence[int], global_params: np.ndarray,
                  version: int, train: TrainParams, mu: float,
                  deadline_s: float) -> list[DeviceResult]:
        params = np.ascontiguousarray(global_params, dtype=np.float32)
        end = time.monotonic() + deadline_s
        chosen = [self._devs[i] for i in devices]
        if not chosen:
            return []
        if self.secagg is not None:  # the device's whole delta, masked: no error feedback
            train = replace(train, error_feedback=False)
        with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="fltiny-dev") as ex:
            futures = [ex.submit(self._device_round, d, round_, params, version, train, mu, end)
                       for d in chosen]
            results = [f.result() for f in futures]
        if self.secagg is not None:
            results = self._secure(round_, results, end)
        return results

    # ---- secure aggregation (fltiny.bridge.secagg) ----------------------------------------

    def secure_aggregate(self, round_: int):
        """The secure sum of ``round_`` (None: the round had none): the round loop applies
        its mean (fltiny.server.rounds)."""
        sa = self.secagg
        return sa.last if sa is not None and sa.last_round == round_ else None

    def _secure(self, rnd: int, results: list[DeviceResult], end: float) -> list[DeviceResult]:
        """The masked round over the devices whose DELTA was accepted; their results carry no
        update (the round loop aggregates the secure sum), their secagg frames count in their
        bytes."""
        assert self.secagg is not None
        logs = {lg.device_id: lg for lg in self.logs if lg.round == rnd}
        ok = [r.device_id for r in results if r.update is not None]
        start = {i: (self._devs[i].sent, self._devs[i].received) for i in ok}
        why = ""
        self.secagg.last, self.secagg.last_round = None, rnd
        if len(ok) < 2:
            why = "secure aggregation needs 2 or more devices"
        else:
            plain = {i: logs[i].plain_payload_bytes for i in ok if i in logs}
            try:
                self.secagg.round(rnd, ok, lambda i, k, b: self._ask(self._devs[i], k, b, end),
                                  plain)
            except FltinyError as exc:  # the round cannot be unmasked: no update, model unchanged
                why = f"secure aggregation failed: {exc}"
        ss = self.secagg.last
        out = []
        for r in results:
            if r.device_id not in start:
                out.append(r)
                continue
            d = self._devs[r.device_id]
            up = d.received - start[r.device_id][1]
            down = d.sent - start[r.device_id][0]
            lg = logs.get(r.device_id)
            fail = self.secagg.failures.get(r.device_id, "")
            if lg is not None:
                lg.wire_up += up
                lg.wire_down += down
                lg.secagg_wire_up, lg.secagg_wire_down = up, down
                lg.secagg_error = fail
                if ss is not None:
                    lg.masked_payload_bytes = int(ss.figures["masked_payload"].get(r.device_id, 0))
            if fail:
                self.log(f"round {rnd}: device {r.device_id}: left the masked round: {fail}")
            # what the DELTA said still travels with the row (the update itself does not)
            figures = {**r.figures, "secagg": True, "examples": r.update.num_examples,
                       "loss": r.update.loss,
                       "dropped_after_masked": bool(ss and r.device_id in ss.dropped_after)}
            out.append(replace(r, update=None, bytes_up=r.bytes_up + up,
                               bytes_down=r.bytes_down + down, error=r.error or why,
                               figures=figures))
        return out

    def _ask(self, d: _DeviceState, kind: m.SecaggKind, body: bytes, end: float) -> bytes:
        """Sends one SECAGG step to the device and returns the body of its reply."""
        assert d.session is not None
        want = REPLY[kind]
        self._send(d, m.Secagg(kind, body), end)
        while True:
            while d.session.inbox:
                msg = d.session.inbox.popleft()
                if isinstance(msg, m.Secagg) and msg.kind == want:
                    return msg.body
                if isinstance(msg, m.Error):
                    raise DeliveryError(f"device error {status_name(msg.code)}: {msg.text}")
                if isinstance(msg, m.Hello) and self._on_hello(d, msg):
                    raise DeliveryError("the device rebooted during the masked round")
            if time.monotonic() >= end:
                raise TimeoutError(f"no {want.name} before the round deadline")
            try:
                self._poll(d)
            except _Reset:
                self._handle_reset(d, end)
                raise DeliveryError("the device rebooted during the masked round") from None

    def _device_round(self, d: _DeviceState, rnd: int, params: np.ndarray, version: int,
                      train: TrainParams, mu: float, end: float) -> DeviceResult:
        t0 = time.monotonic()
        sent0, recv0 = d.sent, d.received
        rejected0 = collections.Counter(d.rejected)
        lg = RoundLog(rnd, d.ep.device_id, d.ep.board or (d.hello.name if d.hello else ""),
                      False, "")
        update = None
        try:
            update = self._exchange(d, rnd, params, version, train, mu, end, lg)
        except ProtocolError as exc:
            lg.reason = f"{type(exc).__name__}: {exc}"
        except TimeoutError as exc:
            lg.reason = str(exc)
        lg.wire_up, lg.wire_down = d.received - recv0, d.sent - sent0
        lg.rejected_frames = dict(d.rejected - rejected0)
        lg.seconds = time.monotonic() - t0
        if lg.rejected_frames:
            frames = ", ".join(f"{k} x{v}" for k, v in sorted(lg.rejected_frames.items()))
            self.log(f"round {rnd}: device {d.ep.device_id}: frames rejected: {frames}")
            if update is None and lg.reason and "frames rejected" not in lg.reason:
                lg.reason += f" (frames rejected: {frames})"
        lg.accepted_by_bridge = update is not None
        if update is not None or d.needs_reset:
            d.unconfirmed = []  # the device's state is known (or reset by the next TRAIN)
        elif d.in_flight is not None:
            d.unconfirmed = [*d.unconfirmed, d.in_flight][-MAX_UNCONFIRMED:]
        d.in_flight = None
        if update is None:
            self.log(f"round {rnd}: device {d.ep.device_id}: no update: {lg.reason}")
        self.logs.append(lg)
        return DeviceResult(d.ep.device_id, update, lg.wire_up, lg.wire_down,
                            "" if update is not None else lg.reason,
                            personal_n=lg.personal_n if update is not None else 0,
                            personal_metric=lg.personal_metric if update is not None else None,
                            releases=lg.trains_sent)

    # ---- protocol steps ------------------------------------------------------------------

    def _poll(self, d: _DeviceState) -> None:
        """One session step; handles broken links (reconnect) and reboots (raise _Reset)."""
        assert d.session is not None
        try:
            d.session.poll()
        except ConnectionError:
            d.broken = True
        if d.broken:
            self._reconnect(d)
        if d.reset_seen:
            raise _Reset()
        while d.session.inbox:
            msg = d.session.inbox[0]
            if isinstance(msg, m.Hello):
                d.session.inbox.popleft()
                self._on_hello(d, msg)
                continue
            break

    def _reconnect(self, d: _DeviceState) -> None:
        end = time.monotonic() + self.reconnect_wait
        while True:
            d.drop_link()
            try:
                d.connect(timeout=2.0)
                d.reconnects += 1
                self.log(f"device {d.ep.device_id}: link reopened")
                return
            except ConnectionError as exc:
                if time.monotonic() >= end:
                    raise DeliveryError(f"link lost and not reopened within "
                                        f"{self.reconnect_wait:g} s: {exc}") from None
                time.sleep(0.2)

    def _hello_problem(self, h: m.Hello) -> str:
        if h.model_hash != self.model_hash:
            return (f"runs another model (hash {h.model_hash.hex()}, expected "
                    f"{self.model_hash.hex()}): rebuild and flash its firmware")
        if h.head_params != self.n_params:
            return f"head has {h.head_params} parameters, the model {self.n_params}"
        return ""

    def _on_hello(self, d: _DeviceState, h: m.Hello) -> bool:
        """Takes a HELLO; True when the device starts over with this host (a boot, or a
        running board this host meets for the first time), False for a re-announce of a
        board it already drives (it refused a late frame as a replay: nothing changed)."""
        if d.session is not None and h.host_seq >= d.session.sender.next_seq:
            # its receiver accepted host numbers up to host_seq (an earlier host's): go on above
            d.session.sender.skip_to(h.host_seq + 1)
        if h.host_seq > 0 and d.hello is not None:
            return False
        problem = self._hello_problem(h)
        d.hello, d.hello_problem = h, problem
        # every boot starts enabled (the switch is not persisted); a running board met for the
        # first time may have been disabled by an earlier host: unknown, so it is told again
        d.training_on_device = True if h.host_seq == 0 else None
        if problem:
            self.log(f"device {d.ep.device_id}: HELLO refused: {problem}")
        # what it holds: version 0 means factory state (or unknown); force a FULL GLOBAL
        d.version, d.params = None, None
        if h.model_version == 0:
            d.state, d.prev_state = DeviceState.fresh(self.n_params), None
        if h.host_seq > 0:
            # a board that trained for an earlier host: its round state (residual, drift,
            # served model) is not one this host knows, so its first TRAIN resets it
            d.state, d.prev_state = DeviceState.fresh(self.n_params), None
            d.needs_reset = True
        return True

    def _handle_reset(self, d: _DeviceState, end: float) -> None:
        d.resets += 1
        self.log(f"device {d.ep.device_id}: rebooted (fresh HELLO): new session, full resync")
        d.new_session()
        d.hello = d.hello or None
        d.version, d.params = None, None
        # a boot keeps only the checkpoint (parameters, residual): the host cannot know whether
        # the board had storage, so the next replay tries a fresh state and the checkpointed one
        d.state, d.prev_state = DeviceState.fresh(self.n_params), None
        d.in_flight, d.unconfirmed = None, []

    def _send(self, d: _DeviceState, msg: m.Message, end: float) -> None:
        assert d.session is not None
        ticket = d.session.submit(msg)
        while d.session.pending(ticket):
            if time.monotonic() >= end:
                raise TimeoutError(f"round deadline passed while sending {type(msg).__name__}")
            self._poll(d)

    def _global_message(self, d: _DeviceState, params: np.ndarray, version: int
                        ) -> tuple[m.Global | None, np.ndarray, str]:
        """(message or None, the parameters the device will hold, kind): server.downlink's
        rule, the simulator's too."""
        held = (Held(d.version, d.params) if d.version is not None and d.params is not None
                else None)
        can_delta = (self.global_delta and d.hello is not None
                     and bool(d.hello.capabilities & m.CAP_GLOBAL_DELTA))
        msg, now = global_message(params, version, held, topk=self.down_topk,
                                  bits=self.down_bits, can_delta=can_delta)
        kind = "none" if msg is None else ("full" if msg.kind == m.GlobalKind.FULL else "delta")
        return msg, now.params, kind

    def _exchange(self, d: _DeviceState, rnd: int, params: np.ndarray, version: int,
                  train: TrainParams, mu: float, end: float, lg: RoundLog) -> ClientUpdate | None:
        if d.link is None or d.broken:
            self._reconnect(d)
        if d.session is None:
            d.new_session()
        while d.hello is None:  # a device that connected but has not said HELLO (yet)
            if time.monotonic() >= end:
                raise TimeoutError("no authenticated HELLO before the deadline"
                                   + (" (wrong key?)" if d.rejected.get("FLT_ERR_AUTH") else ""))
            try:
                self._poll(d)
            except _Reset:
                self._handle_reset(d, end)
        if d.hello_problem:
            lg.reason = f"HELLO refused: {d.hello_problem}"
            return None
        tmsg = train.message(rnd, device_seed(train.seed, rnd, d.ep.device_id), mu)
        if self.secagg is not None:  # keep the delta for MASKED; the DELTA carries no update
            if d.hello is not None and not d.hello.capabilities & m.CAP_SECAGG:
                lg.reason = ("its firmware has no secure aggregation (FLT_APP_SECAGG 0: too "
                             "little RAM); run without --secagg or use other boards")
                return None
            tmsg = replace(tmsg, flags=tmsg.flags | m.TRAIN_SECAGG)
        if d.needs_reset:
            tmsg = replace(tmsg, flags=tmsg.flags | m.TRAIN_RESET)
        attempts = 0
        while True:
            attempts += 1
            if attempts > MAX_ATTEMPTS:
                lg.reason = (f"gave up after {MAX_ATTEMPTS} attempts (resets or refused "
                             "GLOBALs)")
                return None
            try:
                gmsg, held, kind = self._global_message(d, params, version)
                lg.global_kind = kind
                if gmsg is not None:
                    d.version, d.params = None, None  # unknown until acknowledged
                    # a GLOBAL of a few chunks goes out as a burst (done once sent): the answer
                    # to the TRAIN confirms it, a NACK of the TRAIN says a frame of it was lost
                    # (docs/protocol.md "Answered messages"; the NackError below resyncs)
                    self._send(d, gmsg, end)
                    d.version, d.params = version, held
                lg.model_version, lg.model_sha256 = version, params_sha256(held)
                lg.trains_sent += 1  # counted before the send: a local-DP release may follow
                # no ACK: the TRAIN is confirmed by its answer (the DELTA or an ERROR), which
                # _await_delta polls for while the session probes a TRAIN that went unanswered
                # a probe only when the answer is later than this device's rounds take (twice
                # its longest so far; before its first DELTA, a quarter of the time left): a
                # probe the device reads only after training costs a duplicate ACK up
                wait = (2.0 * d.answer_s + self._timeout if d.answer_s > 0
                        else (end - time.monotonic()) / 4)
                d.session.set_answer_timeout(max(8 * self._timeout, 2.0, wait))
                t_train = time.monotonic()
                d.session.submit(tmsg)
                d.in_flight = _UnconfirmedRound(held, tmsg)  # it may have reached the device
                delta = self._await_delta(d, rnd, end)
                if isinstance(delta, m.Delta):
                    d.answer_s = max(d.answer_s, time.monotonic() - t_train)
            except _Reset:
                self._handle_reset(d, end)
                continue
            except NackError as exc:
                d.version, d.params = None, None
                self.log(f"round {rnd}: device {d.ep.device_id}: message refused "
                         f"({status_name(exc.code)}); resync")
                continue
            if isinstance(delta, m.Error) and "training disabled" in delta.text:
                d.training_on_device = False
                lg.reason = f"device error: {delta.text}"
                return None
            if isinstance(delta, m.Error) and delta.text.startswith("self-check failed"):
                self._self_check_failed(d, rnd, held, tmsg, delta, lg)
                return None
            if isinstance(delta, m.Error):
                self.log(f"round {rnd}: device {d.ep.device_id}: ERROR {delta.code} "
                         f"{delta.text!r}; sending a FULL GLOBAL")
                if status_name(delta.code) == "FLT_ERR_DUPLICATE":  # round already delivered
                    lg.reason = f"device error: {delta.text}"
                    return None
                d.version, d.params = None, None
                continue
            return self._verify(d, rnd, delta, tmsg, lg)

    def _await_delta(self, d: _DeviceState, rnd: int, end: float) -> m.Delta | m.Error:
        assert d.session is not None
        while True:
            while d.session.inbox:
                msg = d.session.inbox.popleft()
                if isinstance(msg, m.Delta):
                    if msg.round == rnd:
                        return msg
                    self.log(f"device {d.ep.device_id}: stale DELTA of round {msg.round} ignored")
                elif isinstance(msg, m.Error):
                    return msg
                elif isinstance(msg, m.Hello):
                    if self._on_hello(d, msg):
                        raise _Reset()
            if time.monotonic() >= end:
                raise TimeoutError("no DELTA before the round deadline")
            self._poll(d)

    # ---- verification --------------------------------------------------------------------

    def _verify(self, d: _DeviceState, rnd: int, delta: m.Delta, tmsg: m.Train,
                lg: RoundLog) -> ClientUpdate | None:
        masked = bool(tmsg.flags & m.TRAIN_SECAGG)
        if masked != (not delta.body):
            lg.reason = ("a DELTA with an update in a masked round" if masked else
                         "a DELTA without an update outside a masked round")
            return None
        lg.masked = masked
        lg.payload_bytes = len(delta.body)
        lg.delta_message_bytes = len(delta.encode())
        full = max_chunk()  # the device sends full chunks
        lg.delta_wire_bytes = sum(
            wire_size(min(full, lg.delta_message_bytes - i * full))
            for i in range(chunk_count(lg.delta_message_bytes)))
        if delta.base_version != d.version or d.params is None:
            lg.reason = (f"DELTA computed against version {delta.base_version}, the device was "
                         f"sent version {d.version}")
            if delta.base_version == 0 and d.in_flight is not None:
                # it trained its factory head (a reboot the host did not see, or a GLOBAL it
                # could not apply: firmware/app/flt_device.h), and commits that round when
                # the link acknowledges this DELTA: what the next replay must start from
                d.in_flight = replace(d.in_flight, params=self.factory_params)
                d.version, d.params = None, None  # it holds version 0: the next GLOBAL is FULL
            return None
        if delta.examples > d.ep.max_windows:
            lg.reason = (f"example count {delta.examples} above the {d.ep.max_windows} windows "
                         f"its board trains on")
            return None
        if not (delta.personal_n == 0 or 0.0 <= delta.personal_metric <= self.personal_max):
            lg.reason = (f"personal metric {delta.personal_metric:.6g} out of range "
                         f"[0, {self.personal_max:g}]")
            return None
        with self._replay_lock:
            try:  # a masked round's values arrive masked, summed with the others' (secagg)
                sq_norm = 0.0 if masked else measure_payload(self._meter, delta.body)
            except PayloadError as exc:
                lg.reason = f"payload rejected: {exc.status}"
                return None
            if d.ep.blob is None:  # the data stays on the device: nothing to replay
                out = None
            else:
                out = self._replay(d, delta, tmsg)
                self.replays += 1
                lg.replayed = True
        if lg.replayed and out is None:
            self.replay_mismatches += 1
            lg.reason = "replay mismatch: the DELTA differs from the host's replay of the round"
            # the device commits a state the host cannot know when our ACK arrives: its next
            # TRAIN tells it to start from a fresh state (TRAIN RESET), which the replay knows
            d.needs_reset = True
            return None
        if out is not None:
            # the device commits out.state when our ACK arrives (or keeps `held` if it never does)
            run, held = out
            d.prev_state, d.state = held, run.state
            d.needs_reset = False
            lg.replay_match = True
            lg.plain_payload_bytes = len(run.payload)
        lg.verification = "replay" if lg.replay_match else "checks"
        if lg.replay_match and tmsg.flags & (m.TRAIN_LOCAL_DP | m.TRAIN_SECAGG):
            # local DP: the payload's noise is the device's; secagg: the values went masked
            lg.verification = "replay-metadata"
        lg.personal_n, lg.personal_metric = int(delta.personal_n), float(delta.personal_metric)
        return ClientUpdate(d.ep.device_id, None, int(delta.examples), float(delta.loss),
                            payload=bytes(delta.body), n_params=self.n_params, sq_norm=sq_norm)

    def _self_check_failed(self, d: _DeviceState, rnd: int, held: np.ndarray, tmsg: m.Train,
                           err: m.Error, lg: RoundLog) -> None:
        """The device reverted to its factory head (version 0) after its self-check of the
        GLOBAL: recorded with the round (no update), a FULL GLOBAL next round (resync); where
        the host holds its data, the verdict is recomputed by the same C."""
        d.version, d.params = None, None
        lg.self_check = "reported"
        why = ""
        if d.ep.blob is not None:
            with self._replay_lock:
                sc = self.hr.self_check(held, d.ep.blob, tmsg, max_windows=d.ep.max_windows)
            same = sc.failed and sc.text() in err.text
            lg.self_check = "replayed" if same else "mismatch"
            why = (" (the host's self-check gives the same verdict)" if same else
                   f" (REPLAY MISMATCH: the host's self-check gives {sc.text()}, failed "
                   f"{sc.failed})")
        lg.reason = f"device error: {err.text}{why}"
        self.log(f"round {rnd}: device {d.ep.device_id}: {err.text}{why}; a FULL GLOBAL next "
                 "round")

    def _replay(self, d: _DeviceState, delta: m.Delta, tmsg: m.Train):
        """(the host's run, the state it started from) when the device's round replays bit for
        bit from its current or its previous state (a lost ACK), from a fresh one (a reboot
        whose HELLO the host never saw, e.g. lost on a faulty link: a board without storage
        restarts from zeros) or from what its unconfirmed rounds left (DELTAs the link
        acknowledged after the host's deadline: any of them, in order), else None."""
        assert d.ep.blob is not None and d.params is not None
        candidates = [(d.state, "")]
        if d.prev_state is not None:
            candidates.append((d.prev_state, "had kept its previous state (the ACK of its last "
                                             "DELTA was lost)"))
        candidates.append((DeviceState.fresh(self.n_params), "had restarted from a fresh state "
                                                              "(a reboot the host did not see)"))
        for i, (state, why) in enumerate(candidates):
            run = self._host_run(d.params, d.ep.blob, tmsg, state, max_windows=d.ep.max_windows)
            if self._same_round(run, delta, tmsg):
                if why and i > 0:
                    self.log(f"device {d.ep.device_id}: {why}")
                return run, state
        chain = [u for u in d.unconfirmed if u.train.round != tmsg.round]
        # each unconfirmed round may or may not have been committed, in order, from the state
        # the host knew or from a fresh one (a reboot it did not see)
        for start in (d.state, DeviceState.fresh(self.n_params)):
            for mask in range(1, 1 << len(chain)):
                state, committed = start, []
                for i, u in enumerate(chain):
                    if mask >> i & 1:
                        state = self._host_run(u.params, d.ep.blob, u.train, state,
                                            max_windows=d.ep.max_windows).state
                        committed.append(u.train.round)
                run = self._host_run(d.params, d.ep.blob, tmsg, state, max_windows=d.ep.max_windows)
                if self._same_round(run, delta, tmsg):
                    rounds = ", ".join(map(str, committed))
                    self.log(f"device {d.ep.device_id}: had committed round(s) {rounds}, whose "
                             "DELTA the link acknowledged but the host did not accept")
                    return run, state
        return None

    def _host_run(self, params: np.ndarray, blob, train: m.Train, state: DeviceState,
                  max_windows: int):
        """The host's run of a device round. A local-DP round (TRAIN LOCAL_DP) is noised with
        the device's secret, which the host does not hold: it runs with a key of its own, so
        only what comes before the noise (examples, loss, personal metric, the served model)
        can agree with the device's."""
        key = os.urandom(32) if train.flags & m.TRAIN_LOCAL_DP else None
        return self.hr.run(params, blob, train, state, max_windows=max_windows, ldp_key=key)

    @staticmethod
    def _same_round(run, delta: m.Delta, train: m.Train) -> bool:
        # local DP: its payload cannot replay; secagg: the DELTA has no body (the update went
        # masked, _verify checked that); the rest must agree
        noised = bool(train.flags & (m.TRAIN_LOCAL_DP | m.TRAIN_SECAGG))
        return ((noised or run.payload == delta.body) and run.examples == delta.examples
                and f32_bits(run.mean_loss) == f32_bits(delta.loss)
                and run.personal_n == delta.personal_n
                and f32_bits(run.personal_metric) == f32_bits(delta.personal_metric))
