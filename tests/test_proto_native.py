"""A direct C harness of firmware/runtime/proto (used by the other test_proto_* modules) and the
shared-vector tests: the C and the Python oracle (tests/oracles) produce byte-identical frames
for every message type and each side decodes the other's frames."""

from __future__ import annotations

import ctypes as C
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from oracles import messages as m
from oracles import protocol as p
from oracles.receiver import Receiver, acked

from fltiny.native import lib as L
from fltiny.native.build import build_shared_library

VECTORS = Path(__file__).parent / "vectors" / "proto" / "frames.json"
u8p = C.POINTER(C.c_uint8)
sz = C.c_size_t


# the binding's mirrors of the C structs (checked against the compiler when it loads)
HeaderC, AckC, EventC, RxC, TxC, OutgoingC = L.Header, L.Ack, L.RxEvent, L.Rx, L.Tx, L.Outgoing
HelloC, GlobalC, TrainC, DeltaC, TextC = L.HelloMsg, L.GlobalMsg, L.TrainMsg, L.DeltaMsg, L.TextMsg
DisableC = L.DisableMsg


@cache
def lib() -> C.CDLL:
    so = C.CDLL(str(build_shared_library(["proto"], name="fltproto")))
    so.flt_proto_tx_chunk.argtypes = [C.POINTER(TxC), C.POINTER(OutgoingC), C.c_void_p,
                                      C.c_uint16, C.c_void_p, sz, C.POINTER(sz)]
    so.flt_crc32_update.restype = C.c_uint32
    so.flt_crc32_update.argtypes = [C.c_uint32, C.c_char_p, sz]
    so.flt_sha256.argtypes = [C.c_char_p, sz, C.c_char_p]
    so.flt_hmac_sha256.argtypes = [C.c_char_p, sz, C.c_char_p, sz, C.c_char_p]
    so.flt_msg_global_param.restype = C.c_float
    return so


def status_name(code: int) -> str:
    return p.status_name(code)


