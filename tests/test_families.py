"""Server-driven model selection (fltiny/run/families.py): each board type gets the largest
model family whose firmware fits its RAM and flash (the build's memory report), one federation
per family in one run, reported side by side. The selection rule with a stand-in for the
build, the options refused in one line, and a mixed fleet of qemu-m3 (64 kB) and qemu-m7
(512 kB) boards running two families in one run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fltiny.boards import get_board
from fltiny.errors import FitError
from fltiny.run.families import Fit, candidates, choose, plan_families

# RAM and flash used: the memory report's figures for qemu-m3 and the m7's har-gateway
# (docs/benchmarks.md "Model families on a mixed fleet"), stand-ins for the others
NEED = {("qemu-m3", "har-gateway"): (229_104, 121_940), ("qemu-m3", "har-small"): (70_592, 42_460),
        ("qemu-m3", "har-tiny"): (63_364, 32_252), ("qemu-m7", "har-gateway"): (392_436, 122_312),
        ("qemu-m7", "har-small"): (140_000, 41_000), ("qemu-m7", "har-tiny"): (60_000, 31_000),
        ("qemu-m4f", "har-gateway"): (290_000, 121_000),
        ("qemu-m4f", "har-small"): (103_000, 41_000), ("qemu-m4f", "har-tiny"): (45_000, 31_000)}


def fake_fit(asked: list[tuple[str, str]]):
    def fit_of(board, model: str) -> Fit:
        asked.append((board.name, model))
        ram, flash = NEED[board.name, model]
        ok = ram <= board.ram_bytes and flash <= board.flash_bytes
        return Fit(board.name, model, ok, flash, board.flash_bytes, ram, board.ram_bytes,
                   "" if ok else "over budget", Path(f"/elf/{board.name}-{model}") if ok else None)

    return fit_of


def opts(**kw):
    from fltiny.experiment import DataSettings, RunOptions

    data = kw.pop("data", DataSettings(model="auto"))
    return RunOptions(data=data, **kw)


def test_candidates_largest_first():
    assert candidates(opts(fleet=(("qemu-m3", 1),))) == ["har-gateway", "har-small", "har-tiny"]
    o = opts(fleet=(("qemu-m3", 1),), families=(("har-tiny", None), ("har-small", None)))
    assert candidates(o) == ["har-small", "har-tiny"]


def test_each_board_gets_the_largest_family_that_fits():
    asked: list[tuple[str, str]] = []
    o = opts(fleet=(("qemu-m3", 2), ("qemu-m7", 2), ("qemu-m4f", 1)))
    plans = plan_families(o, fake_fit(asked), lambda m: Path(f"/bundles/{m}"))
    assert [(p.model, [(b.name, n) for b, n in p.boards], p.slots) for p in plans] == [
        ("har-gateway", [("qemu-m7", 2)], [2, 3]),
        ("har-small", [("qemu-m4f", 1)], [4]),
        ("har-tiny", [("qemu-m3", 2)], [0, 1]),
    ]
    # largest first, and no smaller candidate is built once one fits
    assert asked == [("qemu-m3", "har-gateway"), ("qemu-m3", "har-small"), ("qemu-m3", "har-tiny"),
                     ("qemu-m7", "har-gateway"), ("qemu-m4f", "har-gateway"),
                     ("qemu-m4f", "har-small")]
    m3 = plans[2].choices[0]
    assert [t.model for t in m3.tried] == ["har-gateway", "har-small", "har-tiny"]
    assert "too big: har-gateway needs RAM 229,104 B" in m3.line()


def test_board_model_override_and_plain_model():
    o = opts(fleet=(("qemu-m3", 1), ("qemu-m7", 1)), board_models=(("qemu-m7", "har-small"),))
    plans = plan_families(o, fake_fit([]), lambda m: Path(m))
    assert [(p.model, p.choices[0].how) for p in plans] == [("har-small", "--board-model"),
                                                           ("har-tiny", "auto")]
    # without --model auto: the override's board runs its model, the others --model's
    from fltiny.experiment import DataSettings

    o = opts(data=DataSettings(model="har-tiny"), fleet=(("qemu-m3", 1), ("qemu-m7", 1)),
             board_models=(("qemu-m7", "har-gateway"),))
    plans = plan_families(o, fake_fit([]), lambda m: Path(m))
    assert [(p.model, p.choices[0].how) for p in plans] == [("har-gateway", "--board-model"),
                                                           ("har-tiny", "--model")]


def test_no_family_fits_names_the_board_and_its_budget():
    fit_of = fake_fit([])
    with pytest.raises(FitError) as e:
        choose(get_board("qemu-m3"), ["har-gateway", "har-small"], fit_of)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("board qemu-m3 (RAM 64 kB, flash 256 kB): no model family fits: ")
    assert "har-gateway needs RAM 229,104 B" in msg and "har-small needs RAM 70,592 B" in msg
    o = opts(fleet=(("qemu-m3", 1),), board_models=(("qemu-m3", "har-small"),))
    with pytest.raises(FitError, match=r"board qemu-m3 \(RAM 64 kB, flash 256 kB\): har-small "
                                       r"\(--board-model\) does not fit"):
        plan_families(o, fit_of, lambda m: Path(m))


@pytest.mark.parametrize("args, message", [
    (["--model", "auto", "--bundle", "build/x"], "--bundle names one export"),
    (["--family", "har-tiny"], "--family names the candidates of --model auto"),
    (["--model", "auto", "--board-model", "qemu-m4f=har-tiny"], "board qemu-m4f is not in the fleet"),
    (["--model", "auto", "--board-model", "qemu-m3"], "--board-model 'qemu-m3': expected BOARD=MODEL"),
    (["--model", "auto", "--family", "har-huge"], "unknown zoo model 'har-huge'"),
    (["--model", "auto", "--family", "thermo-small"], "model thermo-small is for dataset thermostat"),
    (["--model", "auto", "--family", "har-tiny", "--family", "har-tiny"], "a model is named twice"),
    (["--model", "auto", "--gateways", "2"], "--gateways with a model per board"),
    (["--model", "auto", "--port", "/dev/ttyUSB9"], "boards on --port / --fleet-file run"),
])
def test_bad_family_options_are_one_line(cli, tmp_path, args, message):
    fleet = [] if "--port" in args else ["--fleet", "qemu-m3=1,qemu-m7=1"]
    code, out, err = cli("run", *fleet, *args, "--out", tmp_path / "r")
    assert code == 2, out + err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "r").exists()


def test_simulate_refuses_model_auto(cli, tmp_path):
    code, _out, err = cli("simulate", "--model", "auto", "--out", tmp_path / "s")
    assert code == 2 and "--model auto chooses a model family per board" in err


# ---- on emulated boards -------------------------------------------------------------------

needs_qemu = pytest.mark.skipif(not (shutil.which("qemu-system-arm")
                                     and shutil.which("arm-none-eabi-gcc")),
                                reason="QEMU or the Arm cross compiler is not installed")


@pytest.fixture(scope="module")
def family_bundles(har_tiny_bundle, tmp_path_factory) -> dict[str, Path]:
    """har-small and har-gateway trained briefly (the selection needs their sizes, the m7
    federation the gateway model), next to the session's har-tiny."""
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle

    out = {"har-tiny": har_tiny_bundle}
    for m in ("har-small", "har-gateway"):
        d = tmp_path_factory.mktemp(m)
        export_bundle(out=d, model_name=m, dataset="hapt", train_config=TrainConfig(epochs=2))
        out[m] = d
    return out


