"""The audit chain of a run store: one hash-linked record per checkpoint version.

Each record is a canonical JSON body (sorted keys, no spaces) and its sha256. The body holds
the version and round, the model's sha256 (of the float32 parameters), the sha256 of the model
the round started from (``base_sha256``: the previous record's model, or the model a rollback
control restored), the sha256 of the server-optimizer state and of the metrics text, the round
note, the contributing devices (example count, payload sha256), the rejected ones (reason), the
control actions applied before the round (``fltiny ctl``, or the aggregator's own reputation
quarantine), a sha256 over every per-device row of the version, and ``prev``: the previous
record's hash (64 zeros for version 0). ``RunStore.save`` writes a version's checkpoint, its
rows and its record in one transaction, reading the rows back first so that the digests cover
exactly what SQLite holds.

``verify_chain`` walks the chain and cross-checks every record against the tables it
summarises; it names the first broken link (the round and version) and why. What a chain cannot
show on its own is a truncated tail: the head hash it reports is what an operator compares with
a copy kept elsewhere (metrics.json keeps it too).

The payload sha256 of a device is the sha256 of its update as the aggregator decoded it
(float32 little-endian delta), unless the fleet reported the wire payload's own hash.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GENESIS = "0" * 64


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def update_sha256(delta: np.ndarray) -> str:
    """The payload hash of a decoded update: sha256 of its float32 little-endian bytes."""
    return sha256_hex(np.ascontiguousarray(delta, dtype="<f4").tobytes())


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """sha256 over a version's per-device rows as SQLite returns them (column order fixed)."""
    return sha256_hex(canonical([[r[k] for k in sorted(r)] for r in rows]))


def round_body(*, version: int, round_: int, prev: str, model_sha256: str, base_sha256: str,
               state_sha256: str, metrics_sha256: str, note: str,
               rows: list[dict[str, Any]], controls: list[dict[str, Any]]) -> dict[str, Any]:
    """The body of one record (see the module docstring); ``rows`` as read back from the
    store's updates table (accepted, device_id, num_examples, payload_sha256, reason, ...)."""
    return {
        "version": version, "round": round_, "prev": prev, "model_sha256": model_sha256,
        "base_sha256": base_sha256, "state_sha256": state_sha256,
        "metrics_sha256": metrics_sha256, "note": note,
        "contributors": [{"device": r["device_id"], "examples": r["num_examples"],
                          "payload_sha256": r["payload_sha256"]} for r in rows if r["accepted"]],
        "rejected": [{"device": r["device_id"], "reason": r["reason"]}
                     for r in rows if not r["accepted"]],
        "controls": controls,
        "rows_sha256": rows_digest(rows),
    }


@dataclass(frozen=True)
class AuditResult:
    """What ``verify_chain`` found: ``ok``, the records checked, the head hash, and for a broken
    chain the first broken link (``version``, ``round``) and ``problem``."""

    ok: bool
    records: int
    head: str
    problem: str = ""
    version: int | None = None
    round: int | None = None
    pending_controls: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.ok:
            return (f"audit chain intact: {self.records} records (versions 0-{self.records - 1}), "
                    f"head {self.head}")
        where = "" if self.round is None else f"round {self.round} (version {self.version}): "
        return f"audit chain broken at {where}{self.problem}"


class _Broken(Exception):
    def __init__(self, version: int | None, round_: int | None, problem: str) -> None:
        super().__init__(problem)
        self.version, self.round, self.problem = version, round_, problem


def verify_chain(db: sqlite3.Connection, run_id: str, update_rows: Any) -> AuditResult:
    """Check every record of ``run_id`` in ``db`` (``update_rows(version)``: that version's
    rows as the store reads them)."""
    try:
        return _verify(db, run_id, update_rows)
    except _Broken as b:
        records = db.execute("SELECT COUNT(*) FROM audit WHERE run_id = ?", (run_id,)).fetchone()[0]
        return AuditResult(False, records, "", b.problem, b.version, b.round)


