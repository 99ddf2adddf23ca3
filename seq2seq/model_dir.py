"""The model directory: one self-contained folder per experiment.

```
MODEL_DIR/
  config.yaml            the config used (with overrides applied)
  tokenizers/            source / target tokenizer models
  checkpoints/           ckpt-<step>.weights.h5 (weights + optimizer state), newest two kept
  best.weights.h5        the best weights on validation (train.select_on: lowest loss or highest BLEU)
  best.json              which: {"monitor", "value", "step"} of best.weights.h5
  model.keras            the trained model in Keras format
  logs/                  TensorBoard
  train_log.csv          per-round training metrics
  metrics.json           evaluation results per split
  export/                SavedModel written by `seq2seq export` (default location)
```
Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import shutil
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:  # annotations only: this module needs no Keras at import time
    import keras

from pipelines.atomic import atomic_path, write_atomically
from seq2seq.config import Config, ConfigError, config_from_dict, save_config
from seq2seq.errors import ModelDirError  # noqa: F401  (raised here; importable from this module too)
from seq2seq.run_lock import LOCK_NAME
from seq2seq.weights_file import save_weights_atomically

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
BEST_WEIGHTS = "best.weights.h5"
BEST_RECORD = "best.json"
_CKPT_RE = re.compile(r"ckpt-(\d+)\.weights\.h5$")
TOKENIZER_DIR = "tokenizers"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
DATA_FINGERPRINT_FILE = "data_fingerprint.json"

# Sections whose change makes existing checkpoints or tokenizers meaningless.
_FROZEN_KEYS = (
    "task",
    "model",
    "tokenizer",
    "data.format",
    "data.path",
    "data.reverse",
    "data.source_file",
    "data.target_file",
    "data.lowercase",
    "data.seed",
    "data.validation_fraction",
    "data.test_fraction",
    "data.tfds_name",
    "data.captions_file",
    "data.train_split_file",
    "data.limit",
)  # limit: the tokenizers and splits were made from the limited data


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _frozen(flat: dict) -> dict:
    return {k: v for k, v in flat.items() if any(k == f or k.startswith(f + ".") for f in _FROZEN_KEYS)}


def read_config(model_dir: str) -> Config:
    """The config saved in `model_dir`.

    Raises:
      ModelDirError: `model_dir` does not exist or holds no config.yaml (not a model directory).
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isdir(model_dir):
        raise ModelDirError(
            f"model directory {model_dir!r} does not exist; train one with "
            f"`seq2seq train CONFIG --model-dir {model_dir}`"
        )
    if not os.path.isfile(path):
        raise ModelDirError(
            f"{model_dir!r} is not a seq2seq model directory (no {CONFIG_FILE}); train one with "
            f"`seq2seq train CONFIG --model-dir {model_dir}`"
        )
    with open(path, encoding="utf-8") as f:
        try:
            return config_from_dict(yaml.safe_load(f))
        except (ConfigError, yaml.YAMLError) as err:
            raise ModelDirError(f"{path}: {err}") from None


def _has_trained_weights(model_dir: str) -> bool:
    """True when `model_dir` holds a checkpoint or best weights (files a config change would invalidate)."""
    checkpoints = os.path.join(model_dir, CHECKPOINT_DIR)
    return os.path.isfile(os.path.join(model_dir, BEST_WEIGHTS)) or (
        os.path.isdir(checkpoints) and any(n.startswith("ckpt-") for n in os.listdir(checkpoints))
    )


