"""Flower as the fleet engine (fltiny.flower): `fltiny run --engine flower --gateways 2` on a
real flower-superlink and two flower-supernode processes gives the one-machine `--gateways 2`
run's global model bit for bit (every DELTA replayed); a SuperNode SIGKILLed mid-round makes
its gateway's devices miss that round, the run goes on and completes; no Flower process
outlives a run. The records between the apps round-trip exactly; what --engine flower cannot
run is refused in one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fltiny.errors import ToolchainError, UsageError
from fltiny.experiment import RunOptions
from fltiny.flower.wire import Envelope, GatewayReply, RoundRequest
from fltiny.server.config import TrainParams
from fltiny.server.gateway import GatewaySum
from fltiny.server.rounds import DeviceResult
from fltiny.strategies.base import ClientUpdate

FLOWER_NAMES = ("flower-superlink", "flower-supernode", "flower-superexec", "flwr-serverapp",
                "flwr-clientapp")


def _run_processes(fdir: Path) -> list[tuple[int, str]]:
    """Every live process of this machine started for the run in ``fdir`` (its environment
    carries FLTINY_FLOWER_RUN=<fdir>:...), or whose command line names a Flower program and
    ``fdir``: read from /proc, independently of fltiny.flower.procs."""
    needle = f"FLTINY_FLOWER_RUN={fdir.resolve()}:".encode()
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        if any(needle in e for e in env.split(b"\0")) or (
                str(fdir.resolve()) in cmd and any(n in cmd for n in FLOWER_NAMES)):
            out.append((int(pid), cmd))
    return out


def test_records_round_trip_exactly():
    rng = np.random.default_rng(3)
    train = TrainParams(epochs=2, seed=7, mu=0.01)
    req = RoundRequest(4, 3, (1, 2, 5), rng.normal(size=40).astype(np.float32), train, 0.01, 12.5)
    for env in (req.envelope(), Envelope.from_bytes(req.envelope().to_bytes()),
                Envelope.from_records(req.envelope().to_records())):
        back = RoundRequest.of(env)
        assert back.params.tobytes() == req.params.tobytes() and back.train == train
        assert (back.round, back.version, back.devices, back.mu, back.deadline_s) == (
            4, 3, (1, 2, 5), 0.01, 12.5)
    u = ClientUpdate(2, None, 17, 0.1 + 0.2, payload=bytes(range(256)) * 3, n_params=40,
                     sq_norm=1 / 3)
    results = (DeviceResult(2, u, 100, 200, personal_n=5, personal_metric=0.8,
                            figures={"replayed": True, "gateway": 1}),
               DeviceResult(3, None, error="no DELTA before the round deadline"))
    total = GatewaySum(1, rng.normal(size=40), 17, (2,))
    rep = GatewayReply(1, results, total, 2.5)
    for env in (Envelope.from_bytes(rep.envelope().to_bytes()),
                Envelope.from_records(rep.envelope().to_records())):
        back = GatewayReply.of(env)
        assert back.sum.weighted_sum.tobytes() == total.weighted_sum.tobytes()
        assert (back.sum.examples, back.sum.devices, back.gateway) == (17, (2,), 1)
        b = back.results[0]
        assert b.update is not None and b.update.payload == u.payload
        assert (b.update.num_examples, b.update.loss, b.update.sq_norm()) == (17, 0.1 + 0.2, 1 / 3)
        assert (b.bytes_up, b.personal_metric, b.figures) == (100, 0.8, results[0].figures)
        assert back.results[1].update is None and back.results[1].error == results[1].error


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, r"--engine flower runs one Flower SuperNode per gateway: add --gateways G"),
    ({"gateways": 2, "resume": True}, r"does not support --resume"),
    ({"gateways": 2, "transport": "mqtt", "fleet": (("native", 2),)},
     r"does not support --transport mqtt"),
    ({"gateways": 2, "ports": ("/dev/ttyUSB0",)}, r"does not support --port / --fleet-file"),
    ({"gateways": 2, "strategy": "median"}, r"--gateways 2: median needs every device's own"),
])
def test_refused_options(kwargs, message):
    with pytest.raises(UsageError, match=message):
        RunOptions(engine="flower", **kwargs)


def test_cli_refuses_without_gateways(cli):
    code, out, err = cli("run", "--engine", "flower", "--devices", "2")
    assert code != 0 and "add --gateways G" in out + err


def test_cli_start_up_does_not_import_flwr():
    code = ("import sys, fltiny.cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(fltiny.cli.main, ['run', '--help']); "
            "assert r.exit_code == 0 and '--engine' in r.output, r.output; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'flwr'], 'flwr imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_superlink_port_busy_is_one_line(tmp_path):
    from fltiny.flower.deploy import FlowerRun

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        fr = FlowerRun(tmp_path, port, say=print, log=print)
        with pytest.raises(UsageError, match=rf"cannot listen on 127.0.0.1:{port}: the port is "
                                             r"in use; pass another --superlink-port"):
            fr.start_superlink()
        fr.stop()
        from fltiny.run.runner import run

        with pytest.raises(UsageError, match=rf"--superlink-port {port}: the port is in use"):
            run(RunOptions(engine="flower", gateways=2, superlink_port=port,
                           out=tmp_path / "out"))  # refused before any work: nothing made
        assert not (tmp_path / "out").exists()
    assert not _run_processes(tmp_path)


def test_missing_flower_binary_says_make_setup():
    from fltiny.flower.procs import flower_binary

    with pytest.raises(ToolchainError, match=r"flower-nothing not found in .*: run make setup"):
        flower_binary("flower-nothing")


def test_superlink_that_exits_at_once_is_named(tmp_path):
    """A SuperLink that cannot start (here: its state database is a directory) is one error
    with its log's tail, and leaves no process."""
    from fltiny.flower.deploy import FlowerRun

    fr = FlowerRun(tmp_path, 0, say=print, log=print)
    (tmp_path / "superlink.db").mkdir()
    with pytest.raises(ToolchainError, match=r"the Flower SuperLink exited with code \d+ before "
                                             r"listening"):
        fr.start_superlink()
    fr.stop()
    assert not _run_processes(tmp_path)


