"""The README's Python example runs as written (its simulate part, on the test bundle)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parent.parent / "README.md"


def _example() -> str:
    text = README.read_text()
    section = text[text.index("### From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_simulates(har_tiny_bundle, tmp_path, monkeypatch, capsys):
    code = _example()
    assert "export(\"har-tiny\")" in code and "simulate(SimConfig(" in code
    # the export line is the only change: the session's bundle instead of build/har-tiny
    code = code.replace('bundle = export("har-tiny")',
                        f'from fltiny.export.bundle import Bundle\n'
                        f'bundle = Bundle.load(Path({str(har_tiny_bundle)!r}))')
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["round", "accuracy", "loss"]
    # a metric that appears from round 1 on (the devices' personal accuracy) repeats the header
    rows = [ln for ln in lines[1:] if ln.split() and ln.split()[0] != "round"]
    assert [ln.split()[0] for ln in rows[:3]] == ["0", "1", "2"]
    assert "personal_accuracy" in out
    assert "->" in lines[-1]
    assert (tmp_path / "build/api-demo/run.sqlite").is_file()
    assert (tmp_path / "build/api-demo/metrics.csv").is_file()
