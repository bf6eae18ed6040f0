"""What a device is sent of the global model each round: the one rule of the bridge and the
simulator.

A device that holds exactly the previous version (and can apply a delta) gets a sparse,
quantized GLOBAL delta: the ``topk`` share of the parameters where the global model and what
the device holds differ most, quantized to ``bits`` (int8 at 8) with one scale per block of 64
values, built and applied by
the runtime's C (``flt_delta_compress`` / ``flt_delta_apply``, the code the device applies it
with). The host tracks what the device then holds bit for bit (``Held``), so what was not sent
stays in the difference and goes out in a later round: server-side error feedback without a
separate residual. Any other device (new, rebooted, behind by more than one version, unknown
state) gets the FULL model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fltiny.native import delta as nd
from fltiny.native import messages as m
from fltiny.server.config import RoundConfig

GLOBAL_DELTA_BLOCK = 64  # block size of the int8 quantization of GLOBAL deltas
DEFAULT_TOPK: float = RoundConfig.__dataclass_fields__["down_topk"].default  # type: ignore[assignment]
DEFAULT_BITS: int = RoundConfig.__dataclass_fields__["down_bits"].default  # type: ignore[assignment]


@dataclass(frozen=True)
class Held:
    """The model version and the exact float32 parameters a device holds."""

    version: int
    params: np.ndarray


def global_message(params: np.ndarray, version: int, held: Held | None, *,
                   topk: float = DEFAULT_TOPK, bits: int = DEFAULT_BITS,
                   can_delta: bool = True) -> tuple[m.Global | None, Held]:
    """(the GLOBAL to send, or None when the device already holds it; what it holds then)."""
    params = np.ascontiguousarray(params, dtype=np.float32)
    if held is not None and held.version == version:
        return None, held
    if can_delta and held is not None and held.version == version - 1:
        k = max(1, min(params.size, int(round(topk * params.size))))
        delta, _ = nd.compress(params, held.params, None, k=k, mode=nd.QuantMode.BLOCK,
                               block_size=GLOBAL_DELTA_BLOCK, error_feedback=False, bits=bits)
        now = nd.apply(delta, held.params)
        return m.Global.delta(version, held.version, nd.encode_payload(delta)), Held(version, now)
    return m.Global.full(version, params), Held(version, params.copy())
