"""fltiny.devices: emulated boards (QEMU, native processes), data blobs, flashing.

`start_fleet(board, elf, blobs)` starts one process per device and gives each a host:port
endpoint; `Fleet.stop()` (or leaving its `with` block) stops them all. See docs/boards.md.
"""

from .data import DataBlob, fleet_blobs
from .fleet import Device, Fleet, run_to_exit, start_fleet

__all__ = ["DataBlob", "Device", "Fleet", "fleet_blobs", "run_to_exit", "start_fleet"]
