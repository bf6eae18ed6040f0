"""``FlowerFleet``: the round loop's Fleet (fltiny.server.rounds) over Flower SuperNodes, one
per gateway, inside the ServerApp.

A SuperNode is known by the QUERY it answers (its gateway and devices; a SuperNode restarted
after a crash registers as a new node and is asked again). A round sends one TRAIN message,
the same ``RoundRequest`` (the global model and every chosen device), to the newest node of
each gateway with chosen devices, and waits for the replies until the round deadline plus a
margin. A gateway that does not answer in time (its SuperNode died, its node is gone) gives
each of its chosen devices a result without an update, whose reason names the gateway: its
devices miss the round and the run goes on. The gateways' forwarded sums are what the top
level adds (``gateway_sums``); a gateway whose devices the top level did not all accept
(validation, quarantine) has its sum recomputed from the verified payloads it forwarded with
it, exactly as a one-machine run would add them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from fltiny.flower.wire import QUERY, TRAIN, Envelope, GatewayInfo, GatewayReply, RoundRequest
from fltiny.server.config import TrainParams
from fltiny.server.gateway import GatewaySum, group_by_gateway, pre_aggregate
from fltiny.server.rounds import DeviceResult
from fltiny.strategies.base import ClientUpdate, check_updates

if TYPE_CHECKING:
    from flwr.serverapp import Grid

REPLY_MARGIN_S = 15.0  # beyond the round deadline: a gateway's reply crosses two processes
POLL_S = 0.2  # how often the replies are pulled (Grid.send_and_receive sleeps 3 s in between)


class FlowerFleet:
    def __init__(self, grid: Grid, groups: Sequence[Sequence[int]], query_timeout_s: float,
                 log: Callable[[str], None]) -> None:
        self.grid = grid
        self.groups = [tuple(sorted(g)) for g in groups]
        self._of = {d: g for g, ids in enumerate(self.groups) for d in ids}
        self.query_timeout_s = query_timeout_s
        self.log = log
        self.node_gateway: dict[int, int] = {}  # node id -> gateway, in the order seen
        self.silent: set[int] = set()  # nodes that missed a round's reply
        self._live: dict[int, int] = {}  # gateway -> the node to ask
        self._sums: dict[int, GatewaySum | None] = {}  # this round's forwarded sums
        self._round = -1

    def gateway_of(self, device_id: int) -> int:
        return self._of[device_id]

    def _query(self, nodes: Sequence[int]) -> None:
        from flwr.app import Message

        msgs = [Message(Envelope({"kind": QUERY}).to_records(), dst_node_id=n,
                        message_type=QUERY) for n in nodes]
        for reply in self._send_and_receive(msgs, self.query_timeout_s):
            node = reply.metadata.src_node_id
            if reply.has_error():
                self.log(f"SuperNode {node}: its QUERY failed ({reply.error.reason})")
                continue
            info = GatewayInfo.of(Envelope.from_records(reply.content))
            if not 0 <= info.gateway < len(self.groups) or info.devices != self.groups[info.gateway]:
                self.log(f"SuperNode {node} says it is gateway {info.gateway} with devices "
                         f"{list(info.devices)}: not a gateway of this run; ignored")
                continue
            self.node_gateway[node] = info.gateway
            self.log(f"SuperNode {node}: gateway {info.gateway} (devices "
                     f"{info.devices[0]}-{info.devices[-1]})")

    def _send_and_receive(self, msgs: list, timeout: float) -> list:
        """The replies to ``msgs`` that arrive within ``timeout`` (Grid.push_messages, then
        Grid.pull_messages every POLL_S until each message has its reply)."""
        if not msgs:
            return []
        pending = set(self.grid.push_messages(msgs))
        end = time.monotonic() + timeout
        replies: list = []
        while pending and time.monotonic() < end:
            got = list(self.grid.pull_messages(pending))
            replies += got
            pending -= {m.metadata.reply_to_message_id for m in got}
            if pending:
                time.sleep(POLL_S)
        return replies

    def refresh(self) -> dict[int, int]:
        """Gateway -> the node to ask: its newest node that has not missed a reply, else its
        newest node."""
        nodes = set(self.grid.get_node_ids())
        new = sorted(n for n in nodes if n not in self.node_gateway)
        if new:
            self._query(new)
        live: dict[int, int] = {}
        for n, g in self.node_gateway.items():  # in the order seen: newer ones win
            if n in nodes and (g not in live or live[g] in self.silent or n not in self.silent):
                live[g] = n
        for g in range(len(self.groups)):
            if g not in live and g in self._live:
                self.log(f"gateway {g}: no SuperNode connected; its devices wait")
        self._live = live
        return live

    def devices(self) -> list[int]:
        return sorted(d for g in self.refresh() for d in self.groups[g])

    def run_round(self, round_: int, devices: Sequence[int], global_params: np.ndarray,
                  version: int, train: TrainParams, mu: float,
                  deadline_s: float) -> list[DeviceResult]:
        from flwr.app import Message

        if round_ != self._round:
            self._round, self._sums = round_, {}
        req = RoundRequest(round_, version, tuple(int(d) for d in devices),
                           np.asarray(global_params, np.float32), train, mu, deadline_s)
        wanted = {self._of[d] for d in devices}
        asked = {g: n for g, n in self._live.items() if g in wanted}
        env = req.envelope()
        msgs = [Message(env.to_records(), dst_node_id=n, message_type=TRAIN)
                for n in asked.values()]
        timeout = deadline_s + REPLY_MARGIN_S
        self.log(f"round {round_}: TRAIN sent to "
                 + ", ".join(f"gateway {g} (node {n})" for g, n in sorted(asked.items())))
        replies = self._send_and_receive(msgs, timeout)
        results: list[DeviceResult] = []
        answered: set[int] = set()
        for reply in replies:
            node = reply.metadata.src_node_id
            g = self.node_gateway.get(node)
            if reply.has_error() or g is None:
                why = reply.error.reason if reply.has_error() else "unknown node"
                self.log(f"round {round_}: SuperNode {node}: {why}")
                continue
            rep = GatewayReply.of(Envelope.from_records(reply.content))
            answered.add(g)
            # a second call in one round (canaries first): the sums no longer match one set
            self._sums[g] = None if g in self._sums else rep.sum
            # only this gateway's own devices of the round: a reply naming another gateway's
            # device (a node posing as this gateway) must not count that device twice
            results += [r for r in rep.results
                        if r.device_id in devices and self._of.get(r.device_id) == g]
        for g in sorted(wanted - answered):
            node = asked.get(g)
            if node is not None:
                self.silent.add(node)
            why = (f"gateway {g}: no reply from its SuperNode (node {node}) within {timeout:g} s"
                   if node is not None else f"gateway {g}: no SuperNode connected")
            self.log(f"round {round_}: {why}: its devices miss this round")
            results += [DeviceResult(d, None, error=why) for d in devices if self._of[d] == g]
        return sorted(results, key=lambda r: r.device_id)

    def gateway_sums(self, global_params: np.ndarray,
                     accepted: Sequence[ClientUpdate]) -> list[GatewaySum]:
        check_updates(global_params, accepted)
        out = []
        for g, ups in group_by_gateway(accepted, self.gateway_of).items():
            s = self._sums.get(g)
            if s is not None and s.devices == tuple(u.device_id for u in ups):
                out.append(s)
                continue
            self.log(f"gateway {g}: the top level accepted devices {[u.device_id for u in ups]}"
                     f", not the {list(s.devices) if s else []} it summed: its sum is recomputed "
                     "from the payloads it forwarded")
            out.append(pre_aggregate(g, ups))
        return out
