"""The append-only run store (SQLite): every round's global model with its sha256.

Tables: ``runs`` (configuration), ``checkpoints`` (one row per global model version: the round
that produced it, float32 parameters, sha256 of those bytes, server-optimizer state, metrics),
``updates`` (one row per device and round: accepted or why not, bytes, examples, loss, norm,
anomaly score, and ``figures``: what the fleet measured for that device, e.g. the bridge's wire
bytes and replay verdict, as JSON). A round's checkpoint and its update rows are written in one
transaction. Triggers forbid UPDATE and DELETE on checkpoints, so a finished round's
checkpoint can never change; a rollback appends a new version holding an older version's
parameters. Each write is one transaction, so a crash loses at most the round in flight.
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
    num_examples INTEGER, loss REAL, norm REAL, anomaly REAL, figures TEXT);
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
"""


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
    def __init__(self, path: Path, run_id: str = "run") -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path)
            self.db.executescript(SCHEMA)
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(updates)")}
            if "figures" not in columns:  # a store written before per-device figures
                self.db.execute("ALTER TABLE updates ADD COLUMN figures TEXT")
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{self.path} is not a usable run store ({exc}): choose another "
                             "--out or delete it") from exc

    def close(self) -> None:
        self.db.close()

    def config(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT config FROM runs WHERE run_id = ?", (self.run_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def start(self, config: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT INTO runs VALUES (?, ?, ?)",
                            (self.run_id, time.time(), json.dumps(config, sort_keys=True)))

    def save(self, round_: int, params: np.ndarray, state: dict[str, np.ndarray],
             metrics: dict[str, Any], note: str = "",
             updates: list[dict[str, Any]] | None = None) -> Checkpoint:
        """Append the next version; ``updates`` (one dict per device, see ``record_updates``)
        are written in the same transaction."""
        latest = self.latest()
        version = 0 if latest is None else latest.version + 1
        p = params.astype("<f4")
        digest = params_sha256(p)
        with self.db:
            self.db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.run_id, version, round_, p.tobytes(), digest, _pack_state(state),
                 json.dumps(metrics, sort_keys=True), note, time.time()),
            )
            self._insert_updates(round_, updates or [])
        return Checkpoint(version, round_, p.astype(np.float32), digest, state, metrics, note)

    def record_updates(self, round_: int, rows: list[dict[str, Any]]) -> None:
        """Per-device rows of a round: device_id, accepted, reason, bytes_up, bytes_down,
        num_examples, loss, norm, anomaly, and optionally figures (a JSON-able dict)."""
        with self.db:
            self._insert_updates(round_, rows)

    def _insert_updates(self, round_: int, rows: list[dict[str, Any]]) -> None:
        self.db.executemany(
            "INSERT INTO updates VALUES (:run, :rnd, :device_id, :accepted, :reason, :bytes_up, "
            ":bytes_down, :num_examples, :loss, :norm, :anomaly, :figures)",
            [{**r, "run": self.run_id, "rnd": round_,
              "figures": json.dumps(r.get("figures") or {}, sort_keys=True)} for r in rows],
        )

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
            "norm, anomaly, figures FROM updates WHERE run_id = ? AND (? IS NULL OR round = ?) "
            "ORDER BY rowid", (self.run_id, round_, round_))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["figures"] = json.loads(r["figures"]) if r["figures"] else {}
        return rows

    def rollback(self, to_round: int) -> Checkpoint:
        """Append a new version with the parameters of the last checkpoint of ``to_round``."""
        target = [c for c in self.history() if c.round == to_round]
        if not target:
            raise UsageError(f"no checkpoint for round {to_round} in {self.path}")
        src = target[-1]
        return self.save(src.round, src.params, src.state, src.metrics,
                         note=f"rollback to version {src.version} (round {src.round})")
