"""No silent skips (issue 19; tests/README.md "Skips"): a pytest plugin, loaded by
tests/conftest.py.

On the supported platform (Debian 12 after `make setup`, which installs every toolchain) a test
that skips because a tool is missing hides a broken setup while the run still passes. So:
- ``require_tools(*names)`` and the marker ``@pytest.mark.tools(*names)`` FAIL a test (one
  line: the missing programs and "run make setup") instead of skipping it;
- every skip is collected (test and module level; xfail is not a skip), and the session fails
  unless each skip's reason starts with ``DOCUMENTED`` ("documented:"), the prefix of the
  reasons listed in tests/README.md; the summary names each undocumented skip.
"""

from __future__ import annotations

import shutil

import pytest

DOCUMENTED = "documented:"
_SKIPS = pytest.StashKey[list[str]]()


def require_tools(*names: str) -> None:
    """Fails the calling test (never skips it) when one of ``names`` is not on PATH."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run make setup", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tools(*names): the programs the test needs; missing ones fail it "
                   "(tests/README.md: no silent skips)")
    config.stash[_SKIPS] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("tools"):
        require_tools(*mark.args)


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    lr = report.longrepr
    text = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return text.removeprefix("Skipped: ")


def _note(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _reason(report)
        if not reason.startswith(DOCUMENTED):
            config.stash[_SKIPS].append(f"{report.nodeid}: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    _note(item.config, outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    _note(collector.config, outcome.get_result())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # NO_TESTS_COLLECTED too: a run whose every module skipped would pass as "nothing to do"
    if session.config.stash[_SKIPS] and exitstatus in (pytest.ExitCode.OK,
                                                       pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skips = config.stash[_SKIPS]
    if not skips:
        return
    terminalreporter.write_sep("=", f"{len(skips)} undocumented skip(s) fail this run", red=True)
    for line in skips:
        terminalreporter.write_line(line)
    terminalreporter.write_line(
        f"A missing tool is a broken setup: run make setup. A skip that is right on this "
        f"platform needs a reason starting with '{DOCUMENTED}', listed in tests/README.md.")
