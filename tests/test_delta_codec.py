"""Payload codec: round trips (hypothesis), named invalid payloads swept through both decoders,
and every strict prefix of a valid payload."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import payload as pl
from oracles.delta import QuantMode, SparseDelta, num_scales
from oracles.payload import IndexFormat, PayloadError
from test_delta_native import c_decode, c_encode

VEC = json.loads((Path(__file__).parent / "vectors" / "delta" / "manifest.json").read_text())
LIMITS = dict(n_max=4096, k_max=64, scales_max=16)


@st.composite
def sparse_deltas(draw) -> SparseDelta:
    n = draw(st.integers(1, 3000))
    dense = draw(st.booleans())
    k_cap = n if dense else min(n, 40)
    k = draw(st.integers(0, k_cap))
    if draw(st.booleans()):
        idx = np.sort(np.random.default_rng(draw(st.integers(0, 2**32 - 1))).choice(
            n, k, replace=False)).astype(np.uint32)
    else:  # clustered
        start = draw(st.integers(0, n - k))
        idx = np.arange(start, start + k, dtype=np.uint32)
    mode = draw(st.sampled_from(QuantMode))
    block = draw(st.integers(1, 70)) if mode == QuantMode.BLOCK else 0
    ns = num_scales(k, mode, block)
    f32 = st.floats(0.0, 3.4028234663852886e38, width=32)  # finite, >= 0, subnormals too
    scales = np.array(draw(st.lists(f32, min_size=ns, max_size=ns)), np.float32)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.integers(-127, 128, k).astype(np.int8)
    d = SparseDelta(n=n, indices=idx, values=values, scales=scales, mode=mode, block_size=block)
    values[d.scale_per_value() == 0] = 0
    return d


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_deltas())
def test_roundtrip_python_and_c(d):
    auto = pl.encode(d)
    assert len(auto) == min(len(pl.encode(d, f)) for f in IndexFormat)
    assert auto == c_encode(d)
    for fmt in (None, *IndexFormat):
        payload = pl.encode(d, fmt)
        assert pl.decode(payload).equals(d)
        status, got = c_decode(payload, n_max=d.n, k_max=d.k, scales_max=d.scales.size)
        assert status == "FLT_OK" and got.equals(d)
        if fmt is not None:
            assert payload == c_encode(d, int(fmt))


# ---- named invalid payloads ------------------------------------------------------------

def varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    return bytes(out + bytes([v]))


def hdr(fmt=0, mode=0, rice=0, block=None, n=16, k=2, version=3, vr=0) -> bytes:
    """A version-3 header: version << 4 | mode << 2 | format, the Rice parameter | the value
    Rice parameter << 5, varints n, k and (block mode, or when given) the block size."""
    out = bytes([version << 4 | mode << 2 | fmt, rice | vr << 5]) + varint(n) + varint(k)
    return out + (varint(block if block is not None else 0) if mode == 1 or block is not None
                  else b"")


ONE = struct.pack("<f", 1.0)
VALS = bytes([5, 0xFB])  # +5, -5
# valid references: indices [3, 9] of n = 16
VARINT_OK = hdr(0) + ONE + bytes([4, 6]) + VALS
BITMAP_OK = hdr(1) + ONE + bytes([0b00001000, 0b00000010]) + VALS
# rice r=2: u = 3 -> 0 11 ; u = 5 -> 1 0 01 ; bits 011 1001 + pad 0 -> 0b01110010
RICE_OK = hdr(2, rice=2) + ONE + bytes([0b01110010]) + VALS
BLOCK_OK = hdr(0, mode=1, block=1) + ONE + ONE + bytes([4, 6]) + VALS
# Rice gaps and values: value code r=0, qmin=5; entries 011|0|0 and 1001|0|1 -> 01100100101
RV_OK = hdr(3, rice=2, vr=0) + ONE + bytes([5, 0b01100100, 0b10100000])
HL = len(hdr())  # header bytes of the references (4: n = 16 and k = 2 take one byte each)
S = HL + 4  # after the scale

INVALID: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "FLT_ERR_TRUNCATED"),
    "header_1_byte": (VARINT_OK[:1], "FLT_ERR_TRUNCATED"),
    "header_varint_truncated": (VARINT_OK[:3], "FLT_ERR_TRUNCATED"),
    "header_varint_overlong": (hdr()[:2] + bytes([0x90, 0x00, 2]) + VARINT_OK[HL:],
                               "FLT_ERR_FORMAT"),
    "version_1_payload": (b"FD\x01\x00\x00\x00\x00\x00" + bytes(8) + VARINT_OK[HL:],
                          "FLT_ERR_UNSUPPORTED"),
    # a version-2 payload: "FD", version 2, format | mode, Rice parameter, n, k (nibble 4)
    "version_2_payload": (b"FD\x02\x00\x00" + VARINT_OK[2:], "FLT_ERR_UNSUPPORTED"),
    "bad_version_0": (hdr(version=0) + VARINT_OK[HL:], "FLT_ERR_UNSUPPORTED"),
    "bad_version_2": (hdr(version=2) + VARINT_OK[HL:], "FLT_ERR_UNSUPPORTED"),
    "unknown_quant_mode": (hdr(0, mode=2) + VARINT_OK[HL:], "FLT_ERR_UNSUPPORTED"),
    "rice_param_on_varint": (hdr(0, rice=1) + VARINT_OK[HL:], "FLT_ERR_FORMAT"),
    "value_rice_param_on_rice": (hdr(2, rice=2, vr=1) + RICE_OK[HL:], "FLT_ERR_FORMAT"),
    "value_rice_param_on_bitmap": (hdr(1, vr=1) + BITMAP_OK[HL:], "FLT_ERR_FORMAT"),
    "block_size_0_in_block_mode": (hdr(0, mode=1, block=0) + VARINT_OK[HL:], "FLT_ERR_FORMAT"),
    "block_size_over_16_bits": (hdr(0, mode=1, block=65536) + VARINT_OK[HL:], "FLT_ERR_FORMAT"),
    "n_zero": (hdr(n=0, k=0), "FLT_ERR_FORMAT"),
    "n_over_limit": (hdr(n=4097) + VARINT_OK[HL:], "FLT_ERR_OVERSIZE"),
    "n_max_u32": (hdr(n=0xFFFFFFFF, k=0), "FLT_ERR_OVERSIZE"),
    "k_greater_than_n": (hdr(n=16, k=17) + VARINT_OK[HL:], "FLT_ERR_FORMAT"),
    "k_over_limit": (hdr(n=100, k=65) + VARINT_OK[HL:], "FLT_ERR_OVERSIZE"),
    "scales_over_limit": (hdr(0, mode=1, block=1, n=100, k=17), "FLT_ERR_OVERSIZE"),
    "scales_truncated": (hdr(0, mode=1, block=1) + ONE + ONE[:3], "FLT_ERR_TRUNCATED"),
    "scale_nan": (hdr() + struct.pack("<I", 0x7FC00000) + VARINT_OK[S:], "FLT_ERR_NONFINITE"),
    "scale_inf": (hdr() + struct.pack("<f", float("inf")) + VARINT_OK[S:],
                  "FLT_ERR_NONFINITE"),
    "scale_negative": (hdr() + struct.pack("<f", -1.0) + VARINT_OK[S:], "FLT_ERR_RANGE"),
    "scale_minus_zero": (hdr(k=0) + b"", "FLT_OK"),  # k = 0: no scales at all, valid
    "scale_minus_zero_k1": (hdr(k=1) + struct.pack("<f", -0.0) + bytes([4, 0]),
                            "FLT_ERR_RANGE"),
    "varint_truncated": (VARINT_OK[:S + 1], "FLT_ERR_TRUNCATED"),
    "varint_zero_gap_not_increasing": (hdr() + ONE + bytes([4, 0]) + VALS, "FLT_ERR_FORMAT"),
    "varint_index_out_of_range": (hdr() + ONE + bytes([4, 13]) + VALS, "FLT_ERR_RANGE"),
    "varint_first_index_eq_n": (hdr(k=1) + ONE + bytes([17]) + VALS[:1], "FLT_ERR_RANGE"),
    "varint_overlong": (hdr(k=1) + ONE + bytes([0x84, 0x00]) + VALS[:1], "FLT_ERR_FORMAT"),
    "varint_over_32_bits": (hdr(k=1) + ONE + bytes([0x81, 0x80, 0x80, 0x80, 0x10]) + VALS[:1],
                            "FLT_ERR_FORMAT"),
    "varint_continuation_at_5th_byte": (
        hdr(k=1) + ONE + bytes([0x81, 0x80, 0x80, 0x80, 0x80, 0x00]) + VALS[:1],
        "FLT_ERR_FORMAT"),
    "varint_huge_gap": (hdr(k=1) + ONE + bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + VALS[:1],
                        "FLT_ERR_RANGE"),
    "bitmap_truncated": (BITMAP_OK[:S + 1], "FLT_ERR_TRUNCATED"),
    "bitmap_too_many_bits": (hdr(1) + ONE + bytes([0b00001001, 0b00000010]) + VALS,
                             "FLT_ERR_FORMAT"),
    "bitmap_too_few_bits": (hdr(1) + ONE + bytes([0b00001000, 0]) + VALS, "FLT_ERR_FORMAT"),
    "bitmap_padding_bit": (hdr(1, n=12, k=2) + ONE + bytes([0b00001000, 0b00010000]) + VALS,
                           "FLT_ERR_FORMAT"),
    "rice_truncated": (RICE_OK[:S], "FLT_ERR_TRUNCATED"),
    "rice_index_out_of_range": (hdr(2, rice=2, n=9) + ONE + bytes([0b01110010]) + VALS,
                                "FLT_ERR_RANGE"),
    "rice_padding_bits": (hdr(2, rice=2) + ONE + bytes([0b01110011]) + VALS, "FLT_ERR_FORMAT"),
    "rice_unary_run_too_long": (hdr(2, rice=0, k=1) + ONE + bytes([0xFF, 0xFF, 0xFF]) + VALS,
                                "FLT_ERR_RANGE"),
    "rv_qmin_truncated": (RV_OK[:S], "FLT_ERR_TRUNCATED"),
    "rv_qmin_128": (RV_OK[:S] + bytes([128]) + RV_OK[S + 1:], "FLT_ERR_FORMAT"),
    "rv_value_above_127": (hdr(3, rice=2, k=1) + ONE + bytes([127, 0b01110000]),
                           "FLT_ERR_RANGE"),
    "rv_truncated": (RV_OK[:-1], "FLT_ERR_TRUNCATED"),
    "rv_padding_bits": (RV_OK[:-1] + bytes([0b10100001]), "FLT_ERR_FORMAT"),
    "rv_trailing_byte": (RV_OK + b"\x00", "FLT_ERR_FORMAT"),
    "valid_rice_values": (RV_OK, "FLT_OK"),
    "values_truncated": (VARINT_OK[:-1], "FLT_ERR_TRUNCATED"),
    "value_minus_128": (VARINT_OK[:-1] + bytes([0x80]), "FLT_ERR_RANGE"),
    "zero_scale_nonzero_value": (hdr() + struct.pack("<f", 0.0) + VARINT_OK[S:],
                                 "FLT_ERR_FORMAT"),
    "trailing_byte": (VARINT_OK + b"\x00", "FLT_ERR_FORMAT"),
    "valid_varint": (VARINT_OK, "FLT_OK"),
    "valid_bitmap": (BITMAP_OK, "FLT_OK"),
    "valid_rice": (RICE_OK, "FLT_OK"),
    "valid_block": (BLOCK_OK, "FLT_OK"),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_named_payloads(name):
    payload, status = INVALID[name]
    c_status, c_delta = c_decode(payload, **LIMITS)
    assert c_status == status
    if status == "FLT_OK":
        d = pl.decode(payload, **LIMITS)
        assert c_delta.equals(d)
        if name != "scale_minus_zero":
            assert d.indices.tolist() == [3, 9] and d.values.tolist() == [5, -5]
    else:
        with pytest.raises(PayloadError) as err:
            pl.decode(payload, **LIMITS)
        assert err.value.status == status
        assert isinstance(err.value, ValueError)


def test_reference_payloads_are_what_the_encoder_writes():
    d = pl.decode(VARINT_OK)
    assert pl.encode(d, IndexFormat.VARINT) == VARINT_OK
    assert pl.encode(d, IndexFormat.BITMAP) == BITMAP_OK
    # gaps-1 = [3, 5]: mean 4 gives r0 = 2; r = 1 costs the same 7 bits, so the encoder
    # takes r = 1 (bits 1 0 1, 1 1 0 1, pad). Decoders accept any r <= 31 (RICE_OK has r = 2).
    rice = pl.encode(d, IndexFormat.RICE)
    assert rice == hdr(2, rice=1) + ONE + bytes([0b10111010]) + VALS
    assert pl.decode(RICE_OK).equals(d)
    # the same gap code (r = 1), each followed by its value: |q| - qmin = 0 with r = 0 ('0')
    # and the sign: 101 0 0 | 1101 0 1, pad
    assert (pl.encode(d, IndexFormat.RICE_VALUES)
            == hdr(3, rice=1, vr=0) + ONE + bytes([5, 0b10100110, 0b10100000]))
    assert pl.decode(RV_OK).equals(d)


@pytest.mark.parametrize("case", VEC["cases"], ids=[c["name"] for c in VEC["cases"]])
def test_every_strict_prefix_is_truncated(case):
    payload = bytes.fromhex(case["payload_hex"])
    step = max(1, len(payload) // 97)
    for cut in list(range(0, len(payload), step)) + [len(payload) - 1]:
        with pytest.raises(PayloadError) as err:
            pl.decode(payload[:cut])
        assert err.value.status == "FLT_ERR_TRUNCATED", cut
        assert c_decode(payload[:cut], n_max=case["n"], k_max=case["k"])[0] == (
            "FLT_ERR_TRUNCATED")