def prepare(model_dir: str, config: Config) -> bool:
    """Create `model_dir` for `config`, or check that a run there can be resumed with it.

    A directory whose earlier run stopped before writing any weights (no checkpoint, no best weights) is
    started afresh when the config changed: its config.yaml is replaced and its tokenizers are removed.

    Returns:
      True when `model_dir` already held a run (resume), False for a fresh (or restarted) directory.

    Raises:
      ModelDirError: the saved config differs in a key that would invalidate checkpoints or tokenizers
        (model architecture, tokenizer, data source or split); the message lists each key with both values.
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    resuming = os.path.isfile(path)
    if resuming:
        old = _frozen(_flatten(read_config(model_dir).to_dict()))
        new = _frozen(_flatten(config.to_dict()))
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed and not _has_trained_weights(model_dir):
            # A run that failed or was stopped before its first checkpoint (e.g. an impossible vocabulary
            # size): nothing depends on the saved config, so start afresh instead of refusing.
            log.warning(
                "%s holds no trained weights: starting afresh with the new config (changed: %s)",
                model_dir,
                ", ".join(changed),
            )
            shutil.rmtree(os.path.join(model_dir, TOKENIZER_DIR), ignore_errors=True)
            resuming = False
        elif changed:
            details = "; ".join(f"{k}: saved {old.get(k)!r}, now {new.get(k)!r}" for k in changed)
            raise ModelDirError(
                f"cannot resume in {model_dir!r}: the config changed incompatibly ({details}). "
                f"Use a new --model-dir, or restore these values."
            )
    elif os.path.isdir(model_dir) and set(os.listdir(model_dir)) - {LOCK_NAME}:
        raise ModelDirError(
            f"{model_dir!r} is not empty and holds no {CONFIG_FILE}: refusing to train into an "
            f"unrelated folder; choose a new or empty --model-dir"
        )
    os.makedirs(model_dir, exist_ok=True)
    save_config(config, path)
    return resuming


def write_json(path: str, values: dict) -> None:
    """Write `values` as indented JSON through a temporary file and a rename."""
    write_atomically(path, json.dumps(values, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def update_metrics(model_dir: str, split: str, metrics: dict) -> dict:
    """Merge `metrics` for `split` into `<model_dir>/metrics.json`; return the whole file's content."""
    path = os.path.join(model_dir, METRICS_FILE)
    values = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    values[split] = metrics
    write_json(path, values)
    return values


def atomic_save_weights(model: keras.Model, path: str) -> None:
    """`model.save_weights(path)` through a temporary file in the same folder and a rename."""
    save_weights_atomically(model, path)


def atomic_save_model(model: keras.Model, path: str) -> None:
    """`model.save(path)` (Keras `.keras` format) through a temporary file in the same folder and a rename."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def trained_weights_path(model_dir: str) -> str:
    """The weights a trained model directory serves: `best.weights.h5`, else the newest checkpoint.

    Raises:
      ModelDirError: no trained weights in `model_dir` yet.
    """
    weights = os.path.join(model_dir, BEST_WEIGHTS)
    if os.path.exists(weights):
        return weights
    checkpoints = list_checkpoints(model_dir)
    if not checkpoints:
        raise ModelDirError(f"{model_dir!r} has no trained weights yet (no {BEST_WEIGHTS}, no checkpoints)")
    return checkpoints[-1][1]


def list_checkpoints(model_dir: str) -> list[tuple[int, str]]:
    """(step, path) of every complete checkpoint in `model_dir`, oldest first."""
    found = []
    for path in glob.glob(os.path.join(model_dir, CHECKPOINT_DIR, "ckpt-*.weights.h5")):
        match = _CKPT_RE.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _file_fingerprint(path: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def write_data_fingerprint(model_dir: str, paths: list[str]) -> dict:
    """Record size and SHA-256 of the data files a model was trained on (`data_fingerprint.json`, atomic)."""
    values = {os.path.abspath(p): _file_fingerprint(p) for p in paths}
    write_json(os.path.join(model_dir, DATA_FINGERPRINT_FILE), values)
    return values


def changed_data_files(model_dir: str) -> list[str]:
    """The recorded data files that are missing or differ now (empty without a fingerprint file)."""
    path = os.path.join(model_dir, DATA_FINGERPRINT_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        recorded = json.load(handle)
    return [
        name
        for name, fingerprint in recorded.items()
        if not os.path.isfile(name) or _file_fingerprint(name) != fingerprint
    ]
