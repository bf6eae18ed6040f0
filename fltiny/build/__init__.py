"""fltiny.build: render a PlatformIO project for a board, build it (offline for the emulated
boards), and report flash/RAM use from the linked ELF. See docs/boards.md."""

from .memory import MemoryReport, memory_report
from .pio import BuildResult, build_project, pio_env
from .project import Project, render_project

__all__ = ["BuildResult", "MemoryReport", "Project", "build_project", "memory_report", "pio_env",
           "render_project"]
