"""The runtime's protocol, delta and crypto components as one host shared library, loaded once.

Why ctypes (not cffi): the runtime's API is a few dozen plain C functions over fixed-width
structs, ctypes is in the standard library (no build step at install time, nothing to vendor),
and the struct mirrors below are checked against the compiler at load time (fltiny/native/abi),
which removes the one thing cffi's header parsing would add. The calls on the hot paths take
whole buffers (a frame, a read of bytes, a payload), so the per-call cost of ctypes is paid per
frame, not per byte.

``rt()`` builds (cached, fltiny.native.build) and loads ``libfltrt`` from the ``proto``,
``delta``, ``crypto`` and ``secagg`` components plus the generated ABI table, declares every prototype,
checks every mirror and returns the library; ``const(name)`` is a C macro's value from that table.
"""

from __future__ import annotations

import ctypes as C
from functools import cache

from fltiny.native import abi
from fltiny.native.build import build_shared_library

sz = C.c_size_t
vp = C.c_void_p
u8, u16, u32, i32 = C.c_uint8, C.c_uint16, C.c_uint32, C.c_int32


# ---- mirrors of the C structs (checked at load) ------------------------------------------


class Header(C.Structure):
    _fields_ = [("version", u8), ("type", u8), ("flags", u8), ("device_id", u32), ("seq", u32),
                ("chunk_index", u16), ("chunk_count", u16), ("payload_len", u16)]


class Ack(C.Structure):
    _fields_ = [("acked_seq", u32), ("code", u8)]


class RxEvent(C.Structure):
    _fields_ = [("event", u8), ("header", Header), ("msg_len", sz), ("ack", Ack),
                ("reply", u8), ("reply_code", u8), ("reply_seq", u32)]


class Rx(C.Structure):
    _fields_ = [("key", vp), ("device_id", u32), ("expect_flags", u8), ("frame", vp),
                ("frame_cap", sz), ("msg", vp), ("msg_cap", sz), ("frame_len", sz),
                ("cobs_remaining", u8), ("cobs_code", u8), ("overflow", u8), ("nonempty", u8),
                ("last_seq", u32), ("asm_active", u8), ("asm_type", u8), ("asm_next", u16),
                ("asm_count", u16), ("msg_len", sz)]


class Tx(C.Structure):
    _fields_ = [("key", vp), ("device_id", u32), ("flags", u8), ("chunk", u16),
                ("next_seq", u32)]


class Outgoing(C.Structure):
    _fields_ = [("type", u8), ("len", sz), ("first_seq", u32), ("chunk_count", u16),
                ("chunk", u16)]


class OutboxSlot(C.Structure):
    _fields_ = [("buf", vp), ("cap", sz), ("retries", u32), ("queued", u8), ("type", u8),
                ("len", sz), ("order", u32), ("o", Outgoing), ("index", u16), ("tries", u32),
                ("sent_at", u32)]


class Outbox(C.Structure):
    _fields_ = [("tx", vp), ("slots", vp), ("n_slots", u32), ("retx_ms", u32),
                ("answer_ms", u32), ("counter", u32)]


class OutboxEvent(C.Structure):
    _fields_ = [("event", u8), ("code", u8), ("done", u8), ("index", u16), ("chunk_count", u16),
                ("slot", u32), ("seq", u32), ("tries", u32), ("frame_len", sz)]


class HelloMsg(C.Structure):
    _fields_ = [("name", C.c_char * 17), ("capabilities", u32), ("firmware_version", u32),
                ("model_hash", u8 * 8), ("model_version", u32), ("head_params", u32),
                ("free_ram", u32), ("host_seq", u32)]


class GlobalMsg(C.Structure):
    _fields_ = [("model_version", u32), ("base_version", u32), ("kind", u8), ("body", vp),
                ("body_len", sz)]


