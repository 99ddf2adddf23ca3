"""Checkpoint averaging: the element-wise mean of the model weights of several checkpoints of one run.

Averaging the parameters of the last checkpoints of a run (Junczys-Dowmunt et al., 2016, "The AMU-UEDIN
submission to the WMT16 news translation task"; Vaswani et al., 2017, sec. 6.1) gives a model that usually
scores above each of them. The result is a new model directory that `translate`, `evaluate` and `export`
read like any other: config.yaml and tokenizers/ copied, the averaged weights as best.weights.h5.
"""

from __future__ import annotations

import csv
import os
import shutil

import h5py
import numpy as np

from seq2seq import model_dir as md
from seq2seq.model_dir import BEST_WEIGHTS, atomic_save_weights, list_checkpoints
from seq2seq.runner import load

_OPTIMIZER_GROUP = "optimizer"


def _model_arrays(path: str) -> dict:
    """{dataset path: shape} of the model weights in a Keras .weights.h5 file (optimizer state left out)."""
    shapes = {}
    with h5py.File(path, "r") as f:

        def visit(name, item):
            if isinstance(item, h5py.Dataset) and not name.startswith(_OPTIMIZER_GROUP + "/"):
                shapes[name] = tuple(item.shape)

        f.visititems(visit)
    return shapes


def check_same_architecture(paths: list[str]) -> None:
    """Raise ValueError naming the first two files whose model weights differ in names or shapes.

    Args:
      paths: Keras .weights.h5 files.

    Raises:
      ValueError: "<file a> and <file b> hold different architectures: <what differs>".
    """
    reference = _model_arrays(paths[0])
    for path in paths[1:]:
        other = _model_arrays(path)
        only_first = sorted(set(reference) - set(other))
        only_second = sorted(set(other) - set(reference))
        shapes = sorted(k for k in set(reference) & set(other) if reference[k] != other[k])
        if only_first or only_second or shapes:
            parts = []
            if only_first:
                parts.append(f"only in the first: {', '.join(only_first[:3])}")
            if only_second:
                parts.append(f"only in the second: {', '.join(only_second[:3])}")
            for key in shapes[:3]:
                parts.append(f"{key} has shape {reference[key]} vs {other[key]}")
            raise ValueError(f"{paths[0]} and {path} hold different architectures: {'; '.join(parts)}")


def _validation_scores_by_step(model_dir: str, config) -> tuple[str, dict]:
    """(metric, {optimizer step: value}) from MODEL_DIR/train_log.csv (one row per round of `train.eval_every`
    steps); the metric is the run's `train.select_on` (val_loss or val_bleu).
    """
    metric = config.train.select_on
    path = os.path.join(model_dir, "train_log.csv")
    steps_per_round = min(config.train.eval_every, config.train.max_steps)
    scores = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if row.get(metric):
                    scores[(int(row["epoch"]) + 1) * steps_per_round] = float(row[metric])
    return metric, scores


