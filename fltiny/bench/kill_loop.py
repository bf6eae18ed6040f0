"""A kill loop: ``fltiny run`` SIGKILLed at seeded random points and resumed with ``--resume``,
with boards that outlive it, then compared with an uninterrupted run of the same seed.

The boards are started apart from the aggregator, as real boards are: ``fltiny emulate --pty
--fleet-file F`` in its own process; the aggregator is ``fltiny run --fleet-file F`` in
another, killed with SIGKILL and started again with ``--resume`` (the boards keep running and
keep their state: residuals, sequence numbers, the DELTA of the round in flight). The host's
per-device state is in the run store (fltiny.server.store ``device_states``), so the resumed
run carries on exactly: the final model and every checkpoint must be bit-identical to an
uninterrupted run's on fresh boards, with no round lost.

Where a kill lands is chosen by seed among three kinds: ``start-up`` (a random time after the
launch, before the rounds: probe, re-attach, evaluator), ``rounds`` (a random time up to two
rounds after the rounds begin: during a device exchange, an aggregation or between rounds) and ``checkpoint``
(inside the checkpoint's SQLite transaction: the run is started with FLTINY_TEST_CKPT_HOLD_S,
which keeps each checkpoint transaction open that long after a marker line on stderr,
fltiny.server.store; the kill comes a random time after the marker, before the commit).
bench/kill_loop.py prints the table; tests/test_kill_loop.py runs a short loop.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fltiny.server.store import CKPT_HOLD_ENV, RunStore

KINDS = ("start-up", "rounds", "checkpoint")
HOLD_S = 0.4  # each checkpoint transaction held open this long in the killed runs
_STARTED = re.compile(r"running board\(s\); the host holds")
_CKPT = re.compile(r"checkpoint transaction of round (\d+) open")


@dataclass
class Kill:
    index: int
    kind: str  # KINDS
    delay: float  # in [0, 1): how far into its window (start-up, rounds, the transaction)
    nth: int = 1  # checkpoint: the nth checkpoint transaction of the launch
    landed: str = ""  # where it landed, from the store and the process's output
    rounds_before: int = 0  # the store's last checkpointed round before this launch
    rounds_after: int = 0  # ... after the kill
    killed: bool = False  # False: the process had ended before the kill was due


@dataclass
class KillLoopResult:
    rounds: int
    boards: int
    kills: list[Kill]
    launches: int
    final_sha256: str
    reference_sha256: str
    versions_equal: bool  # every checkpoint's sha256 equals the reference's, in order
    updates_equal: bool  # every device row (accepted, examples, loss, payload sha256) equal
    lost_rounds: list[int]  # rounds missing, or whose accepted updates differ from the reference
    seconds: float
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (all(k.killed for k in self.kills) and not self.lost_rounds
                and self.versions_equal and self.updates_equal
                and self.final_sha256 == self.reference_sha256)


def _cli() -> list[str]:
    return [sys.executable, "-m", "fltiny.cli"]


@contextmanager
def emulate(bundle: Path, board: str, n: int, fleet_file: Path, env: dict[str, str],
            seed: int = 0):
    """``fltiny emulate --pty --fleet-file`` in its own process, until the block ends (then
    SIGTERM: it stops its boards)."""
    cmd = _cli() + ["emulate", "--board", board, "-n", str(n), "--pty", "--bundle",
                    str(bundle), "--fleet-file", str(fleet_file), "--seed", str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"fltiny emulate ended: {proc.stderr.read()}")
            if line.startswith("running"):
                break
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class _Launch:
    """One ``fltiny run`` process, its output read by threads (marker times kept)."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: list[str]) -> None:
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.started: float | None = None  # the rounds begin (the fleet is ready)
        self.ckpt: list[tuple[float, int]] = []  # (time, round) of each checkpoint marker
        self.lines: list[str] = []
        self.log = log
        self._threads = [threading.Thread(target=self._read, args=(s,), daemon=True)
                         for s in (self.proc.stdout, self.proc.stderr)]
        for t in self._threads:
            t.start()

    def _read(self, stream) -> None:
        for line in stream:
            now = time.monotonic()
            self.lines.append(line.rstrip())
            if self.started is None and _STARTED.search(line):
                self.started = now
            m = _CKPT.search(line)
            if m:
                self.ckpt.append((now, int(m.group(1))))

    def wait_for(self, cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            if self.proc.poll() is not None:
                return bool(cond())
            time.sleep(0.005)
        return False

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(5)
        return code


def _latest_round(store_path: Path) -> int:
    if not store_path.exists():
        return -1
    store = RunStore.open_readonly(store_path)
    try:
        c = store.latest()
        return -1 if c is None else c.round
    finally:
        store.close()


def _run_cmd(fleet_file: Path, bundle: Path, out: Path, rounds: int, extra: list[str]) -> list[str]:
    return _cli() + ["-v", "run", "--fleet-file", str(fleet_file), "--rounds", str(rounds),
                     "--bundle", str(bundle), "--out", str(out), *extra]


def plan(kills: int, seed: int) -> list[Kill]:
    """The kills, by seed: each kind at least once when there are three or more."""
    rng = random.Random(seed)
    kinds = [rng.choices(KINDS, weights=(0.15, 0.6, 0.25))[0] for _ in range(kills)]
    if kills >= len(KINDS):
        for kind, at in zip(KINDS, rng.sample(range(kills), len(KINDS)), strict=True):
            kinds[at] = kind
    return [Kill(i + 1, kind, rng.uniform(0.0, 0.95), rng.randint(1, 3))
            for i, kind in enumerate(kinds)]


def run_loop(bundle: Path, build_root: Path, work: Path, *, board: str = "qemu-m4f",
             boards: int = 3, rounds: int = 40, kills: int = 20, seed: int = 0,
             extra: tuple[str, ...] = ("--epochs", "1"), say=lambda _m: None) -> KillLoopResult:
    """The uninterrupted reference run, then the killed and resumed one (module docstring),
    each on fresh boards of its own ``fltiny emulate``."""
    t_all = time.monotonic()
    env = dict(os.environ, FLTINY_BUILD_DIR=str(build_root), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop(CKPT_HOLD_ENV, None)
    log: list[str] = []
    ref_out, out = work / "reference", work / "killed"
    ref_fleet, fleet = work / "reference-fleet.toml", work / "killed-fleet.toml"

    say(f"reference: {rounds} rounds on {boards} x {board}, uninterrupted")
    with emulate(bundle, board, boards, ref_fleet, env):
        t0 = time.monotonic()
        ref = _Launch(_run_cmd(ref_fleet, bundle, ref_out, rounds, list(extra)), env, log)
        code = ref.finish(1800)
        if code != 0:
            raise RuntimeError("the reference run failed:\n" + "\n".join(ref.lines[-30:]))
        ref_s = time.monotonic() - t0
        startup_s = (ref.started or ref.t0) - ref.t0
    round_s = max(0.2, (ref_s - startup_s) / rounds)
    say(f"reference: {ref_s:.1f} s ({startup_s:.1f} s start-up, {round_s:.2f} s a round)")

    kill_plan = plan(kills, seed)
    killed_env = dict(env, **{CKPT_HOLD_ENV: str(HOLD_S)})
    launches = 0
    with emulate(bundle, board, boards, fleet, env):
        for k in kill_plan:
            before = _latest_round(out / "run.sqlite")
            k.rounds_before = before
            resume = ["--resume"] if (out / "run.sqlite").exists() else []
            launch = _Launch(_run_cmd(fleet, bundle, out, rounds, list(extra) + resume),
                             killed_env, log)
            launches += 1
            if k.kind == "start-up":  # within the last launch's start-up time
                due = launch.t0 + k.delay * startup_s
                launch.wait_for(lambda d=due: time.monotonic() >= d, startup_s + 30)
            elif k.kind == "rounds":  # up to 2 rounds (with their held checkpoints) in
                launch.wait_for(lambda la=launch: la.started is not None, 120)
                base = launch.started or time.monotonic()
                due = base + k.delay * 2.0 * (round_s + HOLD_S)
                launch.wait_for(lambda d=due: time.monotonic() >= d, 120)
            else:
                launch.wait_for(lambda la=launch, n=k.nth: len(la.ckpt) >= n, 120)
                if len(launch.ckpt) >= k.nth:
                    due = launch.ckpt[k.nth - 1][0] + k.delay * HOLD_S
                    launch.wait_for(lambda d=due: time.monotonic() >= d, 10)
            k.killed = launch.proc.poll() is None
            if k.killed:
                launch.proc.send_signal(signal.SIGKILL)
            launch.finish(30)
            if launch.started is not None:
                startup_s = launch.started - launch.t0
            k.rounds_after = _latest_round(out / "run.sqlite")
            k.landed = _where(k, launch)
            log += [f"--- kill {k.index} ({k.kind}): {k.landed}"] + launch.lines[-12:]
            say(f"kill {k.index:2d} ({k.kind}): {k.landed}; store at round {k.rounds_after}")
        final = _Launch(_run_cmd(fleet, bundle, out, rounds, list(extra) + ["--resume"]),
                        env, log)
        launches += 1
        code = final.finish(1800)
        log += ["--- final resume"] + final.lines[-30:]
        if code != 0:
            raise RuntimeError("the final resume failed:\n" + "\n".join(final.lines[-30:]))
    return _compare(ref_out / "run.sqlite", out / "run.sqlite", rounds, boards, kill_plan,
                    launches, time.monotonic() - t_all, log)


def _where(k: Kill, launch: _Launch) -> str:
    if not k.killed:
        return "missed: the run had ended"
    started = launch.started is not None
    if k.kind == "checkpoint" and len(launch.ckpt) >= k.nth:
        rnd = launch.ckpt[k.nth - 1][1]
        committed = k.rounds_after >= rnd
        return (f"checkpoint write of round {rnd} (transaction open, "
                f"{'committed' if committed else 'rolled back'})")
    if not started:
        return "start-up (before the rounds)"
    marks = [r for _t, r in launch.ckpt]
    if marks and k.rounds_after < marks[-1]:
        return f"checkpoint write of round {marks[-1]} (transaction open, rolled back)"
    return f"round {k.rounds_after + 1} (exchange or aggregation)"


def _rows(store_path: Path):
    store = RunStore.open_readonly(store_path)
    try:
        versions = [(c.version, c.round, c.sha256) for c in store.history()]
        updates = [(u["round"], u["device_id"], u["accepted"], u["num_examples"], u["loss"],
                    u["payload_sha256"]) for u in store.updates()]
    finally:
        store.close()
    return versions, updates


def _compare(ref_path: Path, path: Path, rounds: int, boards: int, kills: list[Kill],
             launches: int, seconds: float, log: list[str]) -> KillLoopResult:
    ref_v, ref_u = _rows(ref_path)
    got_v, got_u = _rows(path)
    lost = []
    for rnd in range(1, rounds + 1):
        want = sorted(u for u in ref_u if u[0] == rnd and u[2])
        have = sorted(u for u in got_u if u[0] == rnd and u[2])
        if not any(v[1] == rnd for v in got_v) or have != want:
            lost.append(rnd)
    return KillLoopResult(rounds, boards, kills, launches,
                          got_v[-1][2] if got_v else "", ref_v[-1][2] if ref_v else "",
                          got_v == ref_v, got_u == ref_u, lost, seconds, log)


def _at(rnd: int) -> str:
    return "no store" if rnd < 0 else f"round {rnd}"


def table(r: KillLoopResult) -> str:
    lines = ["| kill | kind | where it landed | store before -> after |",
             "| ---: | --- | --- | --- |"]
    for k in r.kills:
        lines.append(f"| {k.index} | {k.kind} | {k.landed} | {_at(k.rounds_before)} -> "
                     f"{_at(k.rounds_after)} |")
    kinds = {kind: sum(1 for k in r.kills if k.kind == kind and k.killed) for kind in KINDS}
    same = r.final_sha256 == r.reference_sha256
    lines += [
        "",
        "| | |",
        "| --- | --- |",
        f"| boards | {r.boards} (started apart: fltiny emulate --pty) |",
        f"| rounds | {r.rounds} |",
        f"| SIGKILLs | {sum(k.killed for k in r.kills)} of {len(r.kills)} "
        f"({', '.join(f'{n} {kind}' for kind, n in kinds.items())}) |",
        f"| aggregator launches | {r.launches} |",
        f"| lost rounds | {len(r.lost_rounds)}"
        + (f" ({', '.join(map(str, r.lost_rounds))})" if r.lost_rounds else "") + " |",
        f"| every checkpoint bit-identical to the uninterrupted run | "
        f"{'yes' if r.versions_equal else 'no'} |",
        f"| every device row (accepted, examples, loss, payload sha256) identical | "
        f"{'yes' if r.updates_equal else 'no'} |",
        f"| final model sha256 | {r.final_sha256[:16]} (uninterrupted {r.reference_sha256[:16]}: "
        f"{'identical' if same else 'DIFFERENT'}) |",
        f"| wall time | {r.seconds:.0f} s |",
    ]
    return "\n".join(lines)
