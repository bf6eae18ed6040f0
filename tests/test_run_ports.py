"""Boards whose data the host never sees (issue 12): ``fltiny emulate --pty`` boards driven by
``fltiny run --port``, the same boards with the host holding their data (every update replayed),
a board whose DELTA a proxy alters and re-signs with the board's key (rejected by validation
with its reason), boards found through a fleet file and through the provisioning record.

Everything is real: QEMU boards running the firmware, the runtime's C for frames, sessions,
payloads and the simulator. Held-out accuracy: three HAPT users and five rounds do not lift it
(measured on the simulator over three 5-epoch factory seeds, --strategy fedavg: -0.9, -3.6 and
-3.1 points; FedDyn -3.1, -7.2, -4.4), while each device's personal accuracy rises (fedavg
+5.7, +10.6, +5.3 points; FedDyn +8.5, +9.6, +18.1). So the test pins the run to the
simulator bit for bit (same checkpoints: "as in the simulator"), bounds the held-out loss and
asks the personal metric to rise.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.cross,
              pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")]

ROUNDS = 5
SETTINGS = ["--rounds", str(ROUNDS), "--strategy", "fedavg"]


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ports-build")


@pytest.fixture()
def isolated(build_root, monkeypatch):
    """FLTINY_BUILD_DIR: no provisioning record of the checkout is read."""
    monkeypatch.setenv("FLTINY_BUILD_DIR", str(build_root))
    return build_root


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@contextmanager
def emulate_pty(bundle: Path, build_root: Path, n: int = 3, fleet_file: Path | None = None):
    """``fltiny emulate --pty`` as a user starts it; yields the pty path of each board and
    stops it with SIGTERM (every QEMU child must be gone)."""
    cmd = [sys.executable, "-m", "fltiny.cli", "emulate", "--board", "qemu-m4f", "-n", str(n),
           "--pty", "--bundle", str(bundle)]
    if fleet_file is not None:
        cmd += ["--fleet-file", str(fleet_file)]
    env = dict(os.environ, FLTINY_BUILD_DIR=str(build_root))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    kids: list[int] = []
    try:
        ptys = []
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("qemu-m4f["):
                ptys.append(line.split()[-1])
            if line.startswith("running"):
                break
        assert len(ptys) == n and all(p.startswith("/dev/pts/") for p in ptys), ptys
        kids = _children(proc.pid)
        assert len(kids) == n
        yield ptys
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{k}") for k in kids):
        time.sleep(0.1)
    assert not [k for k in kids if os.path.exists(f"/proc/{k}")]


@pytest.fixture(scope="module")
def simulated(har_tiny_bundle, tmp_path_factory):
    """The same experiment on the simulator: 3 devices with the boards' 256 windows."""
    from fltiny.experiment import DataSettings, RoundConfig, SimConfig, simulate

    res = simulate(SimConfig(clients=3, max_windows=256, strategy="fedavg",
                             out=tmp_path_factory.mktemp("ports-sim"),
                             data=DataSettings(bundle=har_tiny_bundle),
                             server=RoundConfig(rounds=ROUNDS)))
    return res


def _history(store_path: Path):
    from fltiny.server.store import RunStore

    store = RunStore(store_path)
    try:
        return [c.sha256 for c in store.history()], store.updates()
    finally:
        store.close()


def test_pty_boards_whose_data_the_host_never_sees(cli, har_tiny_bundle, isolated, simulated,
                                                   tmp_path, monkeypatch):
    import fltiny.devices.data as data

    def never(*_a, **_k):
        raise AssertionError("the run process touched the devices' data")

    monkeypatch.setattr(data, "fleet_blobs", never)
    monkeypatch.setattr(data.DataBlob, "encode", never)
    out = tmp_path / "report"
    with emulate_pty(har_tiny_bundle, isolated) as ptys:
        args = [a for p in ptys for a in ("--port", p)]
        code, stdout, stderr = cli("run", *args, *SETTINGS, "--bundle", har_tiny_bundle,
                                   "--out", out)
    assert code == 0, stderr
    print(stdout)
    assert (f"0 updates replay-verified, {3 * ROUNDS} not replay-verified (the host holds no "
            "data of 3 device(s)") in stdout
    assert "device-rounds replayed" not in stdout
    hashes, updates = _history(out / "run.sqlite")
    assert len(hashes) == ROUNDS + 1 and len(updates) == 3 * ROUNDS
    for u in updates:
        f = u["figures"]
        assert u["accepted"] == 1, u
        assert f["verification"] == "checks" and not f["replayed"] and not f["replay_match"]
        assert f["personal_n"] > 0 and 0 <= f["personal_metric"] <= 1  # from each DELTA
    # as in the simulator: the same checkpoints, bit for bit
    assert hashes == [c["sha256"] for c in _sim_checkpoints(simulated)]
    rounds = simulated.rounds
    assert rounds[-1]["accuracy"] > rounds[0]["accuracy"] - 0.05, [r["accuracy"] for r in rounds]
    personal = [r["personal_accuracy"] for r in rounds[1:]]
    assert personal[-1] > personal[0] + 0.03, personal


