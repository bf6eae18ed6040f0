"""Coverage-guided fuzzing in CI (firmware/fuzz, bench/fuzz.py): every libFuzzer harness runs
>= 10^5 executions under ASan + UBSan from its seed corpus and must end without a crash, leak,
timeout or out-of-memory input; a harness built with a planted bug must be caught and reported
with the input's path; the seed corpus is exactly what tools/make_fuzz_seeds.py writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tools"))

import fuzz  # noqa: E402
import make_fuzz_seeds  # noqa: E402

CI_RUNS = 100_000


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, fuzz.Result]:
    # a working directory of its own: a long bench/fuzz.py run in build/fuzz/ goes on beside it
    return {r.target: r for r in fuzz.fuzz(list(fuzz.TARGETS), CI_RUNS, jobs=2,
                                           work_root=tmp_path_factory.mktemp("fuzz"))}


@pytest.mark.parametrize("target", list(fuzz.TARGETS))
def test_harness_runs_clean(results, target):
    r = results[target]
    log = r.log.read_text()[-3000:] if r.log else ""
    assert r.ok, "\n".join(fuzz.failures([r])) + "\n" + log
    assert r.runs >= CI_RUNS, log
    assert r.cov > 0 and r.corpus_units > 0, log


def test_every_target_has_a_harness_and_seeds():
    harnesses = {p.stem for p in fuzz.FUZZ_DIR.glob("*.c")}
    assert harnesses == set(fuzz.TARGETS)
    assert all(any((fuzz.SEED_DIR / t).iterdir()) for t in fuzz.TARGETS)


def test_planted_bug_is_found_by_fuzzing(tmp_path):
    """No seeds: libFuzzer itself must reach msg_ack's planted out-of-bounds read."""
    r = fuzz.run_target("msg_ack", 1_000_000, defines=["FLT_FUZZ_PLANTED_BUG"], seeds=False,
                        work_root=tmp_path)
    assert not r.ok and len(r.findings) == 1 and r.findings[0].name.startswith("crash-")
    assert r.runs < 1_000_000  # it stopped at the finding
    assert fuzz.failures([r]) == [f"FINDING msg_ack: {r.findings[0]}"]
    # the input reproduces under the planted build and is harmless to the real harness
    planted = subprocess.run([str(fuzz.build("msg_ack", ["FLT_FUZZ_PLANTED_BUG"])),
                              str(r.findings[0])], capture_output=True, text=True, timeout=60)
    assert planted.returncode != 0 and "heap-buffer-overflow" in planted.stderr
    clean = subprocess.run([str(fuzz.build("msg_ack")), str(r.findings[0])],
                           capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stderr


def test_runner_exits_nonzero_naming_the_input(capsys, tmp_path):
    code = fuzz.main(["--runs", "1000000", "--targets", "msg_ack", "--define",
                      "FLT_FUZZ_PLANTED_BUG", "--work-dir", str(tmp_path)])
    out = capsys.readouterr().out
    findings = [ln for ln in out.splitlines() if ln.startswith("FINDING ")]
    assert code == 1 and len(findings) == 1, out
    path = Path(findings[0].split(": ", 1)[1])
    assert path.is_file() and path.name.startswith("crash-")
    assert "| msg_ack |" in out and "| crash |" in out


def test_seed_corpus_is_the_generators_output():
    want = make_fuzz_seeds.seeds()
    have = {d.name: {f.name: f.read_bytes() for f in d.iterdir()}
            for d in fuzz.SEED_DIR.iterdir() if d.is_dir()}
    assert have == want, "seeds are stale: run .venv/bin/python tools/make_fuzz_seeds.py"
    assert sum(len(b) for files in want.values() for b in files.values()) < 100_000


def test_parse_log_reads_the_last_stats_line():
    text = ("#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n"
            "#100000\tDONE   cov: 47 ft: 156 corp: 47/2890b lim: 4 exec/s: 0 rss: 93Mb\n"
            "stat::number_of_executed_units: 100000\n")
    r = fuzz.Result("cobs")
    fuzz.parse_log(text, r)
    assert (r.runs, r.cov, r.ft, r.corpus_units, r.corpus_bytes) == (100000, 47, 156, 47, 2890)
