"""Shared fixtures (a CLI runner, small trained models reused across the session) and the
session's skip policy (tests/skip_policy.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No silent skips (tests/README.md): missing tools fail, only documented skips pass the run.
from skip_policy import (  # noqa: F401  (hooks pytest finds in this module)
    pytest_configure,
    pytest_make_collect_report,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def cli():
    """Run the CLI in-process; returns (exit_code, stdout, stderr)."""
    from click.testing import CliRunner

    from fltiny.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        runner = CliRunner()
        result = runner.invoke(main, list(map(str, args)), catch_exceptions=True)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    return run


@pytest.fixture(scope="session")
def har_tiny_trained(tmp_path_factory) -> Path:
    """har-tiny trained briefly on the factory users (enough for export checks)."""
    from fltiny.train import TrainConfig
    from fltiny.workflow import train_zoo_model

    out = tmp_path_factory.mktemp("har-tiny")
    train_zoo_model("har-tiny", "hapt", out, TrainConfig(epochs=5), lambda _m: None)
    return out


@pytest.fixture(scope="session")
def har_tiny_bundle(har_tiny_trained) -> Path:
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle

    export_bundle(out=har_tiny_trained, model_name="har-tiny", dataset="hapt",
                  train_config=TrainConfig(epochs=5))
    return har_tiny_trained


@pytest.fixture(scope="session")
def har_tiny_head_bundle(har_tiny_trained, tmp_path_factory) -> Path:
    """The same trained har-tiny exported head-only (--train-convs 0: the 374-parameter dense
    head on the int8 backbone's 16 features), the previous default split."""
    import shutil

    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle

    out = tmp_path_factory.mktemp("har-tiny-head")
    for f in ("model.keras", "training.json"):
        shutil.copy2(har_tiny_trained / f, out / f)
    export_bundle(out=out, model_name="har-tiny", dataset="hapt",
                  train_config=TrainConfig(epochs=5), train_convs=0)
    return out