def _sim_checkpoints(result):
    from fltiny.server.store import RunStore

    store = RunStore(result.store)
    try:
        return [{"sha256": c.sha256} for c in store.history()]
    finally:
        store.close()


def test_same_boards_with_their_data_on_the_host_replay_every_update(har_tiny_bundle, isolated,
                                                                     simulated, tmp_path):
    """Today's path: the host starts the boards with their blobs and replays every round."""
    from fltiny.experiment import DataSettings, RoundConfig
    from fltiny.run.runner import RunOptions, run

    res = run(RunOptions(fleet=(("qemu-m4f", 3),), strategy="fedavg",
                         server=RoundConfig(rounds=ROUNDS), out=tmp_path / "report",
                         data=DataSettings(bundle=har_tiny_bundle), build_root=isolated),
              say=print, log=print)
    s = res.summary
    assert s["replay_verified"] == 3 * ROUNDS and s["not_replay_verified"] == 0
    assert s["devices_without_host_data"] == 0
    hashes, updates = _history(tmp_path / "report" / "run.sqlite")
    assert all(u["figures"]["verification"] == "replay" for u in updates)
    assert hashes == [c["sha256"] for c in _sim_checkpoints(simulated)]


class ResigningProxy:
    """host <-> proxy <-> board over TCP. It holds the board's key (a compromised board): it
    alters the DELTA of some rounds and signs the frame again, so the host's session accepts it
    (valid tag, CRC, sequence) and only validation can refuse it."""

    def __init__(self, upstream: tuple[str, int], key: bytes, tamper) -> None:
        self.key, self.tamper = key, tamper
        self.up = socket.create_connection(upstream)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(2)
        self.url = f"tcp://127.0.0.1:{self.lsock.getsockname()[1]}"
        self.client: socket.socket | None = None
        self.buf = b""
        self.altered: set[int] = set()
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _board_bytes(self, data: bytes) -> bytes:
        from dataclasses import replace

        from fltiny.native.messages import Delta, MsgType
        from fltiny.native.proto import decode_wire, encode_frame

        *frames, self.buf = (self.buf + data).split(b"\0")
        out = b""
        for raw in frames:
            if raw:
                f = decode_wire(raw, self.key)
                if f.header.type == MsgType.DELTA and f.header.chunk_count == 1:
                    rnd = Delta.decode(f.payload).round
                    changed = self.tamper(rnd, bytearray(f.payload))
                    if changed is not None:
                        self.altered.add(rnd)
                        out += encode_frame(replace(f.header, payload_len=len(changed)),
                                            bytes(changed), self.key)
                        continue
            out += raw + b"\0"
        return out

    def _loop(self) -> None:
        while not self.stop:
            socks = [self.up, self.lsock] + ([self.client] if self.client else [])
            ready, _, _ = select.select(socks, [], [], 0.05)
            for s in ready:
                if s is self.lsock:
                    if self.client:
                        self.client.close()
                    self.client, _ = self.lsock.accept()
                    continue
                data = s.recv(4096)
                if s is self.up:
                    if not data:
                        return
                    if self.client:
                        self.client.sendall(self._board_bytes(data))
                elif not data:
                    self.client.close()
                    self.client = None
                else:
                    self.up.sendall(data)

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        for s in (self.client, self.lsock, self.up):
            if s:
                s.close()


