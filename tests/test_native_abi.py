"""The binding's struct mirrors are checked against the compiler (fltiny/native/abi): a mirror
that differs from the C in size, offset or field type is refused at load time with a message
naming the field, and a field the C lacks does not even build."""

from __future__ import annotations

import ctypes as C

import pytest

from fltiny.errors import ToolchainError
from fltiny.native import abi
from fltiny.native import lib as L
from fltiny.native.build import build_shared_library
from fltiny.native.messages import MsgType
from fltiny.native.proto import FLAG_FROM_HOST


def _lib_with(mirrors: abi.Mirrors, constants=()) -> C.CDLL:
    src = abi.abi_source(mirrors, ["proto/link.h"], constants)
    return C.CDLL(str(build_shared_library(["proto"], extra_sources=[src], name="abitest")))


def test_every_binding_mirror_matches_the_c():
    table = abi.check(L.rt(), L.MIRRORS, "fltiny/native/lib.py")
    assert table["flt_proto_header_t"] == C.sizeof(L.Header)
    assert set(L.MIRRORS) <= set(table)


def test_wrong_field_type_is_refused_with_its_name():
    class BadHeader(C.Structure):  # seq as 16 bits: every later offset moves
        _fields_ = [(n, t) if n != "seq" else (n, C.c_uint16) for n, t in L.Header._fields_]

    lib = _lib_with({"flt_proto_header_t": BadHeader})
    with pytest.raises(ToolchainError, match=r"flt_proto_header_t\.seq is at 8 \(4 bytes\) in C"):
        abi.check(lib, {"flt_proto_header_t": BadHeader}, "the test")


def test_missing_field_is_refused_by_size():
    class Short(C.Structure):  # flt_proto_tx_t without next_seq
        _fields_ = L.Tx._fields_[:-1]

    lib = _lib_with({"flt_proto_tx_t": Short})
    with pytest.raises(ToolchainError, match=r"sizeof\(flt_proto_tx_t\) is 24 in C"):
        abi.check(lib, {"flt_proto_tx_t": Short}, "the test")


def test_field_the_c_lacks_does_not_build():
    class Extra(C.Structure):
        _fields_ = [*L.Ack._fields_, ("no_such_field", C.c_uint32)]

    with pytest.raises(ToolchainError, match="no_such_field"):
        _lib_with({"flt_msg_ack_t": Extra})


def test_python_enums_and_flags_are_the_c_values():
    names = [f"FLT_MSG_{t.name}" for t in MsgType]
    table = abi.table(_lib_with({}, names + ["FLT_PROTO_FLAG_FROM_HOST", "FLT_MSG_TYPE_MAX"]))
    assert {t.name: int(t) for t in MsgType} == {n[8:]: table[n] for n in names}
    assert table["FLT_MSG_TYPE_MAX"] == max(MsgType)
    assert table["FLT_PROTO_FLAG_FROM_HOST"] == FLAG_FROM_HOST
