"""Running boards on ports, bad input: one line each, before any work (no bundle, no board
built). The ports are real ptys; the "boards" on them write frames made by the runtime's C
(fltiny.native.proto), so the probe sees exactly what a board would send. Also the fleet file
and the provisioning record (fltiny.provision) and the flash command's provisioning errors.
"""

from __future__ import annotations

import os
import threading
import time
import tty
from pathlib import Path

import pytest

from fltiny.errors import UsageError
from fltiny.provision import (
    PortDevice,
    next_device_id,
    read_fleet_file,
    record_device,
    render_fleet_file,
    write_fleet_file,
)


def _one_error_line(code: int, out: str, err: str, words: list[str]) -> str:
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "internal error" not in errors[0], err
    for w in words:
        assert w in errors[0], (w, errors[0])
    return errors[0]


class FakePort:
    """A pty whose far end repeats one frame every 0.1 s, as a board retransmits its HELLO."""

    def __init__(self, frame: bytes | None) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.frame = frame
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while self.frame is not None and not self.stop.wait(0.1):
            try:
                os.write(self.master, self.frame)
            except BlockingIOError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        os.close(self.master)
        os.close(self.slave)


def _frame(msg, device_id: int = 7, seq: int = 1, key: bytes | None = None) -> bytes:
    from fltiny.build.project import DEV_KEY
    from fltiny.native.proto import Header, encode_frame

    payload = msg.encode()
    return encode_frame(Header(int(msg.TYPE), device_id, seq, payload_len=len(payload)), payload,
                        key or DEV_KEY)


def _hello(name: str = "qemu-m4f"):
    from fltiny.native.messages import Hello

    return Hello(name=name, capabilities=1, firmware_version=1, model_hash=bytes(8),
                 model_version=0, head_params=10, free_ram=1000)


@pytest.fixture()
def port():
    ports: list[FakePort] = []

    def make(frame: bytes | None) -> FakePort:
        p = FakePort(frame)
        ports.append(p)
        return p

    yield make
    for p in ports:
        p.close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FLTINY_BUILD_DIR", str(tmp_path / "build"))


def test_port_that_does_not_exist(cli, tmp_path):
    t0 = time.perf_counter()
    code, out, err = cli("run", "--port", "/dev/pts/no-such-port", "--out", tmp_path / "o")
    _one_error_line(code, out, err, ["--port /dev/pts/no-such-port does not exist"])
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "o").exists()


def test_port_that_answers_nothing(cli, tmp_path, port):
    silent = port(None)
    t0 = time.perf_counter()
    code, out, err = cli("run", "--port", silent.path, "--hello-timeout", "0.5",
                         "--out", tmp_path / "o")
    _one_error_line(code, out, err, [f"--port {silent.path}: no HELLO within 0.5 s",
                                     "nothing arrived", "reset it"])
    assert time.perf_counter() - t0 < 5


def test_port_whose_frames_no_key_authenticates(cli, tmp_path, port):
    p = port(_frame(_hello(), key=os.urandom(32)))
    code, out, err = cli("run", "--port", p.path, "--hello-timeout", "1", "--out", tmp_path)
    _one_error_line(code, out, err, ["none authenticated by a known key", "fltiny flash"])


def test_board_that_already_said_hello_elsewhere(cli, tmp_path, port):
    from fltiny.native.messages import Log

    p = port(_frame(Log("round 3"), seq=40))  # authenticated, but no HELLO any more
    code, out, err = cli("run", "--port", p.path, "--hello-timeout", "1", "--out", tmp_path)
    _one_error_line(code, out, err, ["sends frames but no HELLO", "reset it"])


def test_board_of_another_kind_or_unknown(cli, tmp_path, port):
    p = port(_frame(_hello("qemu-m4f")))
    code, out, err = cli("run", "--port", p.path, "--board", "esp32", "--hello-timeout", "2",
                         "--out", tmp_path)
    _one_error_line(code, out, err, ["the board says it is 'qemu-m4f', not esp32"])
    q = port(_frame(_hello("my-own-board")))
    code, out, err = cli("run", "--port", q.path, "--hello-timeout", "2", "--out", tmp_path)
    _one_error_line(code, out, err, ["'my-own-board', not a board fltiny knows", "--board"])