class TrainMsg(C.Structure):
    _fields_ = [("round", u32), ("epochs", u8), ("topk_kind", u8), ("batch_size", u16),
                ("learning_rate", C.c_float), ("momentum", C.c_float), ("prox_mu", C.c_float),
                ("clip", C.c_float), ("topk_count", u32), ("topk_fraction", C.c_float),
                ("seed", u32), ("flags", u32), ("ldp_clip", C.c_float), ("ldp_noise", C.c_float)]


class DeltaMsg(C.Structure):
    _fields_ = [("round", u32), ("base_version", u32), ("examples", u32), ("loss", C.c_float),
                ("personal_n", u32), ("personal_metric", C.c_float), ("body", vp),
                ("body_len", sz)]


class TextMsg(C.Structure):
    _fields_ = [("code", u16), ("text", vp), ("text_len", sz)]


class DisableMsg(C.Structure):
    _fields_ = [("disabled", u8)]


class Sparse(C.Structure):
    _fields_ = [("n", u32), ("k", u32), ("mode", C.c_int), ("block_size", u32),
                ("indices", vp), ("values", vp), ("scales", vp)]


class DeltaConfig(C.Structure):
    _fields_ = [("k", u32), ("mode", C.c_int), ("block_size", u32), ("error_feedback", C.c_int),
                ("qmax", u32)]


class Limits(C.Structure):
    _fields_ = [("n_max", u32), ("k_max", u32), ("scales_max", u32)]


class ChaCha20(C.Structure):
    _fields_ = [("state", u32 * 16), ("block", u8 * 64), ("used", u32), ("exhausted", u32)]


class SecaggPeer(C.Structure):
    _fields_ = [("id", u32), ("shared", u8 * 32)]


# secagg/ (msg.h, client.h); MAX_COHORT is FLT_SECAGG_MAX_COHORT, checked through the sizes
SECAGG_MAX_COHORT = 16


class SaBegin(C.Structure):
    _fields_ = [("epoch", u32), ("round", u32)]


class SaAdvertise(C.Structure):
    _fields_ = [("epoch", u32), ("round", u32), ("chan_pk", u8 * 32), ("mask_pk", u8 * 32)]


class SaCohort(C.Structure):
    _fields_ = [("round", u32), ("epoch", u32), ("index_seed", u32), ("k", u32),
                ("scale", C.c_float), ("qmax", u32), ("t", u16), ("n", u16), ("w", u8),
                ("members", vp)]


class SaShares(C.Structure):
    _fields_ = [("round", u32), ("count", u16), ("entries", vp)]


class SaMasked(C.Structure):
    _fields_ = [("round", u32), ("k", u32), ("w", u8), ("values", vp)]


class SaUnmask(C.Structure):
    _fields_ = [("round", u32), ("n_surv", u16), ("n_drop", u16), ("ids", vp)]


class SaReveal(C.Structure):
    _fields_ = [("round", u32), ("count", u16), ("entries", vp)]


class SecaggChan(C.Structure):
    _fields_ = [("id", u32), ("pk", u8 * 32), ("chan", u8 * 32), ("valid", u8), ("used", u8)]


class SecaggMember(C.Structure):
    _fields_ = [("mask", SecaggPeer), ("shares", u8 * 64), ("chan_slot", u8),
                ("has_shares", u8)]


class SecaggClient(C.Structure):
    _fields_ = [("device_id", u32), ("secret", u8 * 32), ("epoch", u32), ("round", u32),
                ("in_epoch", u8), ("any_round", u8), ("phase", u8), ("chan_sk", u8 * 32),
                ("chan_pk", u8 * 32), ("mask_sk", u8 * 32), ("mask_pk", u8 * 32),
                ("self_seed", u8 * 32), ("k", u32), ("index_seed", u32), ("qmax", u32),
                ("scale", C.c_float), ("t", u16), ("n", u16), ("self", u16), ("w", u8),
                ("m", SecaggMember * SECAGG_MAX_COHORT), ("chan", SecaggChan * SECAGG_MAX_COHORT)]