def _options(bundle: Path, out: Path, build_root: Path, engine: str, deadline: float = 90):
    from fltiny.experiment import DataSettings, RoundConfig

    return RunOptions(fleet=(("qemu-m4f", 4),), gateways=2, strategy="fedavg", engine=engine,
                      server=RoundConfig(rounds=3, deadline_s=deadline),
                      data=DataSettings(bundle=bundle), out=out, build_root=build_root)


@pytest.fixture(scope="module")
def flower_build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("flower-build")


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_flower_run_equals_one_machine_run(har_tiny_bundle, tmp_path_factory, flower_build_root):
    from fltiny.run.runner import run
    from fltiny.server.store import RunStore

    finals, seconds = {}, {}
    for engine in ("local", "flower"):
        out = tmp_path_factory.mktemp(f"engine-{engine}")
        t0 = time.perf_counter()
        res = run(_options(har_tiny_bundle, out, flower_build_root, engine), say=print, log=print)
        seconds[engine] = time.perf_counter() - t0
        s = res.summary
        assert s["device_rounds"] == 12 and s["replayed"] == 12
        assert s["replay_identical"] == 12 and s["replay_mismatches"] == 0
        store = RunStore(out / "run.sqlite")
        finals[engine] = store.latest()
        assert finals[engine].round == 3
        if engine == "flower":
            by_gw: dict[int, set[int]] = {}
            for u in store.updates():
                by_gw.setdefault(u["figures"]["gateway"], set()).add(u["device_id"])
            assert sorted(map(sorted, by_gw.values())) == [[1, 2], [3, 4]]
            assert s["engine"] == "flower" and s["supernode_restarts"] == {0: 0, 1: 0}
            assert not _run_processes(out / "flower")
        store.close()
    print(f"3 rounds: local {seconds['local']:.1f} s, flower {seconds['flower']:.1f} s")
    # the gateways' sums cross Flower as float64 arrays, the payloads as bytes: the same
    # float32 model as the one-machine run, bit for bit
    np.testing.assert_array_equal(finals["local"].params, finals["flower"].params)
    assert finals["local"].sha256 == finals["flower"].sha256


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_supernode_killed_mid_round(har_tiny_bundle, tmp_path_factory, flower_build_root):
    from fltiny.run.runner import run
    from fltiny.server.store import RunStore

    out = tmp_path_factory.mktemp("flower-kill")
    fdir = out / "flower"
    killed: list[int] = []

    def killer() -> None:  # SIGKILL gateway 1's SuperNode once round 2's TRAIN is sent
        events = fdir / "events.jsonl"
        end = time.monotonic() + 600
        while time.monotonic() < end:
            if events.exists() and '"round 2: TRAIN sent' in events.read_text():
                for pid, cmd in _run_processes(fdir):
                    if "flower-supernode" in cmd and "gateway=1 " in cmd:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                return
            time.sleep(0.1)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    res = run(_options(har_tiny_bundle, out, flower_build_root, "flower", deadline=20),
              say=print, log=print)
    t.join(5)
    assert len(killed) == 1
    assert res.summary["supernode_restarts"] == {0: 0, 1: 1}
    store = RunStore(out / "run.sqlite")
    rows = {(u["round"], u["device_id"]): u for u in store.updates()}
    assert store.latest().round == 3
    store.close()
    for dev in (1, 2):  # gateway 0 takes part in every round
        assert all(rows[(r, dev)]["accepted"] for r in (1, 2, 3))
    for dev in (3, 4):  # gateway 1 misses round 2 only
        assert rows[(1, dev)]["accepted"] and rows[(3, dev)]["accepted"]
        assert not rows[(2, dev)]["accepted"]
        assert "gateway 1: no reply from its SuperNode" in rows[(2, dev)]["reason"]
    s = res.summary
    assert s["device_rounds"] == 10 and s["replayed"] == 10 and s["replay_mismatches"] == 0
    assert not _run_processes(fdir)


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_ctrl_c_leaves_no_flower_process(har_tiny_bundle, tmp_path, flower_build_root):
    """`fltiny run --engine flower` (the CLI, a process of its own) interrupted with Ctrl-C
    (SIGINT) during round 1: it says so and exits 130, and no process of the run remains."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fltiny.cli", "run", "--engine", "flower", "--gateways", "2",
           "--devices", "4", "--strategy", "fedavg", "--rounds", "3", "--bundle",
           str(har_tiny_bundle), "--out", str(out)]
    env = {**os.environ, "FLTINY_BUILD_DIR": str(flower_build_root)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Flower run" in line and "submitted" in line:
                break
        events = out / "flower" / "events.jsonl"
        end = time.monotonic() + 300
        while time.monotonic() < end and not (
                events.exists() and "round 1: TRAIN sent" in events.read_text()):
            time.sleep(0.2)
        assert _run_processes(out / "flower"), "the run's Flower processes are running"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted" in rest
    assert not _run_processes(out / "flower")


def test_gateway_sums_forwarded_or_recomputed():
    """The top level adds each gateway's forwarded sum when it accepted exactly the devices
    the gateway summed, else the sum of the payloads it accepted (as one machine would)."""
    from fltiny.flower.fleet import FlowerFleet
    from fltiny.native.delta import compress, encode_payload
    from fltiny.server.gateway import pre_aggregate

    rng = np.random.default_rng(11)
    n = 64

    def payload() -> bytes:
        delta, _ = compress(rng.normal(0, 0.01, n), np.zeros(n, np.float32), None, k=16)
        return encode_payload(delta)

    ups = [ClientUpdate(d, None, k, payload=payload(), n_params=n)
           for d, k in ((1, 5), (2, 9), (3, 4), (4, 7))]
    fleet = FlowerFleet(None, [[1, 2], [3, 4]], 1.0, log=print)  # type: ignore[arg-type]
    forwarded = GatewaySum(0, np.full(n, 7.0), 14, (1, 2))  # not the payloads' sum: marks it
    fleet._sums = {0: forwarded, 1: pre_aggregate(1, ups[2:])}
    sums = fleet.gateway_sums(np.zeros(n, np.float32), ups)
    assert sums[0] is forwarded and sums[1].weighted_sum.tobytes() == (
        pre_aggregate(1, ups[2:]).weighted_sum.tobytes())
    sums = fleet.gateway_sums(np.zeros(n, np.float32), [ups[0], ups[2], ups[3]])  # 2 rejected
    assert sums[0].devices == (1,) and sums[0].examples == 5
    assert sums[0].weighted_sum.tobytes() == pre_aggregate(0, ups[:1]).weighted_sum.tobytes()