def select_checkpoints(model_dir: str, last: int | None = None, best: int | None = None) -> list[str]:
    """The checkpoint files to average: the newest `last`, or the `best` by the run's model-selection metric.

    Args:
      model_dir: a trained model directory (MODEL_DIR/checkpoints/ckpt-<step>.weights.h5).
      last: int ≥ 1 or None.
      best: int ≥ 1 or None; ranks checkpoints by the metric the run selected on (`train.select_on`) as
        train_log.csv records it at their step: the lowest val_loss, or the highest val_bleu.

    Returns:
      list of paths, oldest first.

    Raises:
      ValueError: neither or both of `last` / `best`, a count < 1 or above the number of checkpoints kept
        (see train.keep_checkpoints), or (`best`) a checkpoint without that metric at its step.
    """
    if (last is None) == (best is None):
        raise ValueError("give exactly one of --last N or --best N")
    count = last if last is not None else best
    checkpoints = list_checkpoints(model_dir)
    if count < 1 or count > len(checkpoints):
        raise ValueError(
            f"{model_dir}: asked to average {count} checkpoints; {len(checkpoints)} kept "
            f"({', '.join(os.path.basename(p) for _, p in checkpoints) or 'none'}); "
            f"raise train.keep_checkpoints to keep more"
        )
    if last is not None:
        return [path for _, path in checkpoints[-last:]]
    metric, scores = _validation_scores_by_step(model_dir, md.read_config(model_dir))
    missing = [os.path.basename(p) for step, p in checkpoints if step not in scores]
    if missing:
        raise ValueError(
            f"{model_dir}: no {metric} in train_log.csv at the step of {', '.join(missing)} "
            f"(checkpoints must fall on train.eval_every boundaries for --best); use --last"
        )
    sign = -1.0 if metric == "val_bleu" else 1.0  # higher BLEU, lower loss is better
    ranked = sorted(checkpoints, key=lambda item: sign * scores[item[0]])[:best]
    return [path for _, path in sorted(ranked)]


def average_weights(model, paths: list[str]) -> None:
    """Set `model`'s weights to the mean of its weights in the checkpoint files `paths`.

    Args:
      model: a built, compiled Keras model of the checkpoints' architecture (the files hold optimizer state,
        so `load_weights` needs the optimizer built); its optimizer state ends as that of the last file.
      paths: Keras .weights.h5 files.

    Raises:
      ValueError: the files hold different architectures (see `check_same_architecture`).
    """
    check_same_architecture(paths)
    total = None
    for path in paths:
        model.load_weights(path)
        values = [np.asarray(w.numpy(), dtype=np.float64) for w in model.weights]
        total = values if total is None else [t + v for t, v in zip(total, values)]
    model.set_weights([(t / len(paths)).astype(w.dtype) for t, w in zip(total, model.get_weights())])


def average_checkpoints(model_dir: str, output_dir: str, last: int | None = None, best: int | None = None) -> str:
    """Write a new model directory whose weights are the mean of checkpoints of `model_dir`.

    `output_dir` receives config.yaml and tokenizers/ (copied) and best.weights.h5 (the averaged model
    weights); it is assembled in a temporary sibling folder and renamed into place, so nothing is written
    at `output_dir` on any error.

    Args:
      model_dir: a trained translation model directory.
      output_dir: a new (or empty) folder.
      last / best: how many checkpoints, see `select_checkpoints`.

    Returns:
      the absolute path of `output_dir`.

    Raises:
      FileExistsError: `output_dir` exists and is not empty.
      ValueError: see `select_checkpoints` and `check_same_architecture`.
      ModelDirError: `model_dir` is not a translation model directory.
    """
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)):
        raise FileExistsError(
            f"refusing to write the averaged model into {output_dir!r}: it exists and is not empty; choose a new folder"
        )
    paths = select_checkpoints(model_dir, last=last, best=best)
    check_same_architecture(paths)
    model = load(model_dir).model  # the serving model: weights only (checkpoints also hold Adam state, unused)
    tok_dir = os.path.join(model_dir, md.TOKENIZER_DIR)
    average_weights(model, paths)

    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-average-{os.getpid()}-{os.path.basename(output_dir)}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        os.makedirs(tmp)
        shutil.copyfile(os.path.join(model_dir, md.CONFIG_FILE), os.path.join(tmp, md.CONFIG_FILE))
        shutil.copytree(tok_dir, os.path.join(tmp, md.TOKENIZER_DIR))
        atomic_save_weights(model, os.path.join(tmp, BEST_WEIGHTS))
        md.write_json(
            os.path.join(tmp, "averaged_from.json"),
            {"model_dir": os.path.abspath(model_dir), "checkpoints": [os.path.basename(p) for p in paths]},
        )
        if os.path.isdir(output_dir):
            os.rmdir(output_dir)  # empty (checked above)
        os.replace(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output_dir