MIRRORS: abi.Mirrors = {
    "flt_proto_header_t": Header, "flt_msg_ack_t": Ack, "flt_proto_rx_event_t": RxEvent,
    "flt_proto_rx_t": Rx, "flt_proto_tx_t": Tx, "flt_proto_outgoing_t": Outgoing,
    "flt_outbox_slot_t": OutboxSlot, "flt_outbox_t": Outbox, "flt_outbox_event_t": OutboxEvent,
    "flt_msg_hello_t": HelloMsg, "flt_msg_global_t": GlobalMsg, "flt_msg_train_t": TrainMsg,
    "flt_msg_delta_t": DeltaMsg, "flt_msg_text_t": TextMsg, "flt_msg_disable_t": DisableMsg,
    "flt_sparse_delta_t": Sparse,
    "flt_delta_config_t": DeltaConfig, "flt_payload_limits_t": Limits,
    "flt_chacha20_t": ChaCha20, "flt_secagg_peer_t": SecaggPeer,
    "flt_sa_begin_t": SaBegin, "flt_sa_advertise_t": SaAdvertise, "flt_sa_cohort_t": SaCohort,
    "flt_sa_shares_t": SaShares, "flt_sa_masked_t": SaMasked, "flt_sa_unmask_t": SaUnmask,
    "flt_sa_reveal_t": SaReveal, "flt_secagg_chan_t": SecaggChan,
    "flt_secagg_member_t": SecaggMember, "flt_secagg_client_t": SecaggClient,
}
HEADERS = ("proto/outbox.h", "proto/messages.h", "delta/delta.h", "delta/payload.h",
           "crypto/x25519.h", "crypto/chacha20.h", "crypto/hkdf.h", "crypto/secagg_mask.h",
           "secagg/shamir.h", "secagg/keys.h", "secagg/box.h", "secagg/input.h", "secagg/msg.h",
           "secagg/client.h")
CONSTANTS = (
    "FLT_PROTO_VERSION", "FLT_PROTO_HEADER_MIN", "FLT_PROTO_HEADER_MAX", "FLT_PROTO_TAG_SIZE",
    "FLT_PROTO_KEY_SIZE", "FLT_PROTO_OVERHEAD_MIN", "FLT_PROTO_OVERHEAD", "FLT_PROTO_MAX_CHUNK",
    "FLT_PROTO_MAX_FRAME",
    "FLT_PROTO_MAX_WIRE", "FLT_PROTO_FLAG_FROM_HOST", "FLT_PROTO_ANSWERED_CHUNKS",
    "FLT_MSG_TYPE_MAX", "FLT_MSG_NAME_SIZE",
    "FLT_MSG_HASH_SIZE", "FLT_PROTO_MAX_TEXT", "FLT_MSG_HELLO_SIZE",
    "FLT_MSG_GLOBAL_HEADER_SIZE", "FLT_MSG_TRAIN_SIZE", "FLT_MSG_TRAIN_MAX_SIZE",
    "FLT_MSG_DELTA_HEADER_MIN", "FLT_MSG_DELTA_HEADER_MAX",
    "FLT_MSG_ACK_SIZE", "FLT_MSG_DISABLE_SIZE", "FLT_CAP_TRAIN_HEAD", "FLT_CAP_DELTA_BLOCK",
    "FLT_CAP_GLOBAL_DELTA", "FLT_CAP_SECAGG", "FLT_TRAIN_SECAGG", "FLT_SECAGG_KIND_MAX",
    "FLT_MSG_SECAGG_MIN",
    "FLT_ACK_ACCEPTED", "FLT_ACK_DUPLICATE", "FLT_TRAIN_DRIFT", "FLT_TRAIN_PERSONAL",
    "FLT_TRAIN_NO_FEEDBACK", "FLT_TRAIN_RESET", "FLT_TRAIN_SELECT", "FLT_TRAIN_LOCAL_DP",
    "FLT_TRAIN_BITS_SHIFT",
    "FLT_TRAIN_BITS_MASK",
    "FLT_TRAIN_FLAGS_KNOWN", "FLT_TRAIN_CHECK_SHIFT", "FLT_TRAIN_CHECK_MAX",
    "FLT_PAYLOAD_HEADER_MAX", "FLT_INDEX_AUTO",
    "FLT_X25519_SIZE", "FLT_CHACHA20_BLOCK_SIZE", "FLT_HKDF_MAX_OKM", "FLT_SECAGG_MAX_VALUES",
    "FLT_SECAGG_MAX_COHORT", "FLT_SECAGG_BOX_SIZE", "FLT_SA_COHORT_HEADER", "FLT_SA_COHORT_ENTRY",
    "FLT_SA_SHARES_ENTRY", "FLT_SA_REVEAL_ENTRY", "FLT_SA_MASKED_HEADER", "FLT_SA_ADVERTISE_SIZE",
    "FLT_SHAMIR_MAX_LEN",
)