def test_two_ports_with_one_device_id(cli, tmp_path, port):
    a, b = port(_frame(_hello())), port(_frame(_hello()))
    code, out, err = cli("run", "--port", a.path, "--port", b.path, "--hello-timeout", "2",
                         "--out", tmp_path)
    _one_error_line(code, out, err, ["hold the same device id 7", "--device-id"])


def test_fleet_file_device_id_must_match_the_board(cli, tmp_path, port):
    p = port(_frame(_hello(), device_id=5))
    f = tmp_path / "fleet.toml"
    write_fleet_file(f, [PortDevice(p.path, "qemu-m4f", 6)])
    code, out, err = cli("run", "--fleet-file", f, "--hello-timeout", "2", "--out", tmp_path)
    _one_error_line(code, out, err, ["the board is device 5, the fleet file says device 6"])


def test_keys_from_the_provisioning_record(cli, tmp_path, port):
    """The record's key authenticates its board; a board claiming a provisioned device id
    with the public development key is refused."""
    from fltiny.provision import record_path

    key = os.urandom(32)
    record_device(record_path(tmp_path / "build"), PortDevice("/dev/ttyUSB9", "qemu-m4f", 7, key))
    impostor = port(_frame(_hello(), device_id=7))  # the development key
    code, out, err = cli("run", "--port", impostor.path, "--hello-timeout", "2", "--out", tmp_path)
    _one_error_line(code, out, err, ["device 7 has its own key", "public development key"])
    other = port(_frame(_hello(), device_id=8, key=key))  # device 7's key, another id
    code, out, err = cli("run", "--port", other.path, "--hello-timeout", "2", "--out", tmp_path)
    _one_error_line(code, out, err, ["says it is device 8 but holds the key recorded for "
                                     "device 7"])


@pytest.mark.parametrize(("args", "words"), [
    (["--port", "/dev/null", "--fleet", "qemu-m4f=2"], ["--port drives boards that are already "
                                                       "running, --fleet starts emulated ones"]),
    (["--port", "/dev/null", "--devices", "3"], ["--port", "--devices starts emulated ones"]),
    (["--port", "/dev/null", "--fleet-file", "f.toml"], ["--port or with --fleet-file, not both"]),
    (["--port", "/dev/null", "--port", "/dev/null"], ["port /dev/null appears twice"]),
    (["--fleet-file", "/no/such/fleet.toml"], ["fleet file /no/such/fleet.toml does not exist"]),
], ids=["port-and-fleet", "port-and-devices", "port-and-fleet-file", "port-twice", "no-file"])
def test_conflicting_options(cli, tmp_path, args, words):
    code, out, err = cli("run", *args, "--out", tmp_path / "o")
    _one_error_line(code, out, err, words)
    assert not (tmp_path / "o").exists()


BAD_FLEET_FILES = [
    ("not-toml", "[[device]\nport = 1", ["is not valid TOML"]),
    ("empty", "", ["lists no device"]),
    ("no-port", "[[device]]\nboard = \"esp32\"\n", ["device 1 has no port"]),
    ("unknown-field", "[[device]]\nport = \"/dev/x\"\nspeed = 9600\n", ["unknown field 'speed'"]),
    ("bad-id", "[[device]]\nport = \"/dev/x\"\ndevice_id = 0\n", ["device_id must be an integer"]),
    ("id-string", "[[device]]\nport = \"/dev/x\"\ndevice_id = \"3\"\n", ["device_id must be"]),
    ("bad-key", "[[device]]\nport = \"/dev/x\"\nkey = \"abcd\"\n", ["the key must be 64 hex"]),
    ("two-ids", "[[device]]\nport = \"/dev/x\"\ndevice_id = 2\n[[device]]\nport = \"/dev/y\"\n"
     "device_id = 2\n", ["device id 2 appears twice (devices 1 and 2)"]),
    ("two-ports", "[[device]]\nport = \"/dev/x\"\n[[device]]\nport = \"/dev/x\"\n",
     ["port /dev/x appears twice"]),
    ("top-level-key", "port = \"/dev/x\"\n", ["unknown table or key 'port'", "[[device]]"]),
    ("device-not-table", "device = [1, 2]\n", ["device 1 is not a table"]),
]


