"""What a Byzantine device of the simulator does (``fltiny simulate --byzantine 0.2 --attack
...``; which devices: fltiny.sim.byzantine).

A compromised device still runs the firmware's C round (``flt_round_run``) on its own data; what
it is compromised in is the data it trains on or the DELTA payload it sends, and the payload it
sends is always one the aggregator's C decoder accepts: it is re-encoded with the C encoder
(``fltiny.native.delta``), in the format of the honest payload (the same number of values k,
the same value width and quantization mode), so it is as large on the wire as an honest one.

Attacks (``ATTACKS``), with d the honest decoded update (local model minus the model it holds):

- ``sign-flip``: sends -d (every int8 value negated: decodes to exactly -d);
- ``scale10``: sends 10 d (the payload's scales x 10);
- ``noise``: sends Gaussian noise on d's k indices, scaled to d's L2 norm (pure noise that a
  norm bound cannot tell from an honest update);
- ``label-flip``: trains on its data with every label y replaced by (classes - 1 - y), sends
  that update unchanged (data poisoning: nothing in the payload is abnormal);
- ``model-replacement`` (Bagdasaryan, Veit, Hua, Estrin, Shmatikov (2020), "How To Backdoor
  Federated Learning"): its target is the model it trains on the flipped labels from the model
  it holds, X; it sends gamma (X - G) with gamma = devices in the round / Byzantine devices in
  the round, so that a mean over the round lands on X (the top-k of that boosted update).
- ``silent``: sends nothing (it never answers a TRAIN): not an attack on the model but its
  reference, what losing those devices' data costs; a defense that filtered every attacker
  perfectly can do no better than this on the same devices.

Label flipping needs class labels (a classification dataset).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from fltiny.devices.data import DataBlob
from fltiny.errors import UsageError
from fltiny.native.delta import PayloadDecoder, SparseDelta, compress, encode_payload
from fltiny.sim.byzantine import ATTACKS, FLIPS_LABELS, NEEDS_LABELS

SCALE = 10.0  # the scale10 attack's factor


def flip_labels(blob: DataBlob, classes: int) -> DataBlob:
    """The blob with every label y replaced by classes - 1 - y (its windows unchanged)."""
    if blob.labels is None:
        raise UsageError(NEEDS_LABELS)
    return replace(blob, labels=(classes - 1 - blob.labels).astype(blob.labels.dtype))


@dataclass
class Adversary:
    """What the compromised ``devices`` do to their data (``data``) and to the payload their
    C round produced (``payload``)."""

    attack: str
    devices: frozenset[int]
    n_params: int
    classes: int = 0  # class count of the labels (label flipping)
    seed: int = 0
    _decoder: PayloadDecoder = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise UsageError(f"--attack '{self.attack}' is not one of {', '.join(ATTACKS)}")
        if self.attack in FLIPS_LABELS and self.classes < 2:
            raise UsageError(NEEDS_LABELS)
        self._decoder = PayloadDecoder(self.n_params)

    def data(self, blob: DataBlob) -> DataBlob:
        """The data a device trains on: flipped labels for a compromised device whose attack
        poisons data, else its own."""
        if blob.device_id in self.devices and self.attack in FLIPS_LABELS:
            return flip_labels(blob, self.classes)
        return blob

    def silent(self, device_id: int) -> bool:
        """The device sends no update (attack ``silent``)."""
        return self.attack == "silent" and device_id in self.devices

    def payload(self, device_id: int, payload: bytes, local: np.ndarray, held: np.ndarray,
                round_: int, in_round: Sequence[int], value_bits: int) -> bytes:
        """The DELTA payload the device sends: ``payload`` (its C round's) for an honest
        device and for label flipping, else the attack's, encoded by the C encoder.
        ``local``: the model its round trained, ``held``: the model it trained from,
        ``in_round``: the devices of this round (the model-replacement boost)."""
        if device_id not in self.devices or self.attack == "label-flip":
            return payload
        honest = self._decoder.decode(payload)
        if self.attack == "sign-flip":
            return encode_payload(replace(honest, values=(-honest.values).astype(np.int8)))
        if self.attack == "scale10":
            return encode_payload(replace(honest, scales=(honest.scales * np.float32(SCALE))
                                          .astype(np.float32)))
        if self.attack == "noise":
            dense = self._decoder.decode_dense(payload).astype(np.float64)
            rng = np.random.default_rng([self.seed, 0x401E, round_, device_id])
            z = np.zeros(self.n_params)
            z[honest.indices] = rng.standard_normal(honest.k)
            norm = float(np.linalg.norm(z))
            vector = z * (float(np.linalg.norm(dense)) / norm if norm > 0 else 0.0)
        else:  # model-replacement: pull the mean of the round to the target X = local
            attackers = max(1, sum(1 for d in in_round if d in self.devices))
            boost = len(in_round) / attackers
            vector = boost * (local.astype(np.float64) - held.astype(np.float64))
        return encode_payload(self._sparse(vector, honest, value_bits))

    def _sparse(self, vector: np.ndarray, like: SparseDelta, value_bits: int) -> SparseDelta:
        """``vector`` compressed by the C (top-k, quantization) in the format of ``like``."""
        delta, _residual = compress(vector.astype(np.float32), np.zeros(self.n_params, np.float32),
                                    None, k=max(like.k, 1), mode=like.mode,
                                    block_size=like.block_size, error_feedback=False,
                                    bits=value_bits)
        return delta
