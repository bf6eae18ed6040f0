"""Static memory of a linked firmware ELF, by section and by symbol (pyelftools).

- flash = allocated sections with contents (SHT_PROGBITS): code and constants (.isr_vector,
  .text, which also holds .rodata in the QEMU linker scripts, .ARM.exidx, .srodata) plus the load
  image of .data; `text_rodata` is the read-only part, `data` the initialised RAM image.
- static RAM = .data + .bss (allocated, writable); the `.stack` reservation is reported apart.
- code = sum of the sizes of function symbols; const = sum of the sizes of object symbols in
  read-only sections (model weights, tables, strings with a symbol).
- `symbol_bytes(elf, names)`: sizes of named (also file-local) data symbols, e.g. the device
  loop's static buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4


@dataclass
class ElfMemory:
    text_rodata: int
    data: int
    bss: int
    stack_reserve: int
    code: int
    const: int
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def flash(self) -> int:
        return self.text_rodata + self.data

    @property
    def static_ram(self) -> int:
        return self.data + self.bss


def elf_memory(elf: Path) -> ElfMemory:
    from elftools.elf.elffile import ELFFile

    text_rodata = data = bss = stack = code = const = 0
    sections: dict[str, int] = {}
    with open(elf, "rb") as f:
        ef = ELFFile(f)
        ro_index = set()
        for i, s in enumerate(ef.iter_sections()):
            flags, size = int(s["sh_flags"]), int(s["sh_size"])
            if not flags & SHF_ALLOC or size == 0:
                continue
            sections[s.name] = size
            progbits = s["sh_type"] != "SHT_NOBITS"
            if s.name == ".stack":
                stack += size
            elif flags & SHF_WRITE:
                if progbits:
                    data += size
                else:
                    bss += size
            elif progbits:
                text_rodata += size
                ro_index.add(i)
        symtab = ef.get_section_by_name(".symtab")
        seen: set[tuple[int, int]] = set()
        for sym in symtab.iter_symbols() if symtab else ():
            kind, size, shndx = sym["st_info"]["type"], int(sym["st_size"]), sym["st_shndx"]
            key = (int(sym["st_value"]) & ~1, size)
            if size == 0 or key in seen:
                continue
            if kind == "STT_FUNC":
                seen.add(key)
                code += size
            elif kind == "STT_OBJECT" and isinstance(shndx, int) and shndx in ro_index:
                seen.add(key)
                const += size
    return ElfMemory(text_rodata, data, bss, stack, code, const, sections)


def symbol_bytes(elf: Path, names) -> dict[str, int]:
    """{name: size} of the data symbols with these names (absent names are left out)."""
    from elftools.elf.elffile import ELFFile

    want, out = set(names), {}
    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        for sym in symtab.iter_symbols() if symtab else ():
            if sym.name in want and sym["st_info"]["type"] == "STT_OBJECT":
                out[sym.name] = max(out.get(sym.name, 0), int(sym["st_size"]))
    return out