@pytest.mark.slow
@pytest.mark.cross
@needs_qemu
def test_mixed_fleet_runs_two_families_in_one_run(family_bundles, tmp_path, cli, monkeypatch):
    from fltiny.experiment import DataSettings, RoundConfig, RunOptions, run_families
    from fltiny.report.table import RoundTable
    from fltiny.run.families import family_table
    from fltiny.server.store import RunStore

    out, root = tmp_path / "run", tmp_path / "build"
    rounds = 3
    seen: dict[str, list[int]] = {}
    o = RunOptions(fleet=(("qemu-m3", 1), ("qemu-m7", 1)), data=DataSettings(model="auto"),
                   families=tuple(family_bundles.items()), max_windows=48,
                   server=RoundConfig(rounds=rounds, deadline_s=120), out=out, build_root=root)
    fr = run_families(o, progress=lambda f, m: seen.setdefault(f, []).append(m.round),
                      say=print, log=print)
    # the selection: qemu-m3 (64 kB) gets har-small after har-gateway failed its memory
    # report (har-small fits it since the round buffers share the link message's storage and
    # secure aggregation is built only when asked); qemu-m7 (512 kB) the largest, har-gateway
    by_board = {c.board: c for c in fr.choices}
    assert by_board["qemu-m7"].model == "har-gateway"
    assert [t.model for t in by_board["qemu-m7"].tried] == ["har-gateway"]
    m3 = by_board["qemu-m3"]
    assert [(t.model, t.fits) for t in m3.tried] == [("har-gateway", False), ("har-small", True)]
    assert all(t.ram_used is not None and t.ram_used > t.ram_budget for t in m3.tried[:1])
    assert m3.fit.ram_used is not None and m3.fit.ram_used <= 65536
    assert list(fr.results) == ["har-gateway", "har-small"]
    hashes = set()
    for model, res in fr.results.items():
        assert seen[model] == list(range(rounds + 1))
        s = res.summary
        assert s["model"] == model and s["devices"] == 1
        assert s["device_rounds"] == rounds and s["replayed"] == rounds
        assert s["replay_identical"] == rounds and s["replay_mismatches"] == 0
        store = RunStore(out / model / "run.sqlite")
        try:
            hist = store.history()
            assert [c.round for c in hist] == list(range(rounds + 1))
            assert all(u["accepted"] == 1 for u in store.updates())
            hashes.add(hist[-1].sha256)
        finally:
            store.close()
        for name in ("metrics.json", "metrics.csv", "metrics.png"):
            assert (out / model / name).is_file()
    assert len(hashes) == 2  # each federation its own global model
    # the side-by-side report
    js = json.loads((out / "families.json").read_text())
    assert [f["model"] for f in js["families"]] == ["har-gateway", "har-small"]
    for f in js["families"]:
        assert f["rounds"] == rounds and f["replay_mismatches"] == 0
        assert f["held_out_final"] is not None and f["personal_final"] is not None
    assert {f["model_sha256"] for f in js["families"]} == hashes
    header = (out / "families.csv").read_text().splitlines()[0]
    assert "har-gateway:accuracy" in header and "har-small:personal_accuracy" in header
    assert (out / "families.png").stat().st_size > 0
    table = family_table(fr.summary)
    assert "har-gateway" in table[0] and "har-small" in table[0]
    assert RoundTable.render(fr.results["har-small"].rounds)
    # the verdicts are cached with the firmware: the no-fit one too
    assert len(list(root.glob("fw-cache/qemu-m3-*/nofit.json"))) == 1
    # a board nothing fits: one line naming the board and its budget (the cached verdict)
    monkeypatch.setenv("FLTINY_BUILD_DIR", str(root))
    code, _out, err = cli("run", "--fleet", "qemu-m3=1", "--model", "auto", "--family",
                          f"har-gateway={family_bundles['har-gateway']}", "--out", tmp_path / "no")
    errors = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert code == 6 and len(errors) == 1 and err.strip().endswith(errors[0]), err
    assert re.match(r"error: board qemu-m3 \(RAM 64 kB, flash 256 kB\): no model family fits: "
                    r"har-gateway needs RAM [\d,]+ B, flash [\d,]+ B", errors[0]), errors[0]
    assert not (tmp_path / "no").exists()
