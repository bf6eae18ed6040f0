"""Flash and RAM use of a linked firmware ELF against the board's budget (pyelftools).

flash = every allocated section with contents (code, constants, vector table, and the load
        image of initialised data);
RAM   = on boards whose file names RAM address ranges ([memory] ram_regions: the ESP32 family),
        every allocated section that starts inside one of them; elsewhere every allocated
        writable section (initialised data, bss, the reserved stack).
The address rule is what keeps linker placeholders out of the RAM figure: ESP-IDF's C3/S3
scripts reserve flash-mapped address space with NOLOAD sections (.flash_rodata_dummy as big as
.flash.text, .ext_ram.dummy for PSRAM) that are allocated, writable and take no byte of SRAM;
their addresses are in DROM, not DRAM. NOLOAD sections have no contents, so they never count
as flash either. Exceeding either budget fails the build; the message names the biggest symbols
of the region that overflowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fltiny.boards import Board, human_bytes
from fltiny.errors import ToolchainError

SHF_WRITE = 0x1
SHF_ALLOC = 0x2


@dataclass
class MemoryReport:
    board: str
    flash_used: int
    flash_budget: int
    ram_used: int
    ram_budget: int
    sections: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (size, region)
    top_flash: list[tuple[str, int]] = field(default_factory=list)
    top_ram: list[tuple[str, int]] = field(default_factory=list)
    parts: list[tuple[str, int]] = field(default_factory=list)  # ram_parts: RAM by purpose

    @property
    def flash_ok(self) -> bool:
        return self.flash_used <= self.flash_budget

    @property
    def ram_ok(self) -> bool:
        return self.ram_used <= self.ram_budget

    @property
    def ok(self) -> bool:
        return self.flash_ok and self.ram_ok

    def lines(self) -> list[str]:
        def pct(a: int, b: int) -> str:
            return f"{100.0 * a / b:5.1f}%" if b else "  n/a"

        return [f"flash {self.flash_used:8d} B of {human_bytes(self.flash_budget):>6s} "
                f"({pct(self.flash_used, self.flash_budget)})",
                f"RAM   {self.ram_used:8d} B of {human_bytes(self.ram_budget):>6s} "
                f"({pct(self.ram_used, self.ram_budget)})"]

    def parts_line(self) -> str:
        """'RAM by part: window store 65,292 B, ... stack 8,192 B' (empty without parts)."""
        if not self.parts:
            return ""
        return "RAM by part: " + ", ".join(f"{n} {b:,} B" for n, b in self.parts if b)

    def failure(self) -> str:
        parts = []
        for ok, what, used, budget, top in ((self.flash_ok, "flash", self.flash_used, self.flash_budget,
                                             self.top_flash),
                                            (self.ram_ok, "RAM", self.ram_used, self.ram_budget,
                                             self.top_ram)):
            if not ok:
                biggest = ", ".join(f"{n} {s} B" for n, s in top[:6])
                parts.append(f"{what} {used} B exceeds the {human_bytes(budget)} budget of board "
                             f"'{self.board}' by {used - budget} B; biggest: {biggest}")
        return "; ".join(parts) + (" (use a smaller model, fewer windows per round "
                                   "(max_windows), --ram-budget to leave optional round state "
                                   "out, or a bigger board)")


# The device firmware's static RAM by purpose: the data symbols of firmware/app and the port
# (file-local statics keep their names in the ELF's symbol table), then what no part names
# (the runtime's and the framework's own, small) and the linker's stack reserve.
RAM_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("window store", ("store_windows", "store_labels", "store_targets", "store_assembly",
                      "store")),
    ("model state", ("global_params", "personal", "ws_params")),
    # the round's buffers and the link's reassembled message share one region (flt_device.c)
    ("round buffers + rx message", ("shared",)),
    ("delta state", ("residual", "residual_next", "delta_buf", "kept_train")),
    ("FedDyn drift", ("drift", "drift_next")),
    ("secure aggregation", ("secagg_buf", "client", "kept_delta", "sa_values")),
    ("link buffers", ("rx_frame", "wire", "rx", "tx", "hello_buf", "text_buf", "out_slots",
                      "outbox", "rx_ring")),
    ("checkpoint", ("ckpt_buf",)),
)


def ram_parts(ram_syms: dict[str, int], static_ram: int, stack: int) -> list[tuple[str, int]]:
    """[(part, bytes)] of RAM_PARTS from the RAM symbols' sizes, then "other" (the rest of the
    static RAM) and "stack" (the reserve)."""
    out = [(name, sum(ram_syms.get(s, 0) for s in syms)) for name, syms in RAM_PARTS]
    named = sum(b for _n, b in out)
    return out + [("other", max(0, static_ram - named)), ("stack", stack)]


def in_regions(addr: int, regions: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= addr < hi for lo, hi in regions)


def memory_report(elf: Path, board: Board, top: int = 10) -> MemoryReport:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        with open(elf, "rb") as fh:
            ef = ELFFile(fh)
            flash = ram = stack = 0
            sections: dict[str, tuple[int, str]] = {}
            region_of: dict[int, str] = {}
            ram_regions = board.ram_regions
            for i, sec in enumerate(ef.iter_sections()):
                flags = sec["sh_flags"]
                if not flags & SHF_ALLOC or sec["sh_size"] == 0:
                    continue
                size = int(sec["sh_size"])
                has_bits = sec["sh_type"] != "SHT_NOBITS"
                in_ram = (in_regions(int(sec["sh_addr"]), ram_regions) if ram_regions
                          else bool(flags & SHF_WRITE))
                if has_bits:
                    flash += size
                if in_ram:
                    ram += size
                    if sec.name == ".stack":
                        stack += size
                if not has_bits and not in_ram:
                    continue  # a placeholder: reserves address space, occupies nothing
                region = "flash+RAM" if has_bits and in_ram else ("RAM" if in_ram else "flash")
                sections[sec.name] = (size, region)
                region_of[i] = region
            syms_flash: dict[str, int] = {}
            syms_ram: dict[str, int] = {}
            for sec in ef.iter_sections():
                if not isinstance(sec, SymbolTableSection):
                    continue
                for sym in sec.iter_symbols():
                    size = int(sym["st_size"])
                    shndx = sym["st_shndx"]
                    if size == 0 or not isinstance(shndx, int) or not sym.name:
                        continue
                    region = region_of.get(shndx, "")
                    if "flash" in region:
                        syms_flash[sym.name] = max(size, syms_flash.get(sym.name, 0))
                    if "RAM" in region:
                        syms_ram[sym.name] = max(size, syms_ram.get(sym.name, 0))
    except (OSError, ELFError) as exc:
        raise ToolchainError(f"cannot read the firmware ELF {elf}: {exc}") from exc
    by_size = lambda d: sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:top]  # noqa: E731
    return MemoryReport(board.name, flash, board.flash_bytes, ram, board.ram_bytes, sections,
                        by_size(syms_flash), by_size(syms_ram),
                        ram_parts(syms_ram, ram - stack, stack))