def _verify(db: sqlite3.Connection, run_id: str, update_rows: Any) -> AuditResult:
    records = db.execute("SELECT version, round, body, hash FROM audit WHERE run_id = ? "
                         "ORDER BY version", (run_id,)).fetchall()
    ckpts = {r[0]: r[1:] for r in db.execute(
        "SELECT version, round, params, sha256, state, metrics, note FROM checkpoints "
        "WHERE run_id = ?", (run_id,))}
    controls = {r[0]: {"seq": r[0], "created": r[1], "action": r[2], "arg": r[3], "origin": r[4]}
                for r in db.execute("SELECT seq, created, action, arg, origin FROM controls "
                                    "WHERE run_id = ?", (run_id,))}
    if not records:
        raise _Broken(None, None, "the store holds no audit records (written before fltiny kept "
                      "an audit chain, or not a run's store): nothing to verify")
    prev, models, applied = GENESIS, {}, set()
    for i, (version, round_, body_text, digest) in enumerate(records):
        def broken(problem: str, v: int = version, r: int = round_) -> _Broken:
            return _Broken(v, r, problem)

        if version != i:
            raise broken(f"record of version {i} is missing (the next one is version {version})",
                         i, ckpts.get(i, (None,))[0])
        try:
            body = json.loads(body_text)
        except (ValueError, TypeError):
            raise broken("the record is not valid JSON (altered)") from None
        if not isinstance(body, dict) or canonical(body) != body_text:
            raise broken("the record is not in canonical form (altered)")
        if sha256_hex(body_text) != digest:
            raise broken("the record's hash does not match its contents (record altered)")
        if body.get("prev") != prev:
            raise broken("its prev hash is not the previous record's hash (chain relinked)")
        if body.get("version") != version or body.get("round") != round_:
            raise broken("the record's version or round differs from its row")
        c = ckpts.get(version)
        if c is None:
            raise broken("its checkpoint is missing")
        c_round, params, c_sha, state, metrics, note = c
        if c_round != round_:
            raise broken(f"the checkpoint says round {c_round}")
        if sha256_hex(params) != c_sha:
            raise broken("the model parameters do not match their sha256 (checkpoint altered)")
        if body["model_sha256"] != c_sha:
            raise broken("the checkpoint's sha256 differs from the recorded model sha256")
        if body["state_sha256"] != sha256_hex(state or b""):
            raise broken("the server-optimizer state differs from the recorded one")
        if body["metrics_sha256"] != sha256_hex(metrics):
            raise broken("the round's metrics differ from the recorded ones")
        if body["note"] != note:
            raise broken("the checkpoint note differs from the recorded one")
        rows = update_rows(version)
        if body["rows_sha256"] != rows_digest(rows):
            raise broken("the per-device rows (contributors, rejections, bytes, scores) differ "
                         "from the recorded ones")
        rollback = None
        for ctl in body["controls"]:
            stored = controls.get(ctl.get("seq"))
            if stored is None or any(ctl.get(k) != v for k, v in stored.items()):
                raise broken(f"control #{ctl.get('seq')} differs from the controls table")
            if ctl["seq"] in applied:
                raise broken(f"control #{ctl['seq']} is applied twice")
            applied.add(ctl["seq"])
            if ctl["action"] == "rollback":
                rollback = ctl
        if version > 0:
            expected = models.get(rollback["to_version"]) if rollback else models[version - 1]
            if body["base_sha256"] != expected:
                why = (f"the model of version {rollback['to_version']} it rolled back to"
                       if rollback else "the previous version's model")
                raise broken(f"the model the round started from is not {why}")
        models[version] = c_sha
        prev = digest
    last = len(records) - 1
    extra = sorted(v for v in ckpts if v > last)
    if extra:
        v = extra[0]
        raise _Broken(v, ckpts[v][0], "the checkpoint has no audit record")
    orphans = db.execute("SELECT version, round FROM updates WHERE run_id = ? AND "
                         "(version IS NULL OR version > ?) LIMIT 1", (run_id, last)).fetchone()
    if orphans:
        raise _Broken(orphans[0], orphans[1], "a per-device row belongs to no recorded version")
    pending = sum(1 for s in controls if s not in applied)
    return AuditResult(True, len(records), prev, pending_controls=pending)
