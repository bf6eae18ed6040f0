"""The CLI starts instantly: importing it must not import TensorFlow (or other heavy stacks)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "tflite_micro", "ai_edge_litert", "sklearn", "starlette", "uvicorn")


def test_importing_cli_imports_no_heavy_module():
    code = (
        "import sys, fltiny.cli; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_and_version(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "export" in out and "train" in out
    code, out, _ = cli("--version")
    assert code == 0 and "fltiny" in out


def test_console_script_runs():
    exe = [sys.executable, "-m", "fltiny.cli", "--version"]
    out = subprocess.run(exe, capture_output=True, text=True)
    assert out.returncode == 0 and "0.1" in out.stdout


def test_unknown_model_is_one_line_error(cli):
    code, out, err = cli("export", "--model", "no-such-model", "--out", "/tmp/x")
    assert code == 2
    assert err.strip().startswith("error: unknown zoo model 'no-such-model'")
    assert "Traceback" not in err + out
