"""The skip policy (tests/skip_policy.py, loaded by tests/conftest.py) on real pytest runs of
tiny test files in a temporary folder: an undocumented skip fails the session, a documented one
does not, a missing tool is a one-line failure, never a skip."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

CASES = {  # name -> (test file, expected exit code, text the output must contain)
    "undocumented_skip_fails": (
        "import pytest\ndef test_a():\n    pytest.skip('gcc not installed')\n", 1,
        "test_case.py::test_a: gcc not installed"),
    "module_level_skip_fails": (
        "import pytest\npytest.skip('QEMU is not installed', allow_module_level=True)\n"
        "def test_a():\n    pass\n", 1, "test_case.py: QEMU is not installed"),
    "skipif_fails": (
        "import pytest\n@pytest.mark.skipif(True, reason='g++ not installed')\n"
        "def test_a():\n    pass\n", 1, "test_case.py::test_a: g++ not installed"),
    "documented_skip_passes": (
        "import pytest\ndef test_a():\n    pytest.skip('documented: a real SDK is installed')\n"
        "def test_b():\n    pass\n", 0, "1 passed, 1 skipped"),
    "xfail_is_not_a_skip": (
        "import pytest\n@pytest.mark.xfail(reason='known', strict=True)\n"
        "def test_a():\n    assert 0\n", 0, "1 xfailed"),
    "missing_tool_is_a_failure": (
        "import pytest\n@pytest.mark.tools('fltiny-no-such-tool')\ndef test_a():\n    pass\n", 1,
        "fltiny-no-such-tool not installed: run make setup"),
    "require_tools_is_a_failure": (
        "from skip_policy import require_tools\n"
        "def test_a():\n    require_tools('sh', 'fltiny-no-such-tool')\n", 1,
        "fltiny-no-such-tool not installed: run make setup"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_policy(case, tmp_path):
    source, code, text = CASES[case]
    (tmp_path / "test_case.py").write_text(source)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "skip_policy",
                           "-p", "no:cacheprovider", "test_case.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out
    assert text in out, out
    if code == 1 and "skip" in case:
        assert "undocumented skip(s) fail this run" in out


def test_documented_reasons_are_listed_in_the_readme():
    readme = (HERE / "README.md").read_text()
    reasons = {m for p in HERE.glob("test_*.py")
               for m in re.findall(r"[\"'](documented: [^\"']+)[\"']", p.read_text())}
    reasons = {r for r in reasons if "a real SDK is installed" not in r}  # this file's example
    assert reasons, "no documented skip found: the policy test below would test nothing"
    missing = [r for r in reasons if r not in readme]
    assert not missing, f"list these skip reasons in tests/README.md: {missing}"
