"""Round time over the emulated UART of a qemu-m4f board, against the bytes-over-baud-rate bound.

    .venv/bin/python bench/serial_link.py [--rounds 5] [--windows 64] [--model har-tiny]

Starts one qemu-m4f board (the device firmware, `fltiny build`) with fleet device 1's data
blob (its first --windows windows), waits for HELLO, then runs --rounds rounds: the host sends
a FULL GLOBAL (the head's float32 parameters) and a TRAIN, and waits for the DELTA. Every byte
crossing the serial socket is counted in both directions (frames, COBS, CRC, HMAC and the ACKs
included). The bound is the time those bytes take on a real 115200-baud 8N1 UART:
bytes * 10 bits / 115200 baud.

QEMU's CMSDK UART model is NOT rate limited: a byte written by the guest reaches the socket at
once, so the measured time is the device's compute under TCG (not a real MCU's: QEMU runs the
guest as fast as the host allows) plus the protocol's per-chunk ACK round trips through the
host's 20 ms polling loop; it says nothing about a real UART. On a real board the round takes at
least the wire time plus the on-device compute: from bench/results/ontarget_cost.json (the
round's instructions for the same model, board and window count), instructions / clock at one
instruction per cycle is a lower bound for that compute, printed for the real Cortex-M4F boards
(nRF52840 64 MHz, STM32F446 180 MHz).
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
from fltiny.devices.link import socket_session  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BAUD = 115200
BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop


class CountingSocket:
    """The device socket, counting the bytes in each direction (select() uses fileno)."""

    def __init__(self, sock) -> None:
        self.sock = sock
        self.sent = 0
        self.received = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def sendall(self, data: bytes) -> None:
        self.sent += len(data)
        self.sock.sendall(data)

    def recv(self, n: int) -> bytes:
        data = self.sock.recv(n)
        self.received += len(data)
        return data


def wire_ms(n_bytes: int) -> float:
    return 1000.0 * n_bytes * BITS_PER_BYTE / BAUD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="har-tiny")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--out", type=Path, default=RESULTS / "serial_link.json")
    args = ap.parse_args()

    from fltiny.export.bundle import read_bundle

    board = get_board("qemu-m4f")
    bundle = ensure_bundle(args.model)
    _manifest, head, _backbone = read_bundle(bundle)
    fw = build_firmware(board, bundle, REPO / "build" / "bench" / "fw-device" / f"{board.name}-{args.model}")
    blob = fleet_blobs(bundle, 1, max_windows=min(args.windows, board.max_windows))[0]
    rows = []
    with start_fleet(board, fw.elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        cs = CountingSocket(dev.connect())
        s = socket_session(cs, DEV_KEY, dev.device_id)
        t0 = time.perf_counter()
        hello = s.recv(30)
        if not isinstance(hello, m.Hello):
            raise SystemExit(f"expected HELLO, got {hello!r}")
        boot = {"ms": 1000 * (time.perf_counter() - t0), "bytes": cs.sent + cs.received}
        params = np.asarray(head.params, dtype=np.float32)
        for r in range(1, args.rounds + 1):
            sent0, recv0 = cs.sent, cs.received
            t = time.perf_counter()
            s.send(m.Global.full(r, params))
            s.send(m.Train(round=r, epochs=1, batch_size=8, learning_rate=0.05, momentum=0.9,
                           topk_fraction=0.1, seed=r))
            delta = s.recv(120)
            dt = time.perf_counter() - t
            if not isinstance(delta, m.Delta):
                raise SystemExit(f"round {r}: expected DELTA, got {delta!r}")
            up, down = cs.sent - sent0, cs.received - recv0
            rows.append({"round": r, "measured_ms": 1000 * dt, "host_to_device_bytes": up,
                         "device_to_host_bytes": down, "wire_bytes": up + down,
                         "wire_bound_ms": wire_ms(up + down), "delta_payload_bytes": len(delta.body),
                         "examples": delta.examples})
        stats = {"frames_sent": s.stats.frames_sent, "retransmissions": s.stats.retransmissions}

    med = statistics.median(x["measured_ms"] for x in rows)
    wb = rows[-1]
    print(f"qemu-m4f, {args.model} ({head.n_params} head parameters), {wb['examples']} windows, "
          f"{args.rounds} rounds (FULL GLOBAL + TRAIN -> DELTA); boot to HELLO {boot['ms']:.0f} ms")
    print("| round | host->device B | device->host B | wire bound @115200 8N1 | measured under QEMU |")
    print("| --- | --- | --- | --- | --- |")
    for x in rows:
        print(f"| {x['round']} | {x['host_to_device_bytes']} | {x['device_to_host_bytes']} | "
              f"{x['wire_bound_ms']:.1f} ms | {x['measured_ms']:.1f} ms |")
    print(f"median measured {med:.1f} ms vs wire bound {wb['wire_bound_ms']:.1f} ms: QEMU's UART is "
          "not rate limited, the measured time is TCG compute + ACK round trips, not UART time")
    compute = {}
    cost = RESULTS / "ontarget_cost.json"
    if cost.is_file():
        for row in json.loads(cost.read_text())["rows"]:
            if (row["board"], row["model"], row["n_windows"]) == (board.name, args.model, wb["examples"]):
                for real in ("nrf52840", "stm32f4"):
                    rb = get_board(real)
                    compute[real] = {"clock_hz": rb.clock_hz, "round_insns": row["insns"]["round"],
                                     "compute_min_ms": 1000 * row["insns"]["round"] / rb.clock_hz}
                    print(f"{real} ({rb.clock_hz / 1e6:.0f} MHz): round compute >= "
                          f"{compute[real]['compute_min_ms']:.0f} ms ({row['insns']['round']:,} "
                          f"instructions at 1/cycle) + wire {wb['wire_bound_ms']:.0f} ms")
    meta = {"command": "bench/serial_link.py " + " ".join(sys.argv[1:]), "board": board.name,
            "model": args.model, "baud": BAUD, "bits_per_byte": BITS_PER_BYTE, "boot": boot,
            "session": stats, "median_measured_ms": med, "real_board_compute_lower_bound": compute,
            "note": "QEMU's UART is not rate limited: measured = emulated compute + host latency"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