@pytest.mark.parametrize(("case", "text", "words"), BAD_FLEET_FILES,
                         ids=[c[0] for c in BAD_FLEET_FILES])
def test_malformed_fleet_file(cli, tmp_path, case, text, words):
    f = tmp_path / "fleet.toml"
    f.write_text(text)
    code, out, err = cli("run", "--fleet-file", f, "--out", tmp_path / "o")
    line = _one_error_line(code, out, err, [f"fleet file {f}", *words])
    assert "key" not in case or "abcd" not in line  # a key is never echoed


def test_fleet_file_round_trip_and_record(tmp_path):
    key = bytes(range(32))
    devices = [PortDevice("/dev/ttyUSB0", "esp32", 3, key), PortDevice('/dev/we"ird\\\x7f'),
               PortDevice("tcp://10.0.0.5:7000", None, 9)]
    f = tmp_path / "fleet.toml"
    write_fleet_file(f, devices, "a header\nof two lines")
    assert read_fleet_file(f) == devices
    assert f.stat().st_mode & 0o777 == 0o600  # it holds a key
    assert key.hex() not in repr(devices[0]) and "<set>" in repr(devices[0])
    assert render_fleet_file(devices[1:]).count("[[device]]") == 2

    record = tmp_path / "build" / "devices.toml"
    assert next_device_id(record) == 1 and read_fleet_file(record, missing_ok=True) == []
    record_device(record, PortDevice("/dev/ttyUSB0", "esp32", 1, key))
    record_device(record, PortDevice("/dev/ttyUSB0", "stm32f4", 2, bytes(32)))  # same cable
    assert next_device_id(record) == 3
    record_device(record, PortDevice("/dev/ttyACM0", "stm32f4", 1, bytes([7]) * 32))  # re-flash
    got = read_fleet_file(record, unique_ports=False)
    assert [(d.device_id, d.port, d.board) for d in got] == [
        (1, "/dev/ttyACM0", "stm32f4"), (2, "/dev/ttyUSB0", "stm32f4")]
    assert got[0].key == bytes([7]) * 32
    assert record.stat().st_mode & 0o777 == 0o600
    assert "keep it private" in record.read_text()
    with pytest.raises(UsageError, match="needs its device id and key"):
        record_device(record, PortDevice("/dev/x"))


def test_run_options_from_python(tmp_path):
    from fltiny.experiment import RunOptions

    opts = RunOptions(ports="/dev/ttyUSB0", port_board="esp32", out=tmp_path)
    assert opts.ports == ("/dev/ttyUSB0",) and opts.on_ports and opts.devices == 1
    assert opts.serial_devices() == [PortDevice("/dev/ttyUSB0", "esp32")]
    f = tmp_path / "fleet.toml"
    write_fleet_file(f, [PortDevice("/dev/a"), PortDevice("/dev/b", "qemu-m3", 4)])
    opts = RunOptions(fleet_file=f, port_board="esp32", out=tmp_path)
    assert [d.board for d in opts.serial_devices()] == ["esp32", "qemu-m3"] and opts.devices == 2
    assert not RunOptions(out=tmp_path).on_ports
    with pytest.raises(UsageError, match="not both"):
        RunOptions(ports=("/dev/a",), fleet_file=f)


