"""The append-only run store (SQLite): every round's global model with its sha256.

Tables: ``runs`` (configuration), ``checkpoints`` (one row per global model version: the round
that produced it, float32 parameters, sha256 of those bytes, server-optimizer state, metrics),
``updates`` (one row per device and round: accepted or why not, bytes, examples, loss, norm,
anomaly score, and ``figures``: what the fleet measured for that device, e.g. the bridge's wire
bytes and replay verdict, as JSON). A round's checkpoint and its update rows are written in one
transaction. Triggers forbid UPDATE and DELETE on checkpoints, so a finished round's
checkpoint can never change; a rollback appends a new version holding an older version's
parameters. Each write is one transaction, so a crash loses at most the round in flight.

``device_states`` holds, per checkpoint version, what the host knows of each device it talks
to (fltiny.bridge.fleet ``BridgeFleet.host_state``: the model version and exact parameters the
device holds, its last sequence number, its HELLO, ...; an opaque blob here), written in the
checkpoint's transaction, so ``--resume`` carries on with boards that outlived the aggregator
exactly where the checkpoint left them. ``seq_leases`` holds, per device, a bound on the
sequence numbers the host has used: the host never sends one at or above it, a checkpoint
raises it to the next sequence number plus ``SEQ_LEASE``, and a resumed host starts there and
first raises it again (``take_seq_leases``), so no two host processes ever send the same
number to a device (its receiver refuses old ones: docs/protocol.md "Host restart"). It is the
one table rows of which are updated.

``audit`` holds one hash-linked record per checkpoint version, written in the checkpoint's
transaction (fltiny.server.audit; ``verify``). ``controls`` holds operator actions queued with
``fltiny ctl`` (fltiny.server.controls): the round loop applies the ones no audit record holds
yet. Both are append-only too. A second process (``fltiny ctl``, the dashboard) opens the same
file: connections wait up to 30 s for a lock; ``RunStore.open_readonly`` never writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fltiny.errors import UsageError
from fltiny.server import audit
from fltiny.server.controls import ACTIONS, Control

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created REAL NOT NULL, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, round INTEGER NOT NULL,
    params BLOB NOT NULL, sha256 TEXT NOT NULL, state BLOB, metrics TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
    PRIMARY KEY (run_id, version));
CREATE TABLE IF NOT EXISTS updates (
    run_id TEXT NOT NULL, round INTEGER NOT NULL, device_id INTEGER NOT NULL,
    accepted INTEGER NOT NULL, reason TEXT NOT NULL, bytes_up INTEGER, bytes_down INTEGER,
    num_examples INTEGER, loss REAL, norm REAL, anomaly REAL, figures TEXT,
    version INTEGER, payload_sha256 TEXT, reputation REAL);
CREATE TABLE IF NOT EXISTS audit (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, round INTEGER NOT NULL,
    body TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (run_id, version));
CREATE TABLE IF NOT EXISTS controls (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, created REAL NOT NULL, action TEXT NOT NULL,
    arg INTEGER NOT NULL, origin TEXT NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS device_states (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, device_id INTEGER NOT NULL,
    state BLOB NOT NULL, PRIMARY KEY (run_id, version, device_id));
CREATE TABLE IF NOT EXISTS seq_leases (
    run_id TEXT NOT NULL, device_id INTEGER NOT NULL, ceiling INTEGER NOT NULL,
    PRIMARY KEY (run_id, device_id));
CREATE TRIGGER IF NOT EXISTS device_states_no_update BEFORE UPDATE ON device_states
    BEGIN SELECT RAISE(ABORT, 'device states are append-only'); END;
CREATE TRIGGER IF NOT EXISTS device_states_no_delete BEFORE DELETE ON device_states
    BEGIN SELECT RAISE(ABORT, 'device states are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
CREATE TRIGGER IF NOT EXISTS controls_no_update BEFORE UPDATE ON controls
    BEGIN SELECT RAISE(ABORT, 'controls are append-only'); END;
CREATE TRIGGER IF NOT EXISTS controls_no_delete BEFORE DELETE ON controls
    BEGIN SELECT RAISE(ABORT, 'controls are append-only'); END;
"""
UPDATE_COLUMNS = ("round", "device_id", "accepted", "reason", "bytes_up", "bytes_down",
                  "num_examples", "loss", "norm", "anomaly", "figures", "version",
                  "payload_sha256", "reputation")


