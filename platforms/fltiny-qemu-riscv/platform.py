"""fltiny-qemu-riscv: a local PlatformIO development platform (no packages, Debian toolchains).

PlatformIO derives the class name from platform.json's name: letters and digits only,
lower-cased, capitalised, plus 'Platform'.
"""

from platformio.public import PlatformBase


class FltinyqemuriscvPlatform(PlatformBase):
    """Everything lives in builder/main.py; the platform needs no packages to install."""

    def get_boards(self, id_=None):
        return super().get_boards(id_)
