"""Host builds of the firmware's C runtime (shared library for ctypes, test executables)."""
