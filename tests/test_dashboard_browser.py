"""The dashboard in a real browser (Debian's headless Chromium, scripts/setup.sh installs it):
during a simulated run and after it, with every host but this machine unreachable. The
screenshots stay in the pytest tmp dir (printed with -s; dashboard-shots*/)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fltiny.dashboard.serve import DashboardServer
from fltiny.experiment import DataSettings
from fltiny.server.rounds import RoundConfig, TrainParams

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
ROUNDS = 4
# the SVG namespace is a name, never fetched; nothing else may point off this machine
NAMESPACE = "http://www.w3.org/2000/svg"


def sim_config(out: Path, bundle: Path):
    from fltiny.sim.run import SimConfig

    # a tight anomaly threshold: with 4 devices some update is rejected every round, its
    # reason (the score, the norm and the round's median) in the run store
    return SimConfig(clients=4, out=out, data=DataSettings(bundle=bundle),
                     server=RoundConfig(rounds=ROUNDS, anomaly_threshold=1.0,
                                        train=TrainParams(epochs=1)))


def browse(url: str, shots: Path, name: str) -> str:
    """Screenshot ``url`` to shots/name.png and return its DOM after the scripts ran, with
    the network off: a dead proxy for every host but loopback, and no name resolves."""
    assert CHROMIUM, "chromium is missing: run 'make setup' (it installs Debian's chromium)"
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--disable-extensions", "--disable-background-networking",
             "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             f"--user-data-dir={shots / ('profile-' + name)}", "--window-size=1280,2200",
             "--virtual-time-budget=4000"]
    png = shots / f"{name}.png"
    subprocess.run([*flags, f"--screenshot={png}", url], capture_output=True, timeout=90,
                   check=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, timeout=90,
                         check=True).stdout.decode()
    (shots / f"{name}.html").write_text(dom)
    print(f"dashboard screenshot: {png}")
    return dom


def curve_points(dom: str, key: str) -> int:
    m = re.search(rf'<path class="curve curve-{key}"[^>]*data-points="(\d+)"', dom)
    assert m, f"no {key} curve in the page"
    return int(m.group(1))


def assert_offline(dom: str, base: str) -> None:
    """Every src/href in the page is this server's, and so is everything its assets name."""
    links = re.findall(r'(?<![\w-])(?:src|href|action)="([^"]*)"', dom)
    assert links and all(x.startswith("/") and not x.startswith("//") for x in links), links
    for asset in {x for x in links if x.startswith("/static/")}:
        text = urllib.request.urlopen(base + asset.lstrip("/"), timeout=10).read().decode()
        external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text.replace(NAMESPACE, ""))
        assert not external, (asset, external)


def assert_page(dom: str, status: str, round_: int) -> None:
    assert f'class="badge {status}">{status}<' in dom, status
    assert f"round {round_} of {ROUNDS}" in dom
    assert curve_points(dom, "heldout") == round_ + 1  # round 0 is the initial model
    assert curve_points(dom, "personal") == round_
    reasons = re.findall(r'<td class="reason">([^<]*)</td>', dom)
    assert any(r.startswith("anomaly score") and "above --anomaly-threshold 1" in r
               for r in reasons), reasons


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dashboard-shots")


@pytest.fixture(scope="module")
def live_run(har_tiny_bundle, tmp_path_factory, shots):
    """A simulated run held after round 2 while the browser looks, then let finish."""
    from fltiny.sim.run import simulate

    out = tmp_path_factory.mktemp("dashboard-run")
    reached, release, done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def progress(m) -> None:
        if m.round == 2:
            reached.set()
            assert release.wait(120), "the test never released the run"

    def target() -> None:
        try:
            simulate(sim_config(out, har_tiny_bundle), progress=progress)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)
        finally:
            reached.set()
            done.set()

    server = DashboardServer(out, port=0).start()  # what --dashboard starts beside a run
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        assert reached.wait(180) and not errors, errors
        yield server, out, release, done, errors
    finally:
        release.set()
        thread.join(120)
        server.stop()


def test_dashboard_during_and_after_a_simulated_run(live_run, shots):
    server, out, release, done, errors = live_run
    t0 = time.perf_counter()
    dom = browse(server.url, shots, "during-run")
    assert_page(dom, "running", 2)
    assert_offline(dom, server.url)
    release.set()
    assert done.wait(180) and not errors, errors
    dom = browse(server.url, shots, "after-run")
    assert_page(dom, "finished", ROUNDS)
    assert "audit chain intact: 5 records" in dom
    view = json.loads(urllib.request.urlopen(server.url + "api/run", timeout=10).read())
    rejected = view["rejected"][0]
    dom = browse(f"{server.url}device/{rejected['device_id']}", shots, "device")
    assert f'<span id="device-id">{rejected["device_id"]}</span>' in dom
    assert rejected["reason"] in dom and curve_points(dom, "anomaly") >= 1
    assert_offline(dom, server.url)
    print(f"browser checks took {time.perf_counter() - t0:.1f} s")


def test_dashboard_command_serves_a_finished_run_and_refuses_bad_input(live_run, shots, cli,
                                                                      tmp_path):
    _server, out, release, done, _errors = live_run
    release.set()
    assert done.wait(180)
    proc = subprocess.Popen([sys.executable, "-m", "fltiny.cli", "dashboard", "--run", str(out),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, (line, proc.stderr.read() if proc.poll() is not None else "")
        dom = browse(url.group(0), shots, "dashboard-command")
        assert_page(dom, "finished", ROUNDS)
        port = int(url.group(0).rsplit(":", 1)[1].strip("/"))
        code, _o, err = cli("dashboard", "--run", out, "--port", port)
        assert code == 2 and f"port {port} on 127.0.0.1 is in use" in err
        assert err.count("\n") == 1
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(url.group(0) + "api/device/999", timeout=10)
        assert bad.value.code == 404 and "device 999" in json.loads(bad.value.read())["error"]
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0, proc.stderr.read()
    code, _o, err = cli("dashboard", "--run", tmp_path)
    assert code == 2 and "no run store at" in err and err.count("\n") == 1


def test_simulate_dashboard_option_serves_the_run(har_tiny_bundle, shots, tmp_path):
    """``fltiny simulate --dashboard``: the URL is printed, the page follows the run and stays
    up after it until SIGTERM / Ctrl-C."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fltiny.cli", "simulate", "--clients", "4", "--rounds",
         str(ROUNDS), "--epochs", "1", "--anomaly-threshold", "1", "--bundle",
         str(har_tiny_bundle), "--out", str(out), "--dashboard", "--dashboard-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        while url is None:
            line = proc.stderr.readline()
            assert line, proc.stdout.read()
            m = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)", line)
            url = m.group(1) if m else None
        while "dashboard still serving" not in (line := proc.stdout.readline()):
            assert line, proc.stderr.read()
        dom = browse(url, shots, "simulate-dashboard")
        assert_page(dom, "finished", ROUNDS)
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
