"""Central float training of the initial global model (what the factory ships).

``train_model`` fits a zoo model (or the user's own Keras model) on the chosen groups of a
dataset, with normalisation statistics taken from the factory groups only, and evaluates it on
the held-out groups. TensorFlow is imported on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fltiny.data.base import Dataset, Normalization
from fltiny.errors import UsageError

TrainOn = Literal["factory", "factory+fleet"]
SIDECAR = "training.json"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    train_on: TrainOn = "factory"


@dataclass
class TrainReport:
    """What training produced, saved beside the model as ``training.json``."""

    model_name: str
    dataset: str
    task: str
    input_shape: list[int]
    n_outputs: int
    class_names: list[str]
    normalization: dict[str, list[float]]
    train_on: str
    train_samples: int
    holdout_metric: str
    holdout_value: float
    head_layers: int
    config: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainReport:
        return cls(**json.loads(path.read_text()))

    def normalizer(self) -> Normalization:
        return Normalization(tuple(self.normalization["mean"]), tuple(self.normalization["std"]))


def seed_everything(seed: int) -> None:
    """Python, numpy and TensorFlow seeds, deterministic ops and one CPU thread per op pool:
    the same seed gives the same factory model on this machine (another machine's TensorFlow
    build or CPU may still give another one: claims are checked over several seeds)."""
    from fltiny.tf import keras, tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process: the pools keep their sizes


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, task: str) -> tuple[str, float]:
    """Accuracy (classification) or mean absolute error (regression) of a Keras model."""
    pred = model.predict(x, batch_size=512, verbose=0)
    return metric(pred, y, task)


def metric(pred: np.ndarray, y: np.ndarray, task: str) -> tuple[str, float]:
    if task == "classification":
        return "accuracy", float(np.mean(np.argmax(pred, axis=-1) == y))
    return "mae", float(np.mean(np.abs(pred.reshape(-1) - y.reshape(-1))))


def train_model(
    model: Any,
    dataset: Dataset,
    config: TrainConfig,
    model_name: str,
    head_layers: int,
    progress: Callable[[str], None] = lambda _msg: None,
) -> TrainReport:
    """Fit ``model`` in place and return the report (normalisation, held-out metric)."""
    from fltiny.tf import keras

    if config.epochs < 1 or config.batch_size < 1:
        raise UsageError("epochs and batch size must be at least 1")
    norm = Normalization.fit(dataset.factory().x)
    groups = dataset.scenario.factory
    if config.train_on == "factory+fleet":
        groups = groups + dataset.scenario.fleet
    train = dataset.select(groups)
    holdout = dataset.holdout()
    x_train, x_hold = norm.apply(train.x), norm.apply(holdout.x)

    seed_everything(config.seed)
    if dataset.task == "classification":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    else:
        loss = keras.losses.MeanSquaredError()
        metrics = ["mae"]
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss, metrics=metrics)

    class _Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            shown = ", ".join(f"{k} {v:.4f}" for k, v in logs.items())
            progress(f"epoch {epoch + 1}/{config.epochs}: {shown}")

    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: config.learning_rate * 0.5 ** (epoch // max(1, config.epochs // 3))
    )
    model.fit(
        x_train, train.y, epochs=config.epochs, batch_size=config.batch_size,
        shuffle=True, verbose=0, callbacks=[_Progress(), schedule],
    )
    name, value = evaluate(model, x_hold, holdout.y, dataset.task)
    return TrainReport(
        model_name=model_name,
        dataset=dataset.name,
        task=dataset.task,
        input_shape=list(dataset.input_shape),
        n_outputs=dataset.n_outputs,
        class_names=list(dataset.class_names),
        normalization={"mean": list(norm.mean), "std": list(norm.std)},
        train_on=config.train_on,
        train_samples=int(len(train.x)),
        holdout_metric=name,
        holdout_value=value,
        head_layers=head_layers,
        config=asdict(config),
    )


def save_trained(model: Any, report: TrainReport, out: Path) -> Path:
    """Write ``model.keras`` and ``training.json`` into ``out``; return the model path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.keras"
    model.save(path)
    report.save(out / SIDECAR)
    return path
