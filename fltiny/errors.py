"""The error hierarchy of fltiny. The CLI maps each to a one-line message and an exit code."""

from __future__ import annotations


class FltinyError(Exception):
    """Base class: a problem the user can act on. The message says what and what to try."""

    exit_code = 1


class UsageError(FltinyError):
    """Bad arguments or input files (wrong shape, not a Keras file, ...)."""

    exit_code = 2


class DataError(FltinyError):
    """A dataset could not be loaded or is empty."""

    exit_code = 3


class ExportError(FltinyError):
    """Conversion, size budget or verification failed."""

    exit_code = 4


class CodegenError(FltinyError):
    """The model cannot be turned into C (unsupported op or option, unbounded size)."""

    exit_code = 5


class ToolchainError(FltinyError):
    """A compiler, PlatformIO or QEMU step failed or is missing."""

    exit_code = 6


class FitError(ToolchainError):
    """The firmware built but does not fit the board's flash or RAM budget (the linker's
    overflow, or the memory report's verdict). ``report`` is the memory report when there is
    one; ``fltiny run --model auto`` takes this as "try a smaller model family"."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class StrategyError(FltinyError):
    """Updates cannot be aggregated as asked (too few for Krum, wrong shape, bad parameter).

    Before a run the experiment refuses settings that can never aggregate; during a run the
    round loop turns this into a round note (model unchanged), like an unmet quorum."""

    exit_code = 7


class RuntimeStatusError(ToolchainError):
    """A call into the C runtime returned a status other than FLT_OK."""

    def __init__(self, call: str, status: int, hint: str = "") -> None:
        from fltiny.native.status import describe

        self.call, self.status = call, status
        super().__init__(f"{call} failed: {describe(status)}" + (f"; {hint}" if hint else ""))


class AuditError(FltinyError):
    """A run store's audit chain does not verify (``fltiny audit``)."""

    exit_code = 8