# sequence numbers one host process may send to a device between two checkpoints (a round
# sends a few messages of at most a few hundred chunks; retransmissions reuse their number):
# 2^20 leaves room for 4,095 resumes in the 32-bit space
SEQ_LEASE = 1 << 20
CKPT_HOLD_ENV = "FLTINY_TEST_CKPT_HOLD_S"


@dataclass(frozen=True)
class DeviceRecord:
    """One device's host-side state at a checkpoint (``state``: the fleet's own encoding) and
    the next sequence number the host would send it."""

    state: bytes
    next_seq: int


def _hold_for_tests(round_: int) -> None:
    """Tests and bench/kill_loop.py only: with FLTINY_TEST_CKPT_HOLD_S set, keep the checkpoint
    transaction open that many seconds before its commit, after a line on stderr saying so, so
    that a SIGKILL can land inside the write."""
    import os
    import sys

    hold = os.environ.get(CKPT_HOLD_ENV)
    if hold:
        print(f"fltiny-test: checkpoint transaction of round {round_} open", file=sys.stderr,
              flush=True)
        time.sleep(float(hold))


@dataclass(frozen=True)
class Checkpoint:
    version: int
    round: int
    params: np.ndarray
    sha256: str
    state: dict[str, np.ndarray]
    metrics: dict[str, Any]
    note: str


def params_sha256(params: np.ndarray) -> str:
    return hashlib.sha256(params.astype("<f4").tobytes()).hexdigest()


def _pack_state(state: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **state)
    return buf.getvalue()


def _unpack_state(blob: bytes | None) -> dict[str, np.ndarray]:
    if not blob:
        return {}
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


