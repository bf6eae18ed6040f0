"""Round time over a rate-limited serial link to a qemu-m4f board, against the bytes-over-baud bound.

    .venv/bin/python bench/serial_link.py [--rounds 4] [--windows 64] [--model har-tiny]
                                          [--baud 115200 9600] [--down-topk F]

Starts one qemu-m4f board (the device firmware, `fltiny build`) with fleet device 1's data
blob (its first --windows windows). The host side of its serial socket is limited to each
--baud in turn, 8N1 (fltiny.bridge.link.PacedLink: bytes reach the board no sooner than a real
UART would carry them, and the board's bytes reach the host no sooner either; QEMU's own UART
model has no rate). Per baud rate: a fresh boot, HELLO, then --rounds rounds as `fltiny run`
sends them: round 1 a FULL GLOBAL, later rounds the GLOBAL delta of fltiny.server.downlink
(top --down-topk of the parameters) for a model that moved, a TRAIN (1 local epoch), and the
DELTA back. Every byte crossing the link is counted in both directions (frames, COBS, tags,
chunking and the ACKs). The round's communication time is the time from the first GLOBAL
byte until the line has carried the TRAIN (protocol v3: the TRAIN and a small GLOBAL get no
ACK, the DELTA answers them) plus the time from the DELTA's first byte until it has
arrived; the rest is the board computing (TCG time under QEMU, not a real MCU's). The bound
is those bytes on a perfect line: bytes * 10 bits / baud; efficiency = bound / communication
time (1.0: no idle gaps from polling or per-chunk round trips).
Writes bench/results/serial_link.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from ontarget_cost import ensure_bundle  # noqa: E402

from fltiny.boards import get_board  # noqa: E402
from fltiny.bridge import messages as m  # noqa: E402
from fltiny.build.firmware import build_firmware  # noqa: E402
from fltiny.build.project import DEV_KEY  # noqa: E402
from fltiny.devices import fleet_blobs, start_fleet  # noqa: E402
from fltiny.native.lib import const  # noqa: E402
from fltiny.server.config import RoundConfig, TrainParams  # noqa: E402

RESULTS = Path(__file__).parent / "results"
FLT_MAX_WIRE = const("FLT_PROTO_MAX_WIRE")
BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop


class StampedLink:
    """A link that remembers when each non-empty receive returned (the DELTA's first byte) and
    when the last send returned (the paced line has carried those bytes then)."""

    def __init__(self, link) -> None:
        self.link = link
        self.stamps: list[float] = []
        self.last_send = 0.0

    def send(self, data: bytes) -> None:
        self.link.send(data)
        self.last_send = time.perf_counter()

    def receive(self) -> bytes:
        data = self.link.receive()
        if data:
            self.stamps.append(time.perf_counter())
        return data


def run_baud(board, fw_elf: Path, blob, params: np.ndarray, baud: int, rounds: int,
             down_topk: float) -> list[dict]:
    from fltiny.bridge.link import PacedLink, SocketLink
    from fltiny.bridge.session import Session
    from fltiny.server.downlink import global_message

    rows = []
    # a chunk's line time plus its ACK's, twice over, before a retransmission
    frame_s = (FLT_MAX_WIRE + 20) * BITS_PER_BYTE / baud
    with start_fleet(board, fw_elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        paced = PacedLink(SocketLink(dev.connect()), baud)
        link = StampedLink(paced)
        s = Session(key=DEV_KEY, device_id=dev.device_id, send=link.send,
                    receive=link.receive, timeout=2 * frame_s + 0.1)
        hello = s.recv(60)
        if not isinstance(hello, m.Hello):
            raise SystemExit(f"expected HELLO, got {hello!r}")
        held = None
        rng = np.random.default_rng(0)
        model = params.copy()
        for r in range(1, rounds + 1):
            if r > 1:  # the fleet moved the model a little
                model = model + rng.normal(0, 0.01, model.size).astype(np.float32)
            gmsg, held = global_message(model, r, held, topk=down_topk)
            up0, down0 = paced.sent, paced.received
            t0 = time.perf_counter()
            s.send(gmsg)  # a delta of <= 4 chunks: a burst, done once sent; a FULL: ACKed
            # the TRAIN gets no ACK (its DELTA answers it, docs/protocol.md "Answered
            # messages"): the downlink ends when the line has carried its frame
            sent0 = s.stats.frames_sent
            s.submit(TrainParams(epochs=1).message(r, seed=r))
            while s.stats.frames_sent == sent0:
                s.poll()
            t_acked = link.last_send
            n_stamps = len(link.stamps)
            delta = s.recv(300)
            t_end = time.perf_counter()
            if not isinstance(delta, m.Delta):
                raise SystemExit(f"round {r}: expected DELTA, got {delta!r}")
            t_first = link.stamps[n_stamps] if len(link.stamps) > n_stamps else t_end
            down, up = paced.sent - up0, paced.received - down0
            comm = (t_acked - t0) + (t_end - t_first)
            bound = (up + down) * BITS_PER_BYTE / baud
            rows.append({"baud": baud, "round": r, "global": "full" if r == 1 else "delta",
                         "host_to_device_bytes": down, "device_to_host_bytes": up,
                         "wire_bytes": up + down, "bound_ms": 1000 * bound,
                         "communication_ms": 1000 * comm, "efficiency": bound / comm,
                         "compute_ms": 1000 * (t_first - t_acked), "round_ms": 1000 * (t_end - t0),
                         "delta_payload_bytes": len(delta.body), "examples": delta.examples,
                         "retransmissions": s.stats.retransmissions})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="har-tiny")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--baud", type=int, nargs="+", default=[115200, 9600])
    ap.add_argument("--down-topk", type=float, default=RoundConfig().down_topk)
    ap.add_argument("--out", type=Path, default=RESULTS / "serial_link.json")
    args = ap.parse_args()

    from fltiny.export.bundle import read_bundle

    board = get_board("qemu-m4f")
    bundle = ensure_bundle(args.model)
    _manifest, head, _backbone = read_bundle(bundle)
    fw = build_firmware(board, bundle, REPO / "build" / "bench" / "fw-device" / f"{board.name}-{args.model}")
    blob = fleet_blobs(bundle, 1, max_windows=min(args.windows, board.max_windows))[0]
    params = np.asarray(head.params, dtype=np.float32)
    rows = []
    for baud in args.baud:
        rows += run_baud(board, fw.elf, blob, params, baud, args.rounds, args.down_topk)
    print(f"qemu-m4f, {args.model} ({head.n_params} trained parameters), {len(blob.labels)} windows, "
          f"1 local epoch, GLOBAL delta top {args.down_topk:g}, host side paced to the baud rate")
    print("| baud | round | GLOBAL | host->device B | device->host B | bound (8N1) | "
          "communication | efficiency | compute (QEMU) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for x in rows:
        print(f"| {x['baud']} | {x['round']} | {x['global']} | {x['host_to_device_bytes']} | "
              f"{x['device_to_host_bytes']} | {x['bound_ms']:.1f} ms | "
              f"{x['communication_ms']:.1f} ms | {x['efficiency']:.2f} | "
              f"{x['compute_ms']:.0f} ms |")
    for baud in args.baud:
        eff = [x["efficiency"] for x in rows if x["baud"] == baud]
        print(f"{baud} baud: efficiency min {min(eff):.2f}, median {statistics.median(eff):.2f}")
    meta = {"command": "bench/serial_link.py " + " ".join(sys.argv[1:]), "board": board.name,
            "model": args.model, "bits_per_byte": BITS_PER_BYTE, "down_topk": args.down_topk,
            "note": "host side paced to the baud rate (PacedLink); compute is QEMU TCG time"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
