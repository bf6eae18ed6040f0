"""Operator controls with the run store as the control plane (``fltiny ctl``).

A control is a row appended to the store's ``controls`` table: ``rollback N`` (the next round
starts from the last checkpoint of round N, model and server-optimizer state), ``quarantine
DEV`` (the device's updates get weight 0: rejected with the control as reason, until ``clear
DEV``), ``disable DEV`` / ``enable DEV`` (the aggregator stops asking the device to train, and
sends it nothing, until enabled; a bridge fleet also sends the device DISABLE / ENABLE, so it
refuses TRAIN and serves its factory model meanwhile, and the control's audit record holds
whether it arrived and the device's STATUS after it). A running aggregator reads the controls it
has not applied yet at the start of each round, applies them in order and records them in that
round's audit record (fltiny.server.audit); a control queued after the last round waits for
``--resume``.
The aggregator's own reputation quarantine (fltiny.server.reputation) is a control too, with
origin ``reputation``.

In ``fltiny simulate`` disable is host-side only (the simulated devices have no link to tell).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("rollback", "quarantine", "clear", "disable", "enable")
DEVICE_ACTIONS = ("quarantine", "clear", "disable", "enable")


@dataclass(frozen=True)
class Control:
    seq: int
    created: float
    action: str
    arg: int
    origin: str = "operator"

    def record(self) -> dict[str, Any]:
        """The fields the audit record holds (and checks against the controls table)."""
        return {"seq": self.seq, "created": self.created, "action": self.action,
                "arg": self.arg, "origin": self.origin}

    def describe(self) -> str:
        target = f"round {self.arg}" if self.action == "rollback" else f"device {self.arg}"
        return f"#{self.seq} {self.action} {target} ({self.origin})"


@dataclass
class FleetControls:
    """What the applied controls leave in force: quarantined devices (with the control that
    quarantined them) and disabled devices."""

    quarantined: dict[int, Control] = field(default_factory=dict)
    disabled: set[int] = field(default_factory=set)

    def apply(self, c: Control) -> None:
        if c.action == "quarantine":
            self.quarantined[c.arg] = c
        elif c.action == "clear":
            self.quarantined.pop(c.arg, None)
        elif c.action == "disable":
            self.disabled.add(c.arg)
        elif c.action == "enable":
            self.disabled.discard(c.arg)

    def quarantine_reason(self, device_id: int) -> str:
        c = self.quarantined.get(device_id)
        if c is None:
            return ""
        return (f"quarantined by control #{c.seq} ({c.origin}): weight 0 until "
                f"'fltiny ctl clear {device_id}'")

    @classmethod
    def of(cls, controls: list[Control]) -> FleetControls:
        state = cls()
        for c in controls:
            state.apply(c)
        return state