class RunStore:
    def __init__(self, path: Path, run_id: str = "run", readonly: bool = False) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.is_file():
                    raise UsageError(f"no run store at {self.path}: give the --out directory of "
                                     "an 'fltiny run' or 'fltiny simulate' (it holds run.sqlite)")
                self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                          timeout=30, check_same_thread=False)
                self.db.execute("SELECT 1 FROM checkpoints LIMIT 1")
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.executescript(SCHEMA)
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(updates)")}
            for name, kind in (("figures", "TEXT"), ("version", "INTEGER"),
                               ("payload_sha256", "TEXT"), ("reputation", "REAL")):
                if name not in columns:  # a store written before this column
                    self.db.execute(f"ALTER TABLE updates ADD COLUMN {name} {kind}")
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{self.path} is not a usable run store ({exc}): choose another "
                             "--out or delete it") from exc

    @classmethod
    def open_readonly(cls, run_dir: Path, run_id: str = "run") -> RunStore:
        """The store of a run directory (or a store file), opened without writing: for the
        audit, the dashboard and readers while the run goes on. UsageError when missing."""
        run_dir = Path(run_dir)
        path = run_dir / "run.sqlite" if run_dir.is_dir() or not run_dir.suffix else run_dir
        return cls(path, run_id, readonly=True)

    def has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (name,)).fetchone() is not None

    def close(self) -> None:
        self.db.close()

    def config(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT config FROM runs WHERE run_id = ?", (self.run_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def start(self, config: dict[str, Any]) -> None:
        # OR IGNORE: a run killed between this transaction and its first checkpoint's is
        # started again by --resume (the row of the first attempt stays)
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?)",
                            (self.run_id, time.time(), json.dumps(config, sort_keys=True)))

    def save(self, round_: int, params: np.ndarray, state: dict[str, np.ndarray],
             metrics: dict[str, Any], note: str = "",
             updates: list[dict[str, Any]] | None = None,
             controls: list[dict[str, Any]] | None = None,
             base_sha256: str | None = None,
             devices: dict[int, DeviceRecord] | None = None) -> Checkpoint:
        """Append the next version; ``updates`` (one dict per device, see ``_insert_updates``)
        and the version's audit record are written in the same transaction. ``controls``: the
        audit fields of the controls applied before this round (``Control.record()``, plus
        ``to_version`` for a rollback); ``base_sha256``: the model the round started from
        (default: the previous version's); ``devices``: the fleet's per-device host state
        (``device_states``, ``seq_leases``)."""
        latest = self.latest_record()
        version = 0 if latest is None else latest[0] + 1
        p = params.astype("<f4")
        digest = params_sha256(p)
        state_blob = _pack_state(state)
        metrics_text = json.dumps(metrics, sort_keys=True)
        with self.db:
            self.db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.run_id, version, round_, p.tobytes(), digest, state_blob,
                 metrics_text, note, time.time()),
            )
            self._insert_updates(round_, version, updates or [])
            body = audit.round_body(
                version=version, round_=round_, prev=audit.GENESIS if latest is None else latest[1],
                model_sha256=digest,
                base_sha256=base_sha256 or ("" if latest is None else latest[2]),
                state_sha256=audit.sha256_hex(state_blob),
                metrics_sha256=audit.sha256_hex(metrics_text), note=note,
                rows=self.version_rows(version), controls=controls or [])
            text = audit.canonical(body)
            self.db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?)",
                            (self.run_id, version, round_, text, audit.sha256_hex(text)))
            for dev, rec in sorted((devices or {}).items()):
                self.db.execute("INSERT INTO device_states VALUES (?, ?, ?, ?)",
                                (self.run_id, version, dev, rec.state))
                self.db.execute(
                    "INSERT INTO seq_leases VALUES (?, ?, ?) ON CONFLICT (run_id, device_id) "
                    "DO UPDATE SET ceiling = max(ceiling, excluded.ceiling)",
                    (self.run_id, dev, rec.next_seq + SEQ_LEASE))
            _hold_for_tests(round_)
        return Checkpoint(version, round_, p.astype(np.float32), digest, state, metrics, note)

    def device_states(self) -> dict[int, bytes]:
        """Each device's newest host state (``device_states``); empty for a store written
        before the table existed or by a fleet without one (the simulator)."""
        if not self.has_table("device_states"):
            return {}
        rows = self.db.execute(
            "SELECT device_id, state FROM device_states d WHERE run_id = ? AND version = "
            "(SELECT MAX(version) FROM device_states e WHERE e.run_id = d.run_id AND "
            "e.device_id = d.device_id)", (self.run_id,))
        return {int(dev): bytes(state) for dev, state in rows}

    def take_seq_leases(self, device_ids: list[int]) -> dict[int, int]:
        """For a resumed host: the first sequence number it may send each device (the lease's
        ceiling), raised by ``SEQ_LEASE`` in the same transaction so that a host killed again
        before its next checkpoint is resumed above whatever this one sent. Devices without a
        lease are left out (the host starts their session at 1)."""
        out: dict[int, int] = {}
        with self.db:
            for dev in device_ids:
                row = self.db.execute("SELECT ceiling FROM seq_leases WHERE run_id = ? AND "
                                      "device_id = ?", (self.run_id, dev)).fetchone()
                if row is None:
                    continue
                out[dev] = int(row[0])
                self.db.execute("UPDATE seq_leases SET ceiling = ? WHERE run_id = ? AND "
                                "device_id = ?", (int(row[0]) + SEQ_LEASE, self.run_id, dev))
        return out

    def latest_record(self) -> tuple[int, str, str] | None:
        """(version, record hash, model sha256) of the newest audit record, or None."""
        row = self.db.execute(
            "SELECT a.version, a.hash, c.sha256 FROM audit a JOIN checkpoints c "
            "ON a.run_id = c.run_id AND a.version = c.version WHERE a.run_id = ? "
            "ORDER BY a.version DESC LIMIT 1", (self.run_id,)).fetchone()
        if row is None and self.latest() is not None:
            raise UsageError(f"{self.path} was written before fltiny kept an audit chain: start "
                             "a new run (another --out)")
        return row

    def _insert_updates(self, round_: int, version: int, rows: list[dict[str, Any]]) -> None:
        """Per-device rows of a round: device_id, accepted, reason, bytes_up, bytes_down,
        num_examples, loss, norm, anomaly, and optionally figures (a JSON-able dict) and
        payload_sha256 (fltiny.server.audit.update_sha256) and reputation (the device's
        score after the round, fltiny.server.reputation)."""
        self.db.executemany(
            "INSERT INTO updates (run_id, " + ", ".join(UPDATE_COLUMNS) + ") VALUES (:run, "
            ":rnd, :device_id, :accepted, :reason, :bytes_up, :bytes_down, :num_examples, "
            ":loss, :norm, :anomaly, :figures, :version, :payload_sha256, :reputation)",
            [{"payload_sha256": None, "reputation": None, **r, "run": self.run_id, "rnd": round_,
              "version": version,
              "figures": json.dumps(r.get("figures") or {}, sort_keys=True)} for r in rows],
        )

    def version_rows(self, version: int) -> list[dict[str, Any]]:
        """A version's per-device rows exactly as SQLite holds them (the audit digest's input)."""
        cur = self.db.execute("SELECT " + ", ".join(UPDATE_COLUMNS) + " FROM updates WHERE "
                              "run_id = ? AND version = ? ORDER BY rowid", (self.run_id, version))
        return [dict(zip(UPDATE_COLUMNS, r, strict=True)) for r in cur.fetchall()]

    def verify(self) -> audit.AuditResult:
        """Walk the audit chain against the tables (fltiny.server.audit.verify_chain)."""
        if not self.has_table("audit"):
            return audit.AuditResult(False, 0, "", "the store has no audit chain (written before "
                                     "fltiny kept one): nothing to verify")
        try:
            return audit.verify_chain(self.db, self.run_id, self.version_rows)
        except sqlite3.DatabaseError as exc:
            return audit.AuditResult(False, 0, "", f"the store file is damaged (sqlite: {exc})")

    # ---- controls (fltiny.server.controls) -------------------------------------------------

    def add_control(self, action: str, arg: int, origin: str = "operator") -> Control:
        if action not in ACTIONS:
            raise UsageError(f"unknown control '{action}': use one of {', '.join(ACTIONS)}")
        with self.db:
            row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM controls WHERE run_id = ?",
                                  (self.run_id,)).fetchone()
            c = Control(int(row[0]) + 1, time.time(), action, int(arg), origin)
            self.db.execute("INSERT INTO controls VALUES (?, ?, ?, ?, ?, ?)",
                            (self.run_id, c.seq, c.created, c.action, c.arg, c.origin))
        return c

    def controls(self) -> list[Control]:
        if not self.has_table("controls"):
            return []
        return [Control(*r) for r in self.db.execute(
            "SELECT seq, created, action, arg, origin FROM controls WHERE run_id = ? "
            "ORDER BY seq", (self.run_id,))]

    def applied_controls(self) -> list[tuple[int, int]]:
        """(control seq, version whose audit record applied it), in order."""
        if not self.has_table("audit"):
            return []
        out = []
        for version, body in self.db.execute("SELECT version, body FROM audit WHERE run_id = ? "
                                             "ORDER BY version", (self.run_id,)):
            out += [(int(c["seq"]), version) for c in json.loads(body).get("controls", [])]
        return out

    def pending_controls(self) -> list[Control]:
        """Controls no audit record has applied yet, in the order they were queued."""
        done = {seq for seq, _v in self.applied_controls()}
        return [c for c in self.controls() if c.seq not in done]

    def _row(self, row: tuple) -> Checkpoint:
        version, round_, blob, digest, state, metrics, note = row
        params = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        if params_sha256(params) != digest:
            raise UsageError(f"checkpoint version {version} of {self.path} fails its sha256 check")
        return Checkpoint(version, round_, params, digest, _unpack_state(state),
                          json.loads(metrics), note)

    def latest(self) -> Checkpoint | None:
        row = self.db.execute(
            "SELECT version, round, params, sha256, state, metrics, note FROM checkpoints "
            "WHERE run_id = ? ORDER BY version DESC LIMIT 1", (self.run_id,)).fetchone()
        return None if row is None else self._row(row)

    def history(self) -> list[Checkpoint]:
        rows = self.db.execute(
            "SELECT version, round, params, sha256, state, metrics, note FROM checkpoints "
            "WHERE run_id = ? ORDER BY version", (self.run_id,)).fetchall()
        return [self._row(r) for r in rows]

    def updates(self, round_: int | None = None) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT round, device_id, accepted, reason, bytes_up, bytes_down, num_examples, loss, "
            "norm, anomaly, figures, version, payload_sha256, reputation FROM updates WHERE run_id = ? AND "
            "(? IS NULL OR round = ?) ORDER BY rowid", (self.run_id, round_, round_))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["figures"] = json.loads(r["figures"]) if r["figures"] else {}
        return rows

    def rollback(self, to_round: int) -> Checkpoint:
        """Append a new version with the parameters of the last checkpoint of ``to_round``
        (recorded as a rollback control of origin ``api``, applied at once)."""
        src = self.checkpoint_of_round(to_round)
        c = self.add_control("rollback", to_round, origin="api")
        return self.save(src.round, src.params, src.state, src.metrics,
                         note=f"rollback to version {src.version} (round {src.round})",
                         controls=[{**c.record(), "to_version": src.version}],
                         base_sha256=src.sha256)

    def checkpoint_of_round(self, round_: int) -> Checkpoint:
        """The last checkpoint of ``round_`` (UsageError naming the rounds there are)."""
        target = [c for c in self.history() if c.round == round_]
        if not target:
            rounds = sorted({c.round for c in self.history()})
            have = f"rounds {rounds[0]}-{rounds[-1]}" if rounds else "no rounds"
            raise UsageError(f"no checkpoint of round {round_} in {self.path} (it holds {have})")
        return target[-1]