# what a compromised board sends in each round: DELTA = 24-byte header (round, base version,
# examples, loss, personal_n, personal metric) + the delta payload, whose first scale is found
# by the runtime's own decoder (fltiny.native.delta) and overwritten in place
def _tamper_with(n_params: int):
    from dataclasses import replace

    from fltiny.native.delta import PayloadDecoder
    from fltiny.native.messages import Delta

    decoder = PayloadDecoder(n_params)

    def first_scale(p: bytearray) -> int:
        head = len(p) - len(Delta.decode(bytes(p)).body)  # the DELTA's varint head
        scale = struct.pack("<f", float(decoder.decode(bytes(p[head:])).scales[0]))
        assert p.count(scale, head) == 1  # its four bytes are where it is, and only there
        return p.index(scale, head)

    def tamper(rnd: int, p: bytearray) -> bytearray | None:
        if rnd == 1:  # every value x 10^4: a valid payload with an absurd norm
            at = first_scale(p)
            struct.pack_into("<f", p, at, struct.unpack_from("<f", p, at)[0] * 1e4)
        elif rnd == 2:  # more examples than its board can train on (a bigger FedAvg weight)
            p = bytearray(replace(Delta.decode(bytes(p)), examples=100_000).encode())
        elif rnd == 3:  # an accuracy of 1.5
            p = bytearray(replace(Delta.decode(bytes(p)), personal_metric=1.5).encode())
        elif rnd == 4:  # an infinite scale: the payload decoder refuses it
            struct.pack_into("<f", p, first_scale(p), float("inf"))
        else:
            return None
        return p

    return tamper


def _board_elf(bundle: Path, build_root: Path, **kw) -> Path:
    from fltiny.boards import get_board
    from fltiny.build.firmware import build_firmware

    name = "keyed" if kw else "plain"
    return build_firmware(get_board("qemu-m4f"), bundle, build_root / "fw-test" / name,
                          **kw).elf


def test_tampered_update_without_replay_is_rejected_with_its_reason(cli, har_tiny_bundle,
                                                                    isolated, tmp_path):
    """Two boards from a fleet file (TCP URLs), the host holding none of their data; the
    second one's DELTAs are altered and re-signed: each is refused with its reason, the honest
    board's updates reach the model."""
    from fltiny.boards import get_board
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.export.bundle import Bundle
    from fltiny.provision import PortDevice, write_fleet_file

    board = get_board("qemu-m4f")
    elf = _board_elf(har_tiny_bundle, isolated)
    blobs = [b.encode() for b in fleet_blobs(har_tiny_bundle, 2, max_windows=board.max_windows)]
    out = tmp_path / "report"
    with start_fleet(board, elf, blobs) as fleet:
        honest, bad = fleet.devices
        n_params = Bundle.load(har_tiny_bundle).head.n_params
        proxy = ResigningProxy((bad.host, bad.port), DEV_KEY, _tamper_with(n_params))
        try:
            fleet_file = tmp_path / "fleet.toml"
            write_fleet_file(fleet_file, [
                PortDevice(f"tcp://{honest.endpoint}", "qemu-m4f", honest.device_id),
                PortDevice(proxy.url, "qemu-m4f", bad.device_id)])
            code, stdout, stderr = cli("run", "--fleet-file", fleet_file, "--rounds", "5",
                                       "--epochs", "1", "--bundle", har_tiny_bundle,
                                       "--out", out)
        finally:
            proxy.close()
    assert code == 0, stderr
    assert proxy.altered == {1, 2, 3, 4}
    _, updates = _history(out / "run.sqlite")
    by = {(u["round"], u["device_id"]): u for u in updates}
    for rnd in range(1, 6):
        assert by[(rnd, honest.device_id)]["accepted"] == 1
        assert by[(rnd, honest.device_id)]["figures"]["verification"] == "checks"
    reasons = {rnd: by[(rnd, bad.device_id)]["reason"] for rnd in range(1, 5)}
    print(reasons)
    assert all(by[(rnd, bad.device_id)]["accepted"] == 0 for rnd in range(1, 5))
    assert reasons[1].startswith("norm ") and "above bound" in reasons[1]
    assert "--max-update-norm" in reasons[1]
    assert reasons[2] == "example count 100000 above the 256 windows its board trains on"
    assert reasons[3] == "personal metric 1.5 out of range [0, 1]"
    assert reasons[4] == "payload rejected: FLT_ERR_NONFINITE"
    assert by[(5, bad.device_id)]["accepted"] == 1  # untouched again: accepted
    assert "8 updates replay-verified" not in stdout
    assert "0 updates replay-verified" in stdout


