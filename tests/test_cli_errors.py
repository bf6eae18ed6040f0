"""Every error a user can cause in ``fltiny run`` / ``fltiny simulate`` is one line naming the
problem, a non-zero exit and no traceback (issue 9, "Done when"). The CLI is the real one, run
in-process by click's runner (the ``cli`` fixture) and once as a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fltiny.errors import FltinyError, UsageError

# (case id, arguments, words the message must contain). Each is refused before any work
# (no bundle, no data, no compiler): the fast ones must answer in well under a second.
FAST_CASES = [
    ("krum-few", ["--strategy", "krum"], ["krum needs at least 5 updates", "4 devices"]),
    ("multi-krum-few", ["--strategy", "multi-krum"], ["multi-krum needs at least 5 updates"]),
    ("lr-negative", ["--lr", "-1"], ["'--lr'", "-1.0"]),
    ("lr-zero", ["--lr", "0"], ["'--lr'", "0.0"]),
    ("topk-zero", ["--topk", "0"], ["'--topk'", "0<x<=1"]),
    ("topk-negative", ["--topk", "-0.1"], ["'--topk'", "-0.1"]),
    ("topk-above-one", ["--topk", "2.0"], ["'--topk'", "2.0"]),
    ("epochs-zero", ["--epochs", "0"], ["'--epochs'", "1<=x<=255"]),
    ("unknown-strategy", ["--strategy", "fedmagic"], ["'--strategy'", "'fedmagic'", "fedavg"]),
    ("fraction-zero", ["--fraction", "0"], ["'--fraction'", "0<x<=1"]),
    ("feddyn-mu-zero", ["--strategy", "feddyn", "--mu", "0"], ["feddyn needs", "alpha", "--mu"]),
    ("fraction-above-one", ["--fraction", "1.5"], ["'--fraction'", "1.5"]),
]

DEVICES = {"simulate": "--clients", "run": "--devices"}


def _one_line_error(code: int, out: str, err: str, words: list[str]) -> None:
    assert code != 0, out
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "internal error" not in lines[0], lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("command", ["simulate", "run"])
@pytest.mark.parametrize(("case", "args", "words"), FAST_CASES, ids=[c[0] for c in FAST_CASES])
def test_bad_setting_is_refused_before_any_work(cli, tmp_path, command, case, args, words):
    t0 = time.perf_counter()
    code, out, err = cli(command, DEVICES[command], "4", "--out", tmp_path / "out", *args)
    _one_line_error(code, out, err, words)
    assert code == 2
    assert time.perf_counter() - t0 < 5.0  # nothing was built, trained or started
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["simulate", "run"])
def test_zero_devices(cli, tmp_path, command):
    flag = DEVICES[command]
    code, out, err = cli(command, flag, "0", "--out", tmp_path)
    _one_line_error(code, out, err, [f"'{flag}'", "x>=1"])


def test_krum_refusal_through_the_real_executable(tmp_path):
    """The same as above, as a user runs it: a process, stderr, exit status."""
    p = subprocess.run([sys.executable, "-m", "fltiny.cli", "simulate", "--clients", "4",
                        "--strategy", "krum", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    _one_line_error(p.returncode, p.stdout, p.stderr, ["krum needs at least 5 updates"])


@pytest.fixture()
def bundle_copy(har_tiny_bundle: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(har_tiny_bundle, out)
    return out


def _corrupt_manifest(bundle: Path) -> list[str]:
    (bundle / "manifest.json").write_text('{"model": "har-tiny", "task": ')
    return ["manifest.json is not a valid fltiny manifest", "re-export"]


def _short_head(bundle: Path) -> list[str]:
    head = bundle / "head.bin"
    head.write_bytes(head.read_bytes()[:-8])
    return ["head.bin is", "bytes", "float32 parameters", "re-export"]


def _manifest_not_an_object(bundle: Path) -> list[str]:
    (bundle / "manifest.json").write_text(json.dumps([1, 2, 3]))
    return ["manifest.json is not a valid fltiny manifest"]


def _missing_manifest(bundle: Path) -> list[str]:
    (bundle / "manifest.json").unlink()
    return ["is not an export bundle", "fltiny export"]


DAMAGE = [_corrupt_manifest, _short_head, _manifest_not_an_object, _missing_manifest]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["simulate", "run"])
@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__.strip("_") for d in DAMAGE])
def test_damaged_bundle(cli, bundle_copy, tmp_path, command, damage):
    words = damage(bundle_copy)
    code, out, err = cli(command, "--bundle", bundle_copy, "--rounds", "1",
                         "--out", tmp_path / "out", DEVICES[command], "2")
    _one_line_error(code, out, err, words)
    assert code == UsageError.exit_code


@pytest.mark.slow
def test_bundle_of_another_model(cli, har_tiny_bundle, tmp_path):
    code, out, err = cli("simulate", "--bundle", har_tiny_bundle, "--model", "har-small",
                         "--out", tmp_path)
    _one_line_error(code, out, err, ["holds har-tiny, not --model har-small"])


@pytest.mark.parametrize(("settings", "words"), [
    ({"learning_rate": -1.0}, ["--lr", "-1"]),
    ({"topk_fraction": 2.0}, ["--topk", "2"]),
    ({"epochs": 0}, ["--epochs", "0"]),
    ({"momentum": 1.0}, ["--momentum", "1"]),
])
def test_python_api_checks_the_same_ranges(settings, words):
    from fltiny.server.config import TrainParams

    with pytest.raises(UsageError) as info:
        TrainParams(**settings)
    for w in words:
        assert w in str(info.value)


def test_every_error_is_a_fltiny_error():
    from fltiny.errors import RuntimeStatusError, StrategyError
    from fltiny.native.status import Status, describe

    assert issubclass(StrategyError, FltinyError) and not issubclass(StrategyError, ValueError)
    err = RuntimeStatusError("flt_round_run", Status.ERR_RANGE)
    assert str(err) == "flt_round_run failed: value out of range (FLT_ERR_RANGE)"
    assert describe(999) == "unknown status 999"