P = C.POINTER
# name: (restype, argtypes); every status-returning function returns a C int
_PROTOTYPES: dict[str, tuple[object, list]] = {
    "flt_status_str": (C.c_char_p, [C.c_int]),
    "flt_proto_frame_encode": (C.c_int, [P(Header), vp, vp, vp, sz, P(sz)]),
    "flt_proto_frame_decode": (C.c_int, [vp, sz, vp, P(Header), P(vp)]),
    "flt_proto_frame_size": (sz, [P(Header)]),
    "flt_cobs_encode": (C.c_int, [vp, sz, vp, sz, P(sz)]),
    "flt_cobs_decode": (C.c_int, [vp, sz, vp, sz, P(sz)]),
    "flt_proto_rx_init": (C.c_int, [P(Rx), vp, u32, C.c_int, vp, sz, vp, sz]),
    "flt_proto_rx_feed": (C.c_int, [P(Rx), u8, P(RxEvent)]),
    "flt_proto_rx_resume_after": (C.c_int, [P(Rx), u32]),
    "flt_proto_rx_feed_bytes": (C.c_int, [P(Rx), vp, sz, P(sz), P(RxEvent)]),
    "flt_proto_tx_init": (C.c_int, [P(Tx), vp, u32, C.c_int, u32]),
    "flt_proto_tx_set_chunk": (C.c_int, [P(Tx), u16]),
    "flt_proto_tx_skip_to": (C.c_int, [P(Tx), u32]),
    "flt_proto_tx_begin": (C.c_int, [P(Tx), u8, sz, P(Outgoing)]),
    "flt_proto_tx_chunk": (C.c_int, [P(Tx), P(Outgoing), vp, u16, vp, sz, P(sz)]),
    "flt_proto_tx_reply": (C.c_int, [P(Tx), P(RxEvent), vp, sz, P(sz)]),
    "flt_wire_count": (C.c_int, [P(Tx), P(Tx), u8, vp, sz, P(C.c_uint64), P(C.c_uint64)]),
    "flt_outbox_init": (C.c_int, [P(Outbox), P(Tx), vp, u32, u32]),
    "flt_outbox_slot": (C.c_int, [P(Outbox), u32, vp, sz, u32]),
    "flt_outbox_queue": (C.c_int, [P(Outbox), u32, u8, sz]),
    "flt_outbox_service": (C.c_int, [P(Outbox), u32, vp, sz, P(OutboxEvent)]),
    "flt_outbox_on_control": (C.c_int, [P(Outbox), P(RxEvent), P(OutboxEvent)]),
    "flt_outbox_head": (i32, [P(Outbox)]),
    "flt_outbox_cancel": (C.c_int, [P(Outbox), u32]),
    "flt_outbox_answered": (C.c_int, [P(Outbox), u32, P(OutboxEvent)]),
    "flt_outbox_set_answer_ms": (C.c_int, [P(Outbox), u32]),
    "flt_proto_ack_mode": (C.c_int, [u8, u16, u8]),
    "flt_msg_hello_encode": (C.c_int, [P(HelloMsg), vp, sz, P(sz)]),
    "flt_msg_hello_decode": (C.c_int, [vp, sz, P(HelloMsg)]),
    "flt_msg_global_encode": (C.c_int, [P(GlobalMsg), vp, sz, P(sz)]),
    "flt_msg_global_decode": (C.c_int, [vp, sz, P(GlobalMsg)]),
    "flt_msg_train_encode": (C.c_int, [P(TrainMsg), vp, sz, P(sz)]),
    "flt_msg_train_decode": (C.c_int, [vp, sz, P(TrainMsg)]),
    "flt_msg_delta_encode": (C.c_int, [P(DeltaMsg), vp, sz, P(sz)]),
    "flt_msg_delta_decode": (C.c_int, [vp, sz, P(DeltaMsg)]),
    "flt_msg_ack_encode": (C.c_int, [u8, P(Ack), vp, sz, P(sz)]),
    "flt_msg_ack_decode": (C.c_int, [u8, vp, sz, P(Ack)]),
    "flt_msg_text_encode": (C.c_int, [u8, P(TextMsg), vp, sz, P(sz)]),
    "flt_msg_text_decode": (C.c_int, [u8, vp, sz, P(TextMsg)]),
    "flt_msg_disable_encode": (C.c_int, [P(DisableMsg), vp, sz, P(sz)]),
    "flt_msg_disable_decode": (C.c_int, [vp, sz, P(DisableMsg)]),
    "flt_msg_check": (C.c_int, [u8, vp, sz]),
    "flt_msg_secagg_check": (C.c_int, [vp, sz]),
    "flt_delta_compress": (C.c_int, [P(DeltaConfig), vp, vp, vp, u32, P(Sparse)]),
    "flt_delta_apply": (C.c_int, [P(Sparse), vp, u32]),
    "flt_delta_dequantize": (C.c_int, [P(Sparse), vp, u32]),
    "flt_delta_num_scales": (u32, [u32, C.c_int, u32]),
    "flt_delta_qmax_of_bits": (u32, [u32]),
    "flt_payload_max_size": (sz, [u32, u32, C.c_int, u32]),
    "flt_payload_encode": (C.c_int, [P(Sparse), C.c_int, vp, sz, P(sz)]),
    "flt_payload_decode": (C.c_int, [vp, sz, P(Limits), P(Sparse)]),
    "flt_x25519": (None, [vp, vp, vp]),
    "flt_x25519_public": (None, [vp, vp]),
    "flt_x25519_shared": (C.c_int, [vp, vp, vp]),
    "flt_chacha20_block": (None, [vp, u32, vp, vp]),
    "flt_chacha20_init": (None, [P(ChaCha20), vp, vp, u32]),
    "flt_chacha20_read": (C.c_int, [P(ChaCha20), vp, sz]),
    "flt_chacha20_xor": (C.c_int, [P(ChaCha20), vp, vp, sz]),
    "flt_chacha20_wipe": (None, [P(ChaCha20)]),
    "flt_hkdf_extract": (None, [vp, sz, vp, sz, vp]),
    "flt_hkdf_expand": (C.c_int, [vp, vp, sz, vp, sz]),
    "flt_hkdf": (C.c_int, [vp, sz, vp, sz, vp, sz, vp, sz]),
    "flt_secagg_pair_key": (C.c_int, [vp, u32, u32, u32, vp]),
    "flt_secagg_mask": (C.c_int, [u32, u32, P(SecaggPeer), u32, vp, u32]),
    "flt_gf256_mul": (u8, [u8, u8]),
    "flt_gf256_inv": (u8, [u8]),
    "flt_shamir_share": (C.c_int, [vp, u32, u32, vp, u8, vp]),
    "flt_shamir_recover": (C.c_int, [vp, vp, u32, u32, vp]),
    "flt_secagg_derive": (C.c_int, [vp, u32, C.c_char_p, u32, u32, u32, u32, vp, u32]),
    "flt_secagg_self_mask": (C.c_int, [vp, vp, u32, C.c_int]),
    "flt_secagg_box_seal": (C.c_int, [vp, u32, u32, u32, vp, vp]),
    "flt_secagg_box_open": (C.c_int, [vp, u32, u32, u32, vp, vp]),
    "flt_secagg_index_set": (C.c_int, [u32, u32, u32, u32, vp]),
    "flt_secagg_quantize": (C.c_int, [vp, u32, vp, u32, C.c_float, u32, vp]),
    "flt_sa_begin_decode": (C.c_int, [vp, sz, P(SaBegin)]),
    "flt_sa_begin_encode": (C.c_int, [P(SaBegin), vp, sz, P(sz)]),
    "flt_sa_advertise_decode": (C.c_int, [vp, sz, P(SaAdvertise)]),
    "flt_sa_advertise_encode": (C.c_int, [P(SaAdvertise), vp, sz, P(sz)]),
    "flt_sa_cohort_decode": (C.c_int, [vp, sz, P(SaCohort)]),
    "flt_sa_cohort_encode": (C.c_int, [P(SaCohort), vp, sz, P(sz)]),
    "flt_sa_shares_decode": (C.c_int, [vp, sz, P(SaShares)]),
    "flt_sa_shares_encode": (C.c_int, [P(SaShares), vp, sz, P(sz)]),
    "flt_sa_masked_decode": (C.c_int, [vp, sz, P(SaMasked)]),
    "flt_sa_masked_encode": (C.c_int, [u32, u8, vp, u32, vp, sz, P(sz)]),
    "flt_sa_unmask_decode": (C.c_int, [vp, sz, P(SaUnmask)]),
    "flt_sa_unmask_encode": (C.c_int, [P(SaUnmask), vp, sz, P(sz)]),
    "flt_sa_reveal_decode": (C.c_int, [vp, sz, P(SaReveal)]),
    "flt_sa_reveal_encode": (C.c_int, [P(SaReveal), vp, sz, P(sz)]),
    "flt_sa_masked_value": (u32, [P(SaMasked), u32]),
    "flt_secagg_client_init": (C.c_int, [P(SecaggClient), u32, vp]),
    "flt_secagg_client_wipe": (None, [P(SecaggClient)]),
    "flt_secagg_begin": (C.c_int, [P(SecaggClient), P(SaBegin), P(SaAdvertise)]),
    "flt_secagg_cohort": (C.c_int, [P(SecaggClient), P(SaCohort)]),
    "flt_secagg_deal": (C.c_int, [P(SecaggClient), vp, sz, P(u16)]),
    "flt_secagg_receive": (C.c_int, [P(SecaggClient), P(SaShares)]),
    "flt_secagg_mask_input": (C.c_int, [P(SecaggClient), vp, u32]),
    "flt_secagg_unmask": (C.c_int, [P(SecaggClient), P(SaUnmask), vp, sz, P(u16)]),
}


@cache
def _loaded() -> tuple[C.CDLL, dict[str, int]]:
    table_c = abi.abi_source(MIRRORS, HEADERS, CONSTANTS)
    lib = C.CDLL(str(build_shared_library(["proto", "delta", "crypto", "secagg"], extra_sources=[table_c],
                                          name="fltrt")))
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib, abi.check(lib, MIRRORS, "fltiny/native/lib.py")


def rt() -> C.CDLL:
    """The loaded, checked runtime library."""
    return _loaded()[0]


def const(name: str) -> int:
    """Value of a C macro listed in CONSTANTS (from the compiled table)."""
    return _loaded()[1][name]
