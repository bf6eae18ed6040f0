"""Native boards over MQTT/TLS through a real mosquitto on loopback (random free ports, started
and stopped by each test): five rounds of four boards with every DELTA replayed byte for byte,
a mixed fleet (QEMU on serial, native on MQTT), a frame injected on another device's topic with
the ACL switched off (the per-device tag still rejects it), a broker restart in mid-round, and a
device that is offline for a round and takes part in the next."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mqtt_support import Client, CuttableProxy

pytestmark = [pytest.mark.slow]



@pytest.fixture(autouse=True)
def _mosquitto_installed():
    if not (shutil.which("mosquitto") or os.access("/usr/sbin/mosquitto", os.X_OK)) or not (
            Path("/usr/include/mosquitto.h").is_file()):
        pytest.fail("mosquitto / libmosquitto-dev are not installed: run make setup",
                    pytrace=False)

TRAIN = dict(epochs=1, batch_size=16, learning_rate=0.002, topk_fraction=0.05)


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mqtt-build")


@pytest.fixture(scope="module")
def native_elf(har_tiny_bundle, build_root) -> Path:
    from fltiny.boards import get_board
    from fltiny.run.runner import cached_firmware

    return cached_firmware(get_board("native"), har_tiny_bundle, build_root, print)


def test_four_native_boards_five_rounds_over_mqtt_tls(har_tiny_bundle, build_root, native_elf,
                                                       tmp_path):
    from fltiny.experiment import DataSettings, RoundConfig
    from fltiny.run.runner import RunOptions, run

    out = tmp_path / "report"
    res = run(RunOptions(fleet=[("native", 4)], transport="mqtt",
                         server=RoundConfig(rounds=5, deadline_s=60),
                         data=DataSettings(bundle=har_tiny_bundle), out=out,
                         build_root=build_root), say=print, log=print)
    s = res.summary
    assert s["device_rounds"] == 20 and s["replayed"] == 20
    assert s["replay_identical"] == 20 and s["replay_mismatches"] == 0
    assert s["global_kinds"]["delta"] >= 12  # rounds 2-5: compressed GLOBALs over MQTT too
    log = (out / "broker" / "mosquitto.log").read_text()
    for n in range(1, 5):  # each board had its own identity, taken from its certificate
        assert f"u'device-{n}'" in log
    assert "u'fltiny-host'" in log
    assert not (out / "broker" / "broker.json").exists()  # the run stopped its broker


@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_mixed_fleet_qemu_on_serial_native_on_mqtt(har_tiny_bundle, build_root, native_elf,
                                                   tmp_path):
    from fltiny.experiment import DataSettings, RoundConfig
    from fltiny.run.runner import RunOptions, run

    out = tmp_path / "report"
    res = run(RunOptions(fleet=[("qemu-m4f", 1), ("native", 1)], transport="mqtt",
                         server=RoundConfig(rounds=2, deadline_s=60),
                         data=DataSettings(bundle=har_tiny_bundle), out=out,
                         build_root=build_root), say=print, log=print)
    s = res.summary
    assert s["fleet"] == {"qemu-m4f": 1, "native": 1}
    assert s["replayed"] == 4 and s["replay_mismatches"] == 0
    log = (out / "broker" / "mosquitto.log").read_text()
    assert "u'device-2'" in log and "u'device-1'" not in log  # only the native board on MQTT


@contextmanager
def mqtt_fleet(bundle: Path, elf: Path, fleet_dir: Path, n: int, *, acl: bool = True,
               proxy_for: int | None = None):
    """n native boards on a fresh broker and a BridgeFleet over them, yielded as (broker,
    FleetBroker, boards, BridgeFleet, HostRound, proxy); device ``proxy_for`` reaches the broker
    through a CuttableProxy (else proxy is None)."""
    from fltiny.boards import get_board
    from fltiny.bridge.fleet import BridgeFleet, Endpoint
    from fltiny.broker.fleet import FleetBroker
    from fltiny.broker.mosquitto import Broker
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.replay import HostRound

    board = get_board("native")
    blobs = fleet_blobs(bundle, n, max_windows=64)
    hr = HostRound(bundle)
    model_hash = hashlib.sha256((bundle / "backbone.tflite").read_bytes()).digest()[:8]
    with ExitStack() as stack:
        broker = stack.enter_context(Broker(fleet_dir, acl=acl))
        fb = stack.enter_context(FleetBroker(fleet_dir))
        proxy = None
        if proxy_for is not None:
            proxy = CuttableProxy((broker.host, broker.port))
            stack.callback(proxy.close)

        def identity(device_id: int):
            ident = fb.identity(device_id)
            return replace(ident, port=proxy.port) if proxy and device_id == proxy_for else ident

        boards = stack.enter_context(start_fleet(board, elf, [b.encode() for b in blobs],
                                                 mqtt=identity))
        hub = fb.hub
        eps = [Endpoint(dev.device_id, f"mqtt://device-{dev.device_id}", b, board.max_windows,
                        DEV_KEY, board.name, open=lambda i=dev.device_id: hub.open(i, 2.0))
               for dev, b in zip(boards.devices, blobs, strict=True)]
        bf = BridgeFleet(eps, hr, model_hash=model_hash)
        stack.callback(bf.close)
        yield broker, fb, boards, bf, hr, proxy


class Rounds:
    """Rounds with FedAvg over a BridgeFleet; keeps who was accepted in which round."""

    def __init__(self, bf, hr) -> None:
        from fltiny.server.rounds import TrainParams
        from fltiny.strategies import make_strategy

        self.bf, self.train = bf, TrainParams(**TRAIN)
        self.fedavg = make_strategy("fedavg")
        self.params, self.version = hr.head.params.astype(np.float32), 0
        self.accepted: dict[int, list[int]] = {}

    def run(self, rnd: int, devices: list[int]):
        results = self.bf.run_round(rnd, devices, self.params, self.version, self.train, 0.0, 60)
        updates = [r.update for r in results if r.update is not None]
        ids = [r.device_id for r in results if r.update is not None]
        assert len(ids) == len(set(ids))  # nothing accepted twice
        self.accepted[rnd] = sorted(ids)
        if updates:
            self.params = self.fedavg.aggregate(self.params, updates)
            self.version += 1
        return results


def test_injected_frame_with_the_acl_off_is_rejected_by_the_tag(har_tiny_bundle, native_elf,
                                                                tmp_path):
    from fltiny.broker import topics
    from fltiny.native import messages as m
    from fltiny.native.proto import Sender


    with mqtt_fleet(har_tiny_bundle, native_elf, tmp_path / "fleet", 2, acl=False) as (
            broker, _fb, _boards, bf, hr, _proxy):
        a, b = bf.devices()
        rounds = Rounds(bf, hr)
        rounds.run(1, [a, b])
        pki = broker.pki
        attacker = Client(broker.host, broker.port, pki.ca, pki.device(a).cert,
                          pki.device(a).key, client_id="attacker")
        assert attacker.connect()
        # frames authenticated with a key that is not B's (what device A, holding only its own
        # key, can make), claiming to be B, both ways, with a high sequence number, and raw
        # garbage: on B's up-topic (to the host) and down-topic (to B)
        forged_key = hashlib.sha256(b"not device B's key").digest()
        up = Sender(forged_key, b, on_host=False, retx_ms=400, retries=1, first_seq=1000)
        up.load(m.MsgType.DELTA, bytes(40))
        down = Sender(forged_key, b, on_host=True, retx_ms=400, retries=1, first_seq=1000)
        down.load(m.MsgType.TRAIN, bytes(36))
        frames = [(topics.up_topic(b), up.service(0)[1]), (topics.down_topic(b), down.service(0)[1])]
        assert all(f for _t, f in frames)
        stop = threading.Event()

        def inject() -> None:
            while not stop.is_set():
                for topic, frame in frames:
                    attacker.publish(topic, frame.rstrip(b"\x00"))
                    attacker.publish(topic, b"\x05garbage")
                time.sleep(0.05)

        t = threading.Thread(target=inject)
        t.start()
        try:
            results = rounds.run(2, [a, b])
        finally:
            stop.set()
            t.join()
            attacker.close()
        assert rounds.accepted[2] == [a, b], [r.error for r in results]
        lg = [x for x in bf.logs if x.round == 2 and x.device_id == b][0]
        assert lg.rejected_frames.get("FLT_ERR_AUTH", 0) >= 1
        assert lg.replay_match
        assert bf.replay_mismatches == 0


def test_broker_restart_mid_round(har_tiny_bundle, native_elf, tmp_path):
    with mqtt_fleet(har_tiny_bundle, native_elf, tmp_path / "fleet", 4) as (
            broker, fb, _boards, bf, hr, _proxy):
        ids = bf.devices()
        assert len(ids) == 4
        rounds = Rounds(bf, hr)
        rounds.run(1, ids)

        def restart() -> None:
            time.sleep(0.15)  # the GLOBALs are on their way
            broker.stop()
            time.sleep(0.5)
            broker.start()

        t = threading.Thread(target=restart)
        t.start()
        rounds.run(2, ids)
        t.join()
        assert fb.hub.disconnects >= 1  # the host did lose the broker in round 2
        rounds.run(3, bf.devices())
        assert rounds.accepted[3] == ids  # everyone back; a device lost in round 2 is retried
        assert len(rounds.accepted[2]) >= 1
        assert bf.replay_mismatches == 0
        assert bf.replays == sum(len(v) for v in rounds.accepted.values())


def test_device_offline_for_a_round_gets_the_model_and_joins_the_next(har_tiny_bundle,
                                                                     native_elf, tmp_path):
    with mqtt_fleet(har_tiny_bundle, native_elf, tmp_path / "fleet", 3, proxy_for=2) as (
            _broker, fb, _boards, bf, hr, proxy):
        ids = bf.devices()
        assert ids == [1, 2, 3]
        rounds = Rounds(bf, hr)
        rounds.run(1, ids)
        proxy.cut()  # device 2's network drops (the process and its state live on)
        assert fb.hub.wait_offline(2, 5)  # the broker published its will
        awake = bf.devices()
        assert awake == [1, 3]
        rounds.run(2, awake)
        proxy.restore()  # it reconnects on its own, to its persistent session
        assert fb.hub.wait_online(2, 10)
        back = bf.devices()
        assert back == ids
        rounds.run(3, back)
        assert rounds.accepted == {1: ids, 2: [1, 3], 3: ids}
        kinds = {(lg.round, lg.device_id): lg.global_kind for lg in bf.logs}
        # it holds version 0 (round 1's model) and missed version 1: two behind, so the full
        # model (server.downlink's rule); the others hold version 1: the compressed delta
        assert kinds[(3, 2)] == "full" and kinds[(3, 1)] == kinds[(3, 3)] == "delta"
        dev = bf._devs[2]
        assert dev.resets == 0 and dev.reconnects >= 1  # same protocol session, link reopened
        assert bf.replay_mismatches == 0


def test_esp32_mqtt_project_renders_with_its_certificate(cli, har_tiny_bundle, tmp_path):
    fleet, out = tmp_path / "fleet", tmp_path / "esp32"
    base = ["build", "--board", "esp32", "--bundle", har_tiny_bundle, "--render-only",
            "--broker-dir", fleet, "--device-id", "3", "--out", out]
    code, stdout, err = cli(*base, "--transport", "mqtt", "--wifi-ssid", "lab",
                            "--mqtt-url", "mqtts://192.168.1.10:8883")
    assert code == 0, err
    assert "platformio.ini accepted" in stdout
    header = (out / "include" / "fltiny_mqtt.h").read_text()
    cert_lines = (fleet / "pki" / "device-3.crt").read_text().strip().splitlines()
    assert all(line in header for line in cert_lines)
    assert '"mqtts://192.168.1.10:8883"' in header and '"fltiny/device-3/up"' in header
    assert "FLT_TRANSPORT_MQTT 1" in (out / "include" / "fltiny_config.h").read_text()
    assert "mqtt esp-tls" in (out / "src" / "CMakeLists.txt").read_text()
    for args, words in [
        (["--transport", "mqtt", "--wifi-ssid", "lab"], "needs --mqtt-url"),
        (["--transport", "mqtt", "--mqtt-url", "mqtts://h:8883"], "needs --wifi-ssid"),
        (["--transport", "mqtt", "--wifi-ssid", "lab", "--mqtt-url", "mqtt://h"], "TLS only"),
    ]:
        code, _, err = cli(*base, *args)
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert code == 2 and len(errors) == 1 and words in errors[0], err
