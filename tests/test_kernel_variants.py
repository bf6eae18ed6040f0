"""Target kernel variants (firmware/runtime/kernels/<target>/): which boards get them, and that
each one stands in for a reference kernel of the same name. That a variant computes what the
reference does is checked elsewhere: on its board against the reference on random shapes
(tests/test_kernel_variants_ontarget.py), on real rounds replayed by the host through the
reference kernels (tests/test_emulate_devices.py::test_hello_and_round_match_host[qemu-m4f] and
[qemu-rv32]), and, for the portable-C variants, against TFLM on the host (the codegen equality
tests tests/test_codegen_models.py and tests/test_codegen_zoo.py)."""
import re

from fltiny.boards import load_boards
from fltiny.build.project import FIRMWARE, kernel_variant

KERNELS = FIRMWARE / "runtime" / "kernels"
DEFINED = re.compile(r"^(?:flt_status_t|void)\s+(flt_\w+)\(", re.M)


def test_armv7em_kernels_go_to_cortex_m4_and_m7_boards_only():
    boards = load_boards()
    chosen = {name: kernel_variant(b) for name, b in boards.items()}
    assert {n for n, v in chosen.items() if v == "armv7em"} == {
        n for n, b in boards.items() if b.arch in ("cortex-m4", "cortex-m4f", "cortex-m7")}
    assert chosen["qemu-m4f"] == "armv7em" and chosen["qemu-m7"] == "armv7em"
    assert chosen["qemu-m3"] is None and chosen["native"] is None


def test_rv32_kernels_go_to_rv32imc_boards_only():
    boards = load_boards()
    chosen = {name: kernel_variant(b) for name, b in boards.items()}
    assert {n for n, v in chosen.items() if v == "rv32"} == {
        n for n, b in boards.items() if b.arch == "rv32imc"}
    assert chosen["qemu-rv32"] == "rv32" and chosen["esp32-c3"] == "rv32"
    assert chosen["esp32"] is None and chosen["esp32-s3"] is None  # Xtensa


def test_each_variant_file_defines_what_its_reference_defines():
    variants = sorted(p for p in KERNELS.iterdir() if p.is_dir())
    assert variants, "no kernels/<target>/ folder"
    for folder in variants:
        for f in sorted(folder.glob("*.c")):
            reference = KERNELS / f.name
            assert reference.is_file(), f"{f}: no reference kernel of that name"
            ours = set(DEFINED.findall(f.read_text()))
            theirs = set(DEFINED.findall(reference.read_text()))
            assert ours, f"{f}: defines no flt_ function"
            assert ours == theirs, f"{f}: defines {sorted(ours)}, the reference {sorted(theirs)}"