def _buf(data: bytes):
    """A ctypes buffer holding exactly data (keep a reference while C uses it)."""
    return (C.c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\0")


# ---- message payloads through C -------------------------------------------------------


def c_encode_message(msg: m.Message) -> tuple[str, bytes]:
    """(status, payload) of the C encoder for a Python message."""
    so = lib()
    out = (C.c_uint8 * 70000)()
    n = sz(0)
    keep = []
    if isinstance(msg, m.Hello):
        s = HelloC(msg.name.encode(), msg.capabilities, msg.firmware_version,
                   (C.c_uint8 * 8)(*msg.model_hash), msg.model_version, msg.head_params,
                   msg.free_ram, msg.host_seq)
        st = so.flt_msg_hello_encode(C.byref(s), out, sz(len(out)), C.byref(n))
    elif isinstance(msg, (m.Global, m.Delta)):
        body = _buf(msg.body)
        keep.append(body)
        if isinstance(msg, m.Global):
            s = GlobalC(msg.model_version, msg.base_version, msg.kind,
                        C.cast(body, C.c_void_p), len(msg.body))
            st = so.flt_msg_global_encode(C.byref(s), out, sz(len(out)), C.byref(n))
        else:
            s = DeltaC(msg.round, msg.base_version, msg.examples, msg.loss, msg.personal_n,
                       msg.personal_metric, C.cast(body, C.c_void_p), len(msg.body))
            st = so.flt_msg_delta_encode(C.byref(s), out, sz(len(out)), C.byref(n))
    elif isinstance(msg, m.Train):
        s = TrainC(msg.round, msg.epochs, msg.topk_kind, msg.batch_size, msg.learning_rate,
                   msg.momentum, msg.prox_mu, msg.clip, msg.topk_count or 0,
                   msg.topk_fraction or 0.0, msg.seed, msg.flags)
        st = so.flt_msg_train_encode(C.byref(s), out, sz(len(out)), C.byref(n))
    elif isinstance(msg, (m.Ack, m.Nack)):
        s = AckC(msg.acked_seq, msg.code)
        st = so.flt_msg_ack_encode(C.c_uint8(msg.TYPE), C.byref(s), out, sz(len(out)),
                                   C.byref(n))
    elif isinstance(msg, m.Disable):
        s = DisableC(1 if msg.disabled else 0)
        st = so.flt_msg_disable_encode(C.byref(s), out, sz(len(out)), C.byref(n))
    elif isinstance(msg, m.Secagg):  # no struct: kind + body, checked by the link's rule
        raw = bytes([msg.kind]) + msg.body
        st = so.flt_msg_check(C.c_uint8(msg.TYPE), raw, sz(len(raw)))
        out[: len(raw)] = raw
        n.value = len(raw)
    else:
        raw = msg.text.encode()
        body = _buf(raw)
        s = TextC(getattr(msg, "code", 0), C.cast(body, C.c_void_p), len(raw))
        st = so.flt_msg_text_encode(C.c_uint8(msg.TYPE), C.byref(s), out, sz(len(out)),
                                    C.byref(n))
    return status_name(st), bytes(out[: n.value]) if st == 0 else b""


def c_decode_message(msg_type: int, payload: bytes) -> tuple[str, m.Message | None]:
    """(status, message) of the C decoder, converted back to the Python dataclass."""
    so = lib()
    buf = _buf(payload)
    n = sz(len(payload))
    if msg_type == m.MsgType.HELLO:
        s = HelloC()
        st = so.flt_msg_hello_decode(buf, n, C.byref(s))
        make = lambda: m.Hello(s.name.decode(), s.capabilities, s.firmware_version,  # noqa: E731
                               bytes(s.model_hash), s.model_version, s.head_params, s.free_ram,
                               s.host_seq)
    elif msg_type == m.MsgType.GLOBAL:
        s = GlobalC()
        st = so.flt_msg_global_decode(buf, n, C.byref(s))
        make = lambda: m.Global(s.model_version, s.base_version, s.kind,  # noqa: E731
                                C.string_at(s.body, s.body_len))
    elif msg_type == m.MsgType.DELTA:
        s = DeltaC()
        st = so.flt_msg_delta_decode(buf, n, C.byref(s))
        make = lambda: m.Delta(s.round, s.base_version, s.examples, s.loss,  # noqa: E731
                               C.string_at(s.body, s.body_len), s.personal_n, s.personal_metric)
    elif msg_type == m.MsgType.TRAIN:
        s = TrainC()
        st = so.flt_msg_train_decode(buf, n, C.byref(s))

        def make():
            count = s.topk_count if s.topk_kind == 0 else None
            frac = s.topk_fraction if s.topk_kind == 1 else None
            return m.Train(s.round, s.epochs, s.batch_size, s.learning_rate, s.momentum,
                           s.prox_mu, s.clip, count, frac, s.seed, s.flags)
    elif msg_type in (m.MsgType.ACK, m.MsgType.NACK):
        s = AckC()
        st = so.flt_msg_ack_decode(C.c_uint8(msg_type), buf, n, C.byref(s))
        cls = m.Ack if msg_type == m.MsgType.ACK else m.Nack
        make = lambda: cls(s.acked_seq, s.code)  # noqa: E731
    elif msg_type == m.MsgType.DISABLE:
        s = DisableC()
        st = so.flt_msg_disable_decode(buf, n, C.byref(s))
        make = lambda: m.Disable(bool(s.disabled))  # noqa: E731
    elif msg_type == m.MsgType.SECAGG:  # the kind byte is checked; the body is secagg/msg.h's
        st = so.flt_msg_secagg_check(buf, n)
        make = lambda: m.Secagg(payload[0], bytes(payload[1:]))  # noqa: E731
    elif msg_type in (m.MsgType.STATUS, m.MsgType.LOG, m.MsgType.ERROR):
        s = TextC()
        st = so.flt_msg_text_decode(C.c_uint8(msg_type), buf, n, C.byref(s))

        def make():
            text = C.string_at(s.text, s.text_len).decode() if s.text_len else ""
            if msg_type == m.MsgType.ERROR:
                return m.Error(s.code, text)
            return (m.Status if msg_type == m.MsgType.STATUS else m.Log)(text)
    else:
        return status_name(so.flt_msg_check(C.c_uint8(msg_type), buf, n)), None
    return status_name(st), (make() if st == 0 else None)


# ---- C receiver and sender -----------------------------------------------------------


@dataclass
class CEvent:
    status: str
    kind: int
    header: HeaderC
    payload: bytes
    ack: tuple[int, int]
    reply: tuple[int, int, int]  # (type, code, seq)


class CRx:
    """flt_proto_rx_t with ctypes-owned buffers."""

    def __init__(self, key: bytes, device_id: int, *, on_host: bool, frame_cap: int | None = None,
                 msg_cap: int = 65536) -> None:
        frame_cap = L.const("FLT_PROTO_MAX_FRAME") if frame_cap is None else frame_cap
        self.so = lib()
        self.key = _buf(key)
        self.frame = (C.c_uint8 * frame_cap)()
        self.msg = (C.c_uint8 * max(1, msg_cap))()
        self.rx = RxC()
        st = self.so.flt_proto_rx_init(C.byref(self.rx), self.key, C.c_uint32(device_id),
                                       C.c_int(int(on_host)), self.frame, sz(frame_cap),
                                       self.msg, sz(msg_cap))
        assert st == 0

    def feed(self, data: bytes) -> list[CEvent]:
        evs = []
        ev = EventC()
        feed = self.so.flt_proto_rx_feed
        rx = C.byref(self.rx)
        evp = C.byref(ev)
        for b in data:
            st = feed(rx, C.c_uint8(b), evp)
            if ev.event != 0 or st != 0:
                payload = bytes(self.msg[: ev.msg_len]) if ev.event == 2 else b""
                h = HeaderC.from_buffer_copy(ev.header)
                evs.append(CEvent(status_name(st), ev.event, h, payload,
                                  (ev.ack.acked_seq, ev.ack.code),
                                  (ev.reply, ev.reply_code, ev.reply_seq)))
        return evs


class CTx:
    def __init__(self, key: bytes, device_id: int, *, on_host: bool, first_seq: int = 1):
        self.so = lib()
        self.key = _buf(key)
        self.tx = TxC()
        assert self.so.flt_proto_tx_init(C.byref(self.tx), self.key, C.c_uint32(device_id),
                                         C.c_int(int(on_host)), C.c_uint32(first_seq)) == 0

    def frames(self, msg_type: int, payload: bytes) -> list[bytes]:
        o = OutgoingC()
        st = self.so.flt_proto_tx_begin(C.byref(self.tx), C.c_uint8(msg_type), sz(len(payload)),
                                        C.byref(o))
        assert st == 0, status_name(st)
        buf = _buf(payload)
        out = (C.c_uint8 * 400)()
        n = sz(0)
        frames = []
        for i in range(o.chunk_count):
            st = self.so.flt_proto_tx_chunk(C.byref(self.tx), C.byref(o), buf, C.c_uint16(i),
                                            out, sz(len(out)), C.byref(n))
            assert st == 0, status_name(st)
            frames.append(bytes(out[: n.value]))
        return frames

    def reply(self, ev: CEvent | tuple[int, int, int]) -> bytes:
        r = ev.reply if isinstance(ev, CEvent) else ev
        e = EventC()
        e.reply, e.reply_code, e.reply_seq = r
        out = (C.c_uint8 * 64)()
        n = sz(0)
        st = self.so.flt_proto_tx_reply(C.byref(self.tx), C.byref(e), out, sz(64), C.byref(n))
        assert st == 0, status_name(st)
        return bytes(out[: n.value])


# ---- vectors --------------------------------------------------------------------------


def load_vectors() -> list[dict]:
    return json.loads(VECTORS.read_text())["cases"]


def vector_message(case: dict) -> m.Message:
    return m.decode_message(case["type"], bytes.fromhex(case["payload_hex"]))


CASES = load_vectors()
IDS = [c["name"] for c in CASES]


def test_vectors_cover_every_message_type():
    assert {c["type"] for c in CASES} == set(m.MsgType)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_python_reproduces_vector(case):
    msg = vector_message(case)
    fields = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in vars(msg).items()}
    assert fields == case["fields"]
    assert msg.encode().hex() == case["payload_hex"]
    key = bytes.fromhex(case["key_hex"])
    if case["first_seq"] == 0:
        return  # control frame: checked by the C reply path below
    payload = msg.encode()
    count = p.chunk_count(len(payload))
    frames = []
    for i in range(count):
        part = payload[i * p.MAX_CHUNK : (i + 1) * p.MAX_CHUNK]
        h = p.Header(type=msg.TYPE, device_id=case["device_id"], seq=case["first_seq"] + i,
                     chunk_index=i, chunk_count=count, payload_len=len(part),
                     flags=p.FLAG_FROM_HOST if case["on_host"] else 0)
        frames.append(p.encode_frame(h, part, key))
    assert [f.hex() for f in frames] == case["frames_hex"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_binding_session_sends_vector_frames(case):
    """The host's Session (the C receiver, sender and outbox through fltiny.native) sends
    exactly the vector's frames, and its message values encode to the vector's payload."""
    from fltiny.bridge import messages as bm
    from fltiny.bridge.session import Session

    msg = bm.decode_message(case["type"], bytes.fromhex(case["payload_hex"]))
    assert msg.encode().hex() == case["payload_hex"]
    if case["first_seq"] == 0:
        return
    sent: list[bytes] = []
    s = Session(key=bytes.fromhex(case["key_hex"]), device_id=case["device_id"],
                send=sent.append, receive=lambda: b"", on_host=case["on_host"],
                first_seq=case["first_seq"], clock=lambda: 0.0)
    s.submit(msg)
    s.poll()
    assert [f.hex() for f in sent] == case["frames_hex"][:1]  # stop-and-wait: chunk 0 first


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_c_produces_identical_bytes(case):
    msg = vector_message(case)
    status, payload = c_encode_message(msg)
    assert status == "FLT_OK"
    assert payload.hex() == case["payload_hex"]
    key = bytes.fromhex(case["key_hex"])
    tx = CTx(key, case["device_id"], on_host=case["on_host"], first_seq=max(1, case["first_seq"]))
    if case["first_seq"] == 0:
        frames = [tx.reply((msg.TYPE, msg.code, msg.acked_seq))]
    else:
        frames = tx.frames(case["type"], payload)
    assert [f.hex() for f in frames] == case["frames_hex"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_c_decodes_python_frames_and_back(case):
    key = bytes.fromhex(case["key_hex"])
    wire = b"".join(bytes.fromhex(f) for f in case["frames_hex"])
    msg = vector_message(case)
    # C receiver on the other end of the link
    rx = CRx(key, case["device_id"], on_host=not case["on_host"])
    # it accepted the sender's frames before these (a TRAIN follows the host's previous frame)
    assert rx.so.flt_proto_rx_resume_after(C.byref(rx.rx), max(0, case["first_seq"] - 1)) == 0
    evs = rx.feed(wire)
    assert all(e.status == "FLT_OK" for e in evs), [e.status for e in evs]
    if case["first_seq"] == 0:
        assert [(e.kind, e.ack) for e in evs] == [(3, (msg.acked_seq, msg.code))]
    else:
        assert [e.kind for e in evs] == [1] * (len(evs) - 1) + [2]
        assert evs[-1].payload.hex() == case["payload_hex"]
        # an ACK per frame, but none for the messages the device's answer confirms
        flags = 1 if case["on_host"] else 0
        want = (lambda e: (m.MsgType.ACK, 0, e.header.seq)) if acked(
            case["type"], len(evs), flags) else (lambda e: (0, 0, 0))
        assert all(e.reply == want(e) for e in evs)
        status, back = c_decode_message(case["type"], evs[-1].payload)
        assert status == "FLT_OK" and back == msg
    # Python receiver decodes the frames C produced (identical, so also Python's own)
    py = Receiver(key, case["device_id"], on_host=not case["on_host"])
    py.last_seq = max(0, case["first_seq"] - 1)
    pev = py.feed(wire)
    assert all(e.error is None for e in pev)
    assert pev[-1].message == msg


def test_c_global_param_reads_float32():
    case = next(c for c in CASES if c["name"] == "global_full")
    payload = bytes.fromhex(case["payload_hex"])
    buf = _buf(payload)
    g = GlobalC()
    assert lib().flt_msg_global_decode(buf, sz(len(payload)), C.byref(g)) == 0
    want = vector_message(case).params
    got = np.array([lib().flt_msg_global_param(C.byref(g), sz(i)) for i in range(want.size)],
                   np.float32)
    assert np.array_equal(got, want)


# DISABLE payloads: the C decoder, flt_msg_check, the binding and the oracle give one status
BAD_DISABLE = {
    "empty": (b"", "FLT_ERR_TRUNCATED"),
    "short": (b"\x01\x00\x00", "FLT_ERR_TRUNCATED"),
    "long": (b"\x01\x00\x00\x00\x00", "FLT_ERR_FORMAT"),
    "disabled_2": (b"\x02\x00\x00\x00", "FLT_ERR_RANGE"),
    "disabled_2_and_reserved": (b"\x02\x00\x01\x00", "FLT_ERR_RANGE"),  # wire order
    "reserved_set": (b"\x01\x00\x00\x80", "FLT_ERR_FORMAT"),
    "enable_reserved_set": (b"\x00\x01\x00\x00", "FLT_ERR_FORMAT"),
}


@pytest.mark.parametrize("name", sorted(BAD_DISABLE))
def test_disable_invalid_payload_rejected_alike(name):
    from fltiny.native import messages as nm
    from fltiny.native.errors import ProtocolError

    payload, status = BAD_DISABLE[name]
    assert c_decode_message(m.MsgType.DISABLE, payload)[0] == status
    assert status_name(lib().flt_msg_check(C.c_uint8(m.MsgType.DISABLE), _buf(payload),
                                           sz(len(payload)))) == status
    with pytest.raises(ProtocolError) as exc:
        nm.Disable.decode(payload)
    assert exc.value.status == status
    with pytest.raises(p.ProtocolError) as oexc:
        m.Disable.decode(payload)
    assert oexc.value.status == status


def test_disable_and_enable_round_trip():
    from fltiny.native import messages as nm

    for disabled in (True, False):
        raw = nm.Disable(disabled).encode()
        assert raw == m.Disable(disabled).encode() == bytes([int(disabled), 0, 0, 0])
        assert nm.decode_message(nm.MsgType.DISABLE, raw) == nm.Disable(disabled)
