"""Coverage-guided fuzzing (libFuzzer, ASan + UBSan) of every C decoder and state machine of the
runtime that reads external bytes.

    .venv/bin/python bench/fuzz.py --runs N [--targets cobs frame ...] [--jobs J] [--seed S]

One harness per target, firmware/fuzz/<target>.c (each opens with what it feeds and what it
asserts), linked with the runtime's protocol and delta components and the device's data readers
(the source lists fltiny.native builds its host libraries from) by clang-14 with
-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all and the runtime's strict warning
flags (firmware/fuzz/coverage_ignore.txt: code not traced for coverage, still sanitized). Each
target starts from its seed corpus (firmware/fuzz/seeds/<target>/, written by
tools/make_fuzz_seeds.py from the real encoders) in a fresh working corpus under
build/fuzz/<target>/ and runs exactly N executions (-runs=N) with a per-input timeout and an RSS
limit. Prints one table row per target: executions, exec/s (over the process's wall time),
coverage (cov: edges and ft: features from libFuzzer's last stats line), corpus size and
findings (crash-, leak-, timeout- and oom- files). Exits 1 on any finding, with one line per
finding naming the input's path; reproduce with `<harness> <path>` (the harness's path is the
first word of build/fuzz/<target>/libfuzzer.log).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fltiny.errors import ToolchainError  # noqa: E402
from fltiny.native import store  # noqa: E402
from fltiny.native.build import (  # noqa: E402
    RUNTIME_DIR,
    STRICT_FLAGS,
    build_dir,
    build_program,
    runtime_sources,
)

CC = "clang-14"
FUZZ_DIR = REPO / "firmware" / "fuzz"
SEED_DIR = FUZZ_DIR / "seeds"
IGNORE = FUZZ_DIR / "coverage_ignore.txt"  # not traced for coverage (still sanitized)
# fltiny/native/lib.py's library; the app readers: store.SOURCES
COMPONENTS = ("proto", "delta", "crypto", "secagg")
SANITIZE = ("-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all", "-g", "-O1")
FINDING_PREFIXES = ("crash-", "leak-", "timeout-", "oom-")
SLOWEST = "link_rx"

TARGETS: dict[str, str] = {  # name -> what it feeds (firmware/fuzz/<name>.c says what it asserts)
    "cobs": "flt_cobs_decode / encode / the streaming encoder",
    "frame": "flt_proto_frame_decode (with and without a valid tag) -> encode",
    "link_rx": "flt_proto_rx_feed: frames, chunked messages, raw and corrupted bytes",
    "outbox": "flt_outbox_* over a lossy loopback link to a receiver",
    "msg_hello": "flt_msg_hello_decode -> encode",
    "msg_global": "flt_msg_global_decode -> encode",
    "msg_train": "flt_msg_train_decode -> encode",
    "msg_delta": "flt_msg_delta_decode -> encode",
    "msg_ack": "flt_msg_ack_decode (ACK, NACK) -> encode",
    "msg_text": "flt_msg_text_decode (STATUS, LOG, ERROR) -> encode",
    "payload": "flt_payload_decode -> encode in every index format",
    "data_blob": "flt_data_parse (with and without a valid CRC)",
    "recording": "flt_recording_parse + flt_recording_sample",
    "window_store": "flt_window_store_init / push / view against a model of the contract",
    "checkpoint": "flt_ckpt_decode (with and without a valid CRC) -> encode",
    "secagg_msg": "flt_sa_*_decode (BEGIN ... REVEAL) -> encode",
    "secagg_client": "flt_secagg_* (the device's secure-aggregation rounds) on host messages",
}


@dataclass
class Result:
    target: str
    runs: int = 0
    exec_per_s: int = 0
    cov: int = 0
    ft: int = 0
    corpus_units: int = 0
    corpus_bytes: int = 0
    seconds: float = 0.0
    returncode: int = 0
    log: Path | None = None
    findings: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and self.returncode == 0


def harness_sources() -> list[Path]:
    """The C every harness links against: the runtime components of the host library, the
    device's data readers (fltiny.native.store's list) and its checkpoint record."""
    return [*runtime_sources(COMPONENTS), *(store.APP_DIR / f for f in store.SOURCES),
            store.APP_DIR / "flt_checkpoint.c"]


def _ignorelist() -> Path:
    """IGNORE copied to a path named by its content, so editing it changes the build's key."""
    text = IGNORE.read_bytes()
    out = build_dir().parent / "fuzz" / f"ignore-{hashlib.sha256(text).hexdigest()[:12]}.txt"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(text)
    return out


def build(target: str, defines: Sequence[str] = ()) -> Path:
    """The libFuzzer executable of ``target`` (cached under build/native/<key>/)."""
    if target not in TARGETS:
        raise ToolchainError(f"unknown fuzz target '{target}'; known: {', '.join(TARGETS)}")
    if shutil.which(CC) is None:
        raise ToolchainError(f"{CC} not found: run 'make setup' (Debian clang-14, libfuzzer-14-dev, "
                             "libclang-rt-14-dev)")
    flags = [*STRICT_FLAGS, *SANITIZE, f"-fsanitize-coverage-ignorelist={_ignorelist()}",
             *(f"-D{d}" for d in defines), f"-I{RUNTIME_DIR}",
             f"-I{store.APP_DIR}", f"-I{FUZZ_DIR}"]
    suffix = "".join(f"-{d.split('=')[0].lower()}" for d in defines)
    return build_program(CC, [FUZZ_DIR / f"{target}.c", *harness_sources()], flags,
                         f"fuzz-{target}{suffix}", include_dirs=[store.APP_DIR, FUZZ_DIR])


