"""Glue between the CLI and the pieces: resolve what the user named into a model and data,
train when needed, export. Kept apart from cli.py so tests and the demo call it directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fltiny.data import load_dataset
from fltiny.data.base import Dataset, Normalization
from fltiny.errors import UsageError
from fltiny.export.pipeline import (
    DEFAULT_MAX_SIZE,
    EvalData,
    ExportResult,
    ModelSource,
    Progress,
    export_model,
    load_keras_file,
    load_npy,
)
from fltiny.models import get_model
from fltiny.train import SIDECAR, TrainConfig, TrainReport, save_trained, train_model

REPRESENTATIVE_SAMPLES = 300


def train_zoo_model(model_name: str, dataset_name: str | None, out: Path, config: TrainConfig,
                    progress: Progress) -> tuple[Path, TrainReport]:
    zoo = get_model(model_name)
    dataset = load_dataset(dataset_name or zoo.dataset)
    if dataset.name != zoo.dataset:
        raise UsageError(f"zoo model '{zoo.name}' is built for dataset '{zoo.dataset}', "
                         f"not '{dataset.name}'")
    from fltiny.export.bundle import prepare_out_dir

    prepare_out_dir(out)
    progress(f"training {zoo.name} on {dataset.name} ({config.train_on} groups, "
             f"{config.epochs} epochs)")
    from fltiny.train import seed_everything

    seed_everything(config.seed)  # the initial weights too: one seed, one factory model
    model = zoo.build(dataset.input_shape, dataset.n_outputs)
    report = train_model(model, dataset, config, zoo.name, zoo.head_layers, progress)
    return save_trained(model, report, out), report


def _representative(dataset: Dataset, norm: Normalization, seed: int = 0) -> np.ndarray:
    factory = dataset.factory()
    idx = np.random.default_rng(seed).permutation(len(factory.x))[:REPRESENTATIVE_SAMPLES]
    return norm.apply(factory.x[np.sort(idx)])


def _reusable(out: Path, model_name: str, dataset: str, config: TrainConfig) -> bool:
    sidecar = out / SIDECAR
    if not (out / "model.keras").is_file() or not sidecar.is_file():
        return False
    try:
        report = json.loads(sidecar.read_text())
    except json.JSONDecodeError:
        return False
    return (report.get("model_name") == model_name and report.get("dataset") == dataset
            and report.get("config", {}).get("epochs") == config.epochs
            and report.get("config", {}).get("seed") == config.seed
            and _tail_convs(out) == _default_tail_convs(model_name))


def _tail_convs(out: Path) -> int | None:
    """Conv layers the bundle's device trains (its float tail); None for an unreadable manifest."""
    from fltiny.export.bundle import MANIFEST

    try:
        layers = json.loads((out / MANIFEST).read_text())["head"]["layers"]
        return sum(1 for layer in layers if layer.get("kind") == "conv1d")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _default_tail_convs(model_name: str) -> int:
    """The zoo model's default split (an export from before a new default is not reused)."""
    from fltiny.models.zoo import ZOO

    return ZOO[model_name].train_convs if model_name in ZOO else 0


def export_bundle(
    *,
    out: Path,
    model_name: str | None = None,
    keras_path: Path | None = None,
    dataset: str | None = None,
    rep_data: Path | None = None,
    eval_data: Path | None = None,
    eval_labels: Path | None = None,
    task: str | None = None,
    head_layers: int | None = None,
    train_convs: int | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    train_config: TrainConfig | None = None,
    progress: Progress = lambda _m: None,
) -> ExportResult:
    config = train_config or TrainConfig()
    report: TrainReport | None = None
    if model_name is not None:
        zoo = get_model(model_name)
        dataset = dataset or zoo.dataset
        if _reusable(out, model_name, dataset, config):
            progress(f"reusing the trained model in {out}")
            keras_path = out / "model.keras"
            report = TrainReport.load(out / SIDECAR)
        else:
            keras_path, report = train_zoo_model(model_name, dataset, out, config, progress)
            progress(f"held-out {report.holdout_metric} (float): {report.holdout_value:.4f}")
    assert keras_path is not None
    sidecar = keras_path.parent / SIDECAR
    if report is None and sidecar.is_file():
        report = TrainReport.load(sidecar)
    model = load_keras_file(keras_path)

    ds = load_dataset(dataset) if dataset else None
    if report is not None:
        norm, name = report.normalizer(), report.model_name
        task = task or report.task
        n_outputs, classes = report.n_outputs, tuple(report.class_names)
        heads = report.head_layers if head_layers is None else head_layers
    else:
        channels = int(model.inputs[0].shape[-1])
        norm = (Normalization.fit(ds.factory().x) if ds
                else Normalization((0.0,) * channels, (1.0,) * channels))
        name, task = keras_path.stem, task or (ds.task if ds else "classification")
        n_outputs = int(model.outputs[0].shape[-1])
        classes = ds.class_names if ds else ()
        heads = 1 if head_layers is None else head_layers

    if rep_data is not None:
        rep = load_npy(rep_data, "representative data").astype(np.float32)
    elif ds is not None:
        rep = _representative(ds, norm)
    else:
        raise UsageError("give --rep-data (representative inputs, .npy) or --dataset")
    if eval_data is not None:
        x = load_npy(eval_data, "evaluation data").astype(np.float32)
        y = load_npy(eval_labels, "evaluation labels") if eval_labels else None
        if y is not None and len(y) != len(x):
            raise UsageError(f"--eval-labels has {len(y)} rows, --eval-data has {len(x)}")
    elif ds is not None:
        hold = ds.holdout()
        x, y = norm.apply(hold.x), hold.y
    else:
        x, y = rep, None
    if train_convs is None:  # the zoo model's default; a user's own model: dense head only
        from fltiny.models import ZOO

        train_convs = ZOO[name].train_convs if name in ZOO else 0
    source = ModelSource(model, name, task, heads, norm, classes, n_outputs, train_convs)
    return export_model(source, EvalData(rep, x, y), out, max_size, progress)


def ensure_bundle(model_name: str | None, dataset: str, progress: Progress,
                  root: Path = Path("build"), out: Path | None = None) -> Path:
    """The one place a zoo model's export bundle is found or made: ``out`` (default
    ``root/<model>``) is reused when it holds this model's export with the default training
    settings and the model's default split (its float tail), exported (and trained)
    otherwise; an export with other settings belongs in a directory of its own (``--bundle``).
    ``model_name`` None: the dataset's default."""
    from fltiny.experiment import DataSettings
    from fltiny.export.bundle import MANIFEST

    name = DataSettings(dataset=dataset, model=model_name).model_name()
    out = Path(out) if out is not None else Path(root) / name
    if (out / MANIFEST).is_file() and _reusable(out, name, dataset, TrainConfig()):
        progress(f"reusing the export bundle {out}")
        return out
    progress(f"exporting {name} to {out} (trains the factory model first)")
    export_bundle(out=out, model_name=name, dataset=dataset, progress=progress)
    return out
