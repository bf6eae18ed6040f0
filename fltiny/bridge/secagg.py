"""Secure aggregation over the device link (``fltiny run --secagg``): the server side of
Bonawitz et al. 2017 ("Practical Secure Aggregation for Privacy-Preserving Machine Learning",
CCS 2017) between the bridge and its boards, whose firmware computes the device side in C
(firmware/app/flt_secagg_dev.h over firmware/runtime/secagg/client.h).

The bridge's round (fltiny.bridge.fleet) sends TRAIN with flag SECAGG: each device trains,
keeps its round delta (trained minus held parameters, no error feedback) and sends a DELTA
without an update (examples, loss, personal metric). This module then runs one
``fltiny.privacy.secagg.SecAggRound`` over the devices whose DELTA the bridge accepted, in the
simulator's order (fltiny.sim.secagg), each step a SECAGG message through the device's
session (authenticated, sequenced, chunked and acknowledged like every frame):

    BEGIN -> ADVERTISE, COHORT -> SHARES, SHARES (relayed) -> MASKED, UNMASK -> REVEAL

The devices of one step are asked in parallel; a device that fails a step (an ERROR, the
deadline) drops out of the round there, as the protocol allows. ``dropout``: a seeded share of
the devices that sent MASKED is treated as dropped after it: the host sends them no UNMASK
(docs/protocol.md "Secure aggregation on the device link"). What this module holds is what the
server receives (``SecAggRound.received``): masked values, sealed boxes, revealed shares and
public keys; it returns the survivors' mean update (``SecureSum``), never an individual one.

Bytes: every SECAGG frame the device link carries, ACKs and retransmissions included, counts
in the device's bytes up and down (measured on the link, as the rest of its round).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from fltiny.errors import FltinyError
from fltiny.native.messages import SecaggKind
from fltiny.privacy.secagg import SecAggRound, choose_bits
from fltiny.sim.secagg import SecureSum

# ask(device_id, kind, body) -> the reply body of the next kind; raises on an ERROR, a
# refused message or the deadline (the bridge fleet's session step)
Ask = Callable[[int, SecaggKind, bytes], bytes]

REPLY = {SecaggKind.BEGIN: SecaggKind.ADVERTISE, SecaggKind.COHORT: SecaggKind.SHARES,
         SecaggKind.SHARES: SecaggKind.MASKED, SecaggKind.UNMASK: SecaggKind.REVEAL}


def masked_k(n_params: int, topk_fraction: float) -> int:
    """K, the values each device masks: the plain payload's top-k count (the simulator's)."""
    return max(1, min(n_params, round(topk_fraction * n_params)))


@dataclass
class BridgeSecAgg:
    """The secure-aggregation side of a bridge fleet: one ``SecAggRound`` per round."""

    n_params: int
    k: int
    clip: float
    bits: int = 0  # w; 0: choose_bits (the plain values' resolution)
    value_bits: int = 4  # the plain payload's value width (TRAIN's)
    dropout: float = 0.0
    seed: int = 0
    epoch: int = 1
    last: SecureSum | None = None
    last_round: int = -1
    # the last round's server (its ``received`` holds exactly what the server got)
    server: SecAggRound | None = None
    failures: dict[int, str] = field(default_factory=dict)  # device -> why it left the round

    def round(self, rnd: int, ids: Sequence[int], ask: Ask,
              plain_bytes: Mapping[int, int]) -> SecureSum:
        """One round over ``ids`` (the devices whose masked-round DELTA the bridge accepted).
        Raises FltinyError (SecAggError) when the round cannot be decoded."""
        self.last, self.last_round, self.failures = None, rnd, {}
        ids = sorted(ids)
        index_seed = int(np.random.default_rng([self.seed, 4099, rnd]).integers(2**32))
        w = self.bits or choose_bits(len(ids), self.value_bits)
        srv = SecAggRound(round=rnd, epoch=self.epoch, n_params=self.n_params, k=self.k,
                          clip=self.clip, index_seed=index_seed, w=w)
        self.server = srv
        got = self._take(self._step(ids, SecaggKind.BEGIN, lambda _d: srv.begin_message(), ask),
                         srv.advertise, "ADVERTISE")
        cohort = srv.cohort()
        members = sorted(got)
        got = self._take(self._step(members, SecaggKind.COHORT, lambda _d: cohort, ask),
                         srv.take_shares, "SHARES")
        u2 = sorted(got)
        got = self._take(self._step(u2, SecaggKind.SHARES, srv.relay, ask), srv.take_masked,
                         "MASKED")
        masked_len = {d: len(body) + 1 for d, body in got.items()}  # with the kind byte
        u3 = srv.survivors
        rng = np.random.default_rng([self.seed, 8191, rnd])
        n_drop = int(round(self.dropout * len(u3)))
        after = set(rng.choice(u3, size=n_drop, replace=False).tolist()) if n_drop else set()
        unmask = srv.unmask()
        self._take(self._step([d for d in u3 if d not in after], SecaggKind.UNMASK,
                              lambda _d: unmask, ask), srv.take_reveal, "REVEAL")
        mean = srv.mean_delta()
        ratio = max((masked_len[d] / max(plain_bytes.get(d, 0), 1) for d in masked_len
                     if plain_bytes.get(d)), default=0.0)
        co = srv.cohort_msg
        figures = {"secagg": True, "cohort": len(members), "t": co.t if co else 0, "bits": w,
                   "k": self.k, "dropped_after_masked": len(after),
                   "dropped_before_masked": len(srv.dropped), "masked_ratio": ratio,
                   "scale": srv.scale, "qmax": co.qmax if co else 0, "index_seed": index_seed,
                   "masked_payload": masked_len}
        self.last = SecureSum(mean, tuple(srv.survivors), tuple(srv.dropped),
                              tuple(sorted(after)), figures)
        return self.last

    def _take(self, got: dict[int, bytes], take: Callable[[int, bytes], None],
              what: str) -> dict[int, bytes]:
        """The replies the server accepts (``take``: it records a reply only when it is valid);
        a device whose reply it refuses leaves the round as if it had dropped there, and the
        round goes on with the others (the protocol's dropout tolerance)."""
        kept = {}
        for d, body in got.items():
            try:
                take(d, body)
            except FltinyError as exc:
                self.failures[d] = f"secagg {what} refused: {exc}"
                continue
            kept[d] = body
        return kept

    def _step(self, ids: Sequence[int], kind: SecaggKind, body_of: Callable[[int], bytes],
              ask: Ask) -> dict[int, bytes]:
        """Asks every device of ``ids`` at once; the replies of those that answered."""
        if not ids:
            return {}

        def one(d: int) -> tuple[int, bytes | None]:
            try:
                return d, ask(d, kind, body_of(d))
            except (FltinyError, TimeoutError, ConnectionError) as exc:
                self.failures[d] = f"secagg {kind.name}: {exc}"
                return d, None

        with ThreadPoolExecutor(max_workers=len(ids), thread_name_prefix="fltiny-sa") as ex:
            out = list(ex.map(one, ids))
        return {d: body for d, body in out if body is not None}