_STATS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\d+)(b|Kb|Mb)", re.M)
_FINAL = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
_UNIT = {"b": 1, "Kb": 1 << 10, "Mb": 1 << 20}


def parse_log(text: str, res: Result) -> None:
    """Fills ``res`` from libFuzzer's output: the last stats line and the final stats."""
    lines = _STATS.findall(text)
    if lines:
        n, cov, ft, units, size, unit = lines[-1]
        res.runs, res.cov, res.ft = int(n), int(cov), int(ft)
        res.corpus_units, res.corpus_bytes = int(units), int(size) * _UNIT[unit]
    final = dict(_FINAL.findall(text))
    if "number_of_executed_units" in final:
        res.runs = int(final["number_of_executed_units"])


def run_target(target: str, runs: int, *, seed: int = 1, timeout_s: int = 10,
               rss_limit_mb: int = 2048, max_len: int = 4096, defines: Sequence[str] = (),
               seeds: bool = True, work_root: Path | None = None) -> Result:
    """Builds ``target`` and runs it for ``runs`` executions from its seed corpus (``seeds``)
    in a fresh working corpus under ``work_root`` (default build/fuzz/: one run of a target at
    a time there; give another root to run beside it); findings are the crash/leak/timeout/oom
    files it wrote."""
    exe = build(target, defines)
    name = exe.name.removeprefix("fuzz-")
    work = (work_root or build_dir().parent / "fuzz") / name
    shutil.rmtree(work, ignore_errors=True)
    corpus, artifacts = work / "corpus", work / "artifacts"
    corpus.mkdir(parents=True)
    artifacts.mkdir()
    cmd = [str(exe), f"-runs={runs}", f"-seed={seed}", f"-timeout={timeout_s}",
           f"-rss_limit_mb={rss_limit_mb}", f"-max_len={max_len}", "-print_final_stats=1",
           f"-artifact_prefix={artifacts}/", str(corpus)]
    if seeds and (SEED_DIR / target).is_dir():
        cmd.append(str(SEED_DIR / target))
    log = work / "libfuzzer.log"  # written as it runs: `tail -f` shows the progress
    res = Result(target, log=log)
    t0 = time.monotonic()
    with log.open("w") as out:
        out.write(" ".join(cmd) + "\n")
        out.flush()
        res.returncode = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    res.seconds = time.monotonic() - t0
    parse_log(log.read_text(errors="replace"), res)
    # libFuzzer's own average is in whole seconds (0 below one): executions over the wall time
    # of the process instead, start-up and seed loading included
    res.exec_per_s = int(res.runs / max(res.seconds, 1e-3))
    res.findings = sorted(p for p in artifacts.iterdir() if p.name.startswith(FINDING_PREFIXES))
    return res


def fuzz(targets: Sequence[str], runs: int, *, jobs: int = 1, seed: int = 1, timeout_s: int = 10,
         rss_limit_mb: int = 2048, defines: Sequence[str] = (),
         work_root: Path | None = None) -> list[Result]:
    """run_target for each target, ``jobs`` at a time; results in the order of ``targets``."""
    for t in targets:
        build(t, defines)  # compile errors first, one at a time
    # the slowest target (several HMACs per frame) starts first, the others share the other job
    order = sorted(targets, key=lambda t: t != SLOWEST)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = {t: pool.submit(run_target, t, runs, seed=seed, timeout_s=timeout_s,
                               rss_limit_mb=rss_limit_mb, defines=defines, work_root=work_root)
                for t in order}
        return [done[t].result() for t in targets]


def table(results: Sequence[Result]) -> str:
    rows = ["| target | executions | exec/s | cov | ft | corpus | findings |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        found = ", ".join(p.name.split("-")[0] for p in r.findings) or (
            "0" if r.returncode == 0 else f"exit {r.returncode}")
        rows.append(f"| {r.target} | {r.runs:,} | {r.exec_per_s:,} | {r.cov:,} | {r.ft:,} | "
                    f"{r.corpus_units} ({r.corpus_bytes:,} B) | {found} |")
    return "\n".join(rows)


def failures(results: Sequence[Result]) -> list[str]:
    """One line per finding: the target and the input's path (or the log's, for an exit
    without an input file)."""
    out = [f"FINDING {r.target}: {p}" for r in results for p in r.findings]
    out += [f"FINDING {r.target}: libFuzzer exited {r.returncode} without an input file; see {r.log}"
            for r in results if r.returncode != 0 and not r.findings]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, required=True, help="executions per target")
    ap.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    ap.add_argument("--jobs", type=int, default=1, help="targets run at once")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed")
    ap.add_argument("--timeout", type=int, default=10, help="seconds per input")
    ap.add_argument("--rss-limit-mb", type=int, default=2048)
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="where the working corpora, logs and findings go (default build/fuzz)")
    ap.add_argument("--define", action="append", default=[], metavar="NAME",
                    help="compile the harnesses with -DNAME (FLT_FUZZ_PLANTED_BUG: msg_ack's "
                         "deliberate bug, to see a finding reported)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    results = fuzz(args.targets, args.runs, jobs=args.jobs, seed=args.seed,
                   timeout_s=args.timeout, rss_limit_mb=args.rss_limit_mb, defines=args.define,
                   work_root=args.work_dir)
    print(table(results))
    print(f"{len(results)} targets, {time.monotonic() - t0:.0f} s")
    bad = failures(results)
    for line in bad:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