def test_provisioned_key_is_found_in_the_record(cli, har_tiny_bundle, isolated, tmp_path):
    """A board flashed with its own key: 'fltiny run --port' takes the key from the
    provisioning record (what 'fltiny flash' writes); without the record it cannot
    authenticate the board and says so in one line."""
    from fltiny.boards import get_board
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.flash import Provisioning, record_flashed
    from fltiny.provision import read_fleet_file, record_path

    key = bytes(range(32))
    board = get_board("qemu-m4f")
    elf = _board_elf(har_tiny_bundle, isolated, key=key)
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=board.max_windows)[0].encode()
    record = record_path(isolated)
    with start_fleet(board, elf, [blob]) as fleet:
        url = f"tcp://{fleet.devices[0].endpoint}"
        code, _out, err = cli("run", "--port", url, "--hello-timeout", "3", "--rounds", "1",
                              "--bundle", har_tiny_bundle, "--out", tmp_path / "no-record")
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
        assert "none authenticated by a known key" in errors[0]
        record_flashed(Provisioning(1, key, record), board, url)
        try:
            assert read_fleet_file(record, unique_ports=False)[0].key == key
            assert record.stat().st_mode & 0o777 == 0o600
            code, out, err = cli("run", "--port", url, "--rounds", "1", "--epochs", "1",
                                 "--bundle", har_tiny_bundle, "--out", tmp_path / "report")
        finally:
            record.unlink()
    assert code == 0, err
    assert "0 updates replay-verified, 1 not replay-verified" in out


def test_fleet_file_of_emulate_drives_the_boards(cli, har_tiny_bundle, isolated, tmp_path):
    """'fltiny emulate --pty --fleet-file F' then 'fltiny run --fleet-file F'."""
    fleet_file = tmp_path / "pty-fleet.toml"
    with emulate_pty(har_tiny_bundle, isolated, n=2, fleet_file=fleet_file) as ptys:
        from fltiny.provision import read_fleet_file

        listed = read_fleet_file(fleet_file)
        assert [d.port for d in listed] == ptys and [d.device_id for d in listed] == [1, 2]
        code, out, err = cli("run", "--fleet-file", fleet_file, "--rounds", "1", "--epochs",
                             "1", "--bundle", har_tiny_bundle, "--out", tmp_path / "report")
    assert code == 0, err
    assert "0 updates replay-verified, 2 not replay-verified" in out


def test_a_new_run_drives_boards_an_earlier_run_drove(cli, har_tiny_bundle, isolated,
                                                      tmp_path):
    """Boards outlive a run: a second 'fltiny run' (a new run, not --resume) on the same
    running boards asks each for a HELLO (their device ids are in the fleet file), continues
    above the sequence numbers the first run used and resets their round state; without the
    device ids it cannot ask and says so in one line."""
    fleet_file = tmp_path / "pty-fleet.toml"
    with emulate_pty(har_tiny_bundle, isolated, n=2, fleet_file=fleet_file) as ptys:
        runs = []
        for i, rounds in enumerate((1, 2)):
            runs.append(cli("run", "--fleet-file", fleet_file, "--rounds", str(rounds),
                            "--epochs", "1", "--bundle", har_tiny_bundle,
                            "--out", tmp_path / f"run{i}"))
        ports = [a for p in ptys for a in ("--port", p)]
        no_ids = cli("run", *ports, "--hello-timeout", "4", "--rounds", "1", "--bundle",
                     har_tiny_bundle, "--out", tmp_path / "no-ids")
    for code, _out, err in runs:
        assert code == 0, err
    assert "0 updates replay-verified, 2 not replay-verified" in runs[0][1]
    assert "0 updates replay-verified, 4 not replay-verified" in runs[1][1]
    _hashes, updates = _history(tmp_path / "run1" / "run.sqlite")
    assert len(updates) == 4 and all(u["accepted"] == 1 for u in updates), updates
    code, _out, err = no_ids
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert "already answered an earlier run" in errors[0]
    assert "when it knows its device id: give it in a fleet file" in errors[0]


def test_probe_learns_device_id_board_and_key(har_tiny_bundle, isolated):
    """The probe reads a board's HELLO without answering it: the bridge's session gets the
    next retransmission (so a run right after a probe still starts)."""
    from fltiny.boards import get_board
    from fltiny.bridge.ports import probe
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.link import socket_session

    board = get_board("qemu-m4f")
    elf = _board_elf(har_tiny_bundle, isolated)
    blob = fleet_blobs(har_tiny_bundle, 3, max_windows=board.max_windows)[2].encode()
    with start_fleet(board, elf, [blob]) as fleet:
        p = probe(f"tcp://{fleet.devices[0].endpoint}", [os.urandom(32), DEV_KEY], 10.0)
        try:
            assert (p.device_id, p.key, p.hello.name) == (3, DEV_KEY, "qemu-m4f")
            assert p.hello.model_version == 0
            s = socket_session(p.link.sock, DEV_KEY, 3)
            assert s.recv(5).name == "qemu-m4f"  # the retransmitted HELLO
        finally:
            p.link.close()