@pytest.mark.parametrize(("args", "words"), [
    (["--board", "esp32", "--port", "/dev/null", "--key", "zz"], ["--key: the key must be 64 hex"]),
    (["--board", "esp32", "--port", "/dev/null", "--device-id", "0"], ["'--device-id'"]),
    (["--board", "qemu-m4f", "--port", "/dev/null"], ["is emulated", "fltiny emulate"]),
])
def test_flash_provisioning_errors(cli, tmp_path, args, words):
    code, out, err = cli("flash", *args, "--record", tmp_path / "devices.toml")
    assert code == 2 and "Traceback" not in err
    assert all(w in err for w in words), err
    assert not (tmp_path / "devices.toml").exists()


@pytest.mark.slow
def test_failed_flash_records_nothing(cli, har_tiny_bundle, tmp_path):
    """esp32 cannot be built here (no Xtensa toolchain, no PlatformIO registry): the flash
    stops with one line, and the record stays empty (only a successful upload is recorded)."""
    record = tmp_path / "devices.toml"
    code, out, err = cli("flash", "--board", "esp32", "--port", "/dev/null", "--bundle",
                         har_tiny_bundle, "--out", tmp_path / "fw", "--record", record,
                         "--device-id", "4")
    assert code != 0 and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("error: ")]) == 1, err
    assert not record.exists()


@pytest.mark.slow
def test_board_running_another_model(cli, har_tiny_bundle, tmp_path, port):
    p = port(_frame(_hello()))  # model hash 0...0
    code, out, err = cli("run", "--port", p.path, "--hello-timeout", "2", "--bundle",
                         har_tiny_bundle, "--out", tmp_path / "o")
    _one_error_line(code, out, err, ["device 7 runs another model (hash 0000000000000000",
                                     "fltiny flash --board qemu-m4f"])


def test_probe_keeps_the_link_for_the_session(port):
    from fltiny.bridge.ports import probe
    from fltiny.build.project import DEV_KEY

    p = port(_frame(_hello(), device_id=12))
    got = probe(p.path, [os.urandom(32), DEV_KEY], 3.0)
    try:
        assert got.device_id == 12 and got.hello.name == "qemu-m4f"
        data = b""
        end = time.monotonic() + 2
        while b"\0" not in data and time.monotonic() < end:
            data += got.link.receive()
        assert b"\0" in data  # the next retransmission arrives on the same, open link
    finally:
        got.link.close()
    assert Path(p.path).exists()


class _SocketBoard:
    """Stands in for fltiny.devices.fleet.Device: one end of a socket pair is the board's
    serial line (the PtyBridge only calls connect())."""

    def __init__(self) -> None:
        import socket

        self.board, self.line = socket.socketpair()

    def connect(self):
        return self.line


def _read(port, n: int, timeout: float = 3.0) -> bytes:
    data = b""
    end = time.monotonic() + timeout
    while len(data) < n and time.monotonic() < end:
        data += port.read(n - len(data))
    return data


def test_pty_bridge_carries_binary_bytes_both_ways_and_survives_a_reopen():
    """Every byte value crosses the pty unchanged (raw mode: no echo, no CR/LF or XON/XOFF
    processing); a host can close the port and open it again (the bridge holds the slave)."""
    import serial

    from fltiny.devices.pty import PtyBridge

    fake = _SocketBoard()
    every = bytes(range(256)) * 4
    with PtyBridge([fake]) as bridge:  # type: ignore[list-item]
        path = bridge.lines[0].path
        assert path.startswith("/dev/pts/")
        for _ in range(2):  # open, use, close, and again
            port = serial.Serial(path, 115200, timeout=0.1)
            try:
                fake.board.sendall(every)
                assert _read(port, len(every)) == every
                port.write(every[::-1])
                got = b""
                end = time.monotonic() + 3
                while len(got) < len(every) and time.monotonic() < end:
                    got += fake.board.recv(4096)
                assert got == every[::-1]
                assert _read(port, 1, 0.3) == b""  # nothing echoed back
            finally:
                port.close()
            fake.board.sendall(b"\x11\x13 while nobody reads")  # queued, then flushed on open
            time.sleep(0.2)  # (the bridge has moved it into the pty before the next open)
    fake.board.close()
