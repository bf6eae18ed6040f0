"""The host's decoders of what comes from outside, under hypothesis (issue 19: "Python-side
decoders with hypothesis"): the message decoders of the binding (fltiny.native.messages, the
C behind them), a device's STATUS text, the fleet file and the MQTT URL. Each input either
decodes (and a decoded message re-encodes to bytes that decode to the same message) or is
refused with the one error type its caller turns into a one-line message; nothing else
escapes (no ValueError, IndexError, ctypes error)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fltiny.bridge.mqtt import parse_mqtt_url
from fltiny.devices.data import DeviceDataStatus
from fltiny.errors import UsageError
from fltiny.native import messages as m
from fltiny.native.errors import ProtocolError
from fltiny.provision import read_fleet_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import make_fuzz_seeds  # noqa: E402

DECODERS = [m.Hello, m.Global, m.Delta, m.Train, m.Ack, m.Nack, m.Status, m.Log, m.Error]
SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid(cls) -> bytes:
    """One real encoding of a message of ``cls`` (the fuzz seeds' messages, from the C
    encoders): the seed hypothesis mutates from."""
    for msg in make_fuzz_seeds.messages().values():
        if type(msg) is cls:
            return msg.encode()
    return b""


def _mutations(seed: bytes):
    return st.one_of(
        st.binary(max_size=300),
        st.builds(lambda cut: seed[:cut], st.integers(0, max(len(seed), 1))),
        st.builds(lambda i, b: seed[:i] + bytes([b]) + seed[i + 1:],
                  st.integers(0, max(len(seed) - 1, 0)), st.integers(0, 255)),
        st.builds(lambda extra: seed + extra, st.binary(min_size=1, max_size=8)))


@pytest.mark.parametrize("cls", DECODERS, ids=lambda c: c.__name__)
def test_message_decoders_refuse_or_round_trip(cls):
    @SETTINGS
    @given(_mutations(_valid(cls)))
    def check(buf: bytes) -> None:
        try:
            msg = cls.decode(buf)
        except ProtocolError:
            return
        again = cls.decode(msg.encode())
        assert again == msg

    check()


@SETTINGS
@given(st.text(max_size=120))
def test_status_text_parses_or_is_refused_in_one_line(text):
    try:
        s = DeviceDataStatus.parse(text)
    except UsageError as exc:
        assert "STATUS" in str(exc) and "\n" not in str(exc)  # the text is quoted with repr
        return
    assert s.source in ("blob", "store", "none")
    assert all(isinstance(getattr(s, f), int) and getattr(s, f) >= 0
               for f in ("count", "capacity", "test", "samples", "windows", "stored",
                         "rejected", "dropped"))


@SETTINGS
@given(st.one_of(st.text(max_size=60),
                 st.builds(lambda h, p: f"mqtts://{h}:{p}", st.text(max_size=20),
                           st.text(max_size=8))))
def test_mqtt_url_parses_or_is_refused(url):
    try:
        host, port = parse_mqtt_url(url)
    except UsageError:
        return
    assert host and 0 <= port <= 65535


@SETTINGS
@given(st.one_of(
    st.text(max_size=200),
    st.builds(lambda port, dev, key: f'[[device]]\nport = {port}\ndevice_id = {dev}\nkey = {key}\n',
              st.sampled_from(['"/dev/pts/3"', '3', '""', '"tcp://127.0.0.1:1"', '[1]']),
              st.sampled_from(['1', '-1', '0', '4294967296', '"x"', '1.5']),
              st.sampled_from(['"00"', '"' + "ab" * 32 + '"', '5', '"zz"']))))
def test_fleet_file_reads_or_is_refused(tmp_path_factory, text):
    path = Path(tmp_path_factory.mktemp("fleet")) / "fleet.toml"
    path.write_text(text)
    try:
        devices = read_fleet_file(path)
    except UsageError as exc:
        assert str(exc).startswith(f"fleet file {path}")
        return
    assert devices and all(d.port for d in devices)
