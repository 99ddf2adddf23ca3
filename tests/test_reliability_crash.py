"""Reliability: interrupted work resumes, interrupted saves leave nothing half-written, NaN stops cleanly.

See docs/reliability.md for the table of cases.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from conftest import write_synthetic_parallel

from pipelines.atomic import atomic_path
from pipelines.tokenizers import load_tokenizer
from seq2seq import model_dir as training_files
from seq2seq import weights_file
from seq2seq.cli import main
from seq2seq.config import config_from_dict
from seq2seq.errors import NonFiniteLossError
from seq2seq.model.seq2seq import build_model
from seq2seq.model_dir import list_checkpoints
from seq2seq.serving.export import load_saved_model, save_atomically
from seq2seq.training import fit as fit_module
from seq2seq.training.fit import compile_model, fit
from seq2seq.training.losses import MaskedAccuracy
from seq2seq.training.trainer import build_trainable_model

pytestmark = pytest.mark.reliability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(max_steps, checkpoint_every=3, **train):
    return config_from_dict(
        {
            "data": {"path": "unused.tsv"},
            "model": {"embedding": {"dim": 8}, "encoder": {"units": 8}, "decoder": {"units": 8}},
            "train": {"max_steps": max_steps, "eval_every": max_steps, "checkpoint_every": checkpoint_every, **train},
        }
    )


def batches():
    source = np.array([[5, 6, 3], [7, 3, 0]], "int32")
    target_in = np.array([[2, 6, 5], [2, 7, 0]], "int32")
    target_out = np.array([[6, 5, 3], [7, 3, 0]], "int32")
    return tf.data.Dataset.from_tensors(((source, target_in), target_out)).repeat()


def weights_finite(path, config) -> tuple[bool, int]:
    model = compile_model(build_trainable_model(config, 10, 10), config.train)
    model.load_weights(path)
    return all(np.isfinite(w).all() for w in model.get_weights()), int(model.optimizer.iterations)


def leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith((".tmp", ".old")))


# --------------------------------------------------------------------------------------------------
# kill -9 during `seq2seq train`, then the same command again


@pytest.mark.slow
def test_sigkill_during_training_then_same_command_resumes_and_finishes(tmp_path):
    source, target = write_synthetic_parallel(str(tmp_path), pairs=400)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "format": "parallel",
                    "source_file": source,
                    "target_file": target,
                    "max_source_length": 12,
                    "max_target_length": 12,
                    "validation_fraction": 0.05,
                    "test_fraction": 0.05,
                },
                "tokenizer": {"kind": "word", "source_vocab_size": 32, "target_vocab_size": 32},
                "model": {"embedding": {"dim": 16}, "encoder": {"units": 32}, "decoder": {"units": 32}},
                "train": {
                    "batch_size": 32,
                    "max_steps": 300,
                    "eval_every": 100,
                    "checkpoint_every": 5,
                    "validation_batches": 1,
                    "early_stopping_patience": None,
                },
                "decode": {"beam_size": 1, "batch_size": 64, "max_length": 16},
            }
        )
    )
    model_dir = tmp_path / "model"
    command = [sys.executable, "-m", "seq2seq.cli", "train", str(config), "--model-dir", str(model_dir)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list_checkpoints(str(model_dir)) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "training ended before its first checkpoint could be interrupted"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    steps = [step for step, _ in list_checkpoints(str(model_dir))]
    assert steps and max(steps) < 300 and all(step % 5 == 0 for step in steps)
    # Whatever the kill interrupted, every listed checkpoint loads completely.
    resumed_from = max(steps)

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    match = re.search(r"resumed from (\S+) \(step (\d+)\)", again.stderr)
    assert match, again.stderr[-3000:]
    assert match.group(1).endswith(f"ckpt-{resumed_from}.weights.h5") and int(match.group(2)) == resumed_from
    assert '"steps": 300' in again.stdout
    assert [step for step, _ in list_checkpoints(str(model_dir))][-1] == 300


# --------------------------------------------------------------------------------------------------
# Atomic writes


def test_interrupted_checkpoint_leaves_no_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    config = tiny(3)
    model = compile_model(build_trainable_model(config, 10, 10), config.train)
    fit(model, batches(), None, config.train, str(tmp_path), verbose=0)
    assert [step for step, _ in list_checkpoints(str(tmp_path))] == [3]

    def half_written_then_crash(path, data):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data[:72])  # the start of the HDF5 file, then "power cut"
            raise OSError("disk full")

    monkeypatch.setattr(weights_file, "write_atomically", half_written_then_crash)
    config = tiny(6)
    resumed = compile_model(build_trainable_model(config, 10, 10), config.train)
    with pytest.raises(OSError, match="disk full"):
        fit(resumed, batches(), None, config.train, str(tmp_path), verbose=0)
    monkeypatch.undo()
    checkpoints = os.path.join(tmp_path, training_files.CHECKPOINT_DIR)
    assert sorted(os.listdir(checkpoints)) == ["ckpt-3.weights.h5"]  # no ckpt-6, no temporary file
    assert weights_finite(os.path.join(checkpoints, "ckpt-3.weights.h5"), config) == (True, 3)
    # and the next run resumes from it
    again = compile_model(build_trainable_model(config, 10, 10), config.train)
    assert fit(again, batches(), None, config.train, str(tmp_path), verbose=0)["start_step"] == 3


def test_interrupted_keras_model_save_leaves_nothing(tmp_path, monkeypatch):
    config = tiny(1)
    model = compile_model(build_trainable_model(config, 10, 10), config.train)
    model.fit(batches(), steps_per_epoch=1, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    training_files.atomic_save_model(model, path)
    before = open(path, "rb").read()

    def crash(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        training_files.atomic_save_model(model, path)
    assert open(path, "rb").read() == before and leftovers(tmp_path) == []


class Doubler(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def double(self, x):
        return {"y": 2.0 * x}


def test_interrupted_export_leaves_the_previous_export_and_no_temporary_folder(tmp_path, monkeypatch):
    output = str(tmp_path / "export")
    module = Doubler()
    save_atomically(module, output, {"serving_default": module.double})
    real_save = tf.saved_model.save

    def save_then_crash(obj, export_dir, signatures=None, **kwargs):
        real_save(obj, export_dir, signatures=signatures)  # a complete-looking folder...
        os.remove(os.path.join(export_dir, "saved_model.pb"))  # ...whose graph never got written
        raise RuntimeError("killed mid-export")

    monkeypatch.setattr(tf.saved_model, "save", save_then_crash)
    with pytest.raises(RuntimeError, match="killed mid-export"):
        save_atomically(module, output, {"serving_default": module.double})
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    served = load_saved_model(output).signatures["serving_default"]
    assert served(x=tf.constant([1.5]))["y"].numpy().tolist() == [3.0]
    monkeypatch.setattr(tf.saved_model, "save", save_then_crash)
    with pytest.raises(RuntimeError, match="killed mid-export"):  # a first export: nothing appears at all
        save_atomically(module, str(tmp_path / "fresh"), {"serving_default": module.double})
    assert not os.path.exists(tmp_path / "fresh") and leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------------
# NaN / Inf loss


class NanFromStep(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate 1e-3, then NaN from optimizer step `step` on: that update makes every weight NaN."""

    def __init__(self, step):
        self.step = step

    def __call__(self, iterations):
        return tf.where(iterations >= self.step, tf.constant(float("nan")), tf.constant(1e-3))

    def get_config(self):
        return {"step": self.step}


def test_nan_loss_stops_training_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    config = tiny(20, checkpoint_every=3)
    model = build_model(config, 10, 10)
    compile_model(model, config.train)
    # The update taken at step index 5 (the 6th) writes NaN weights; ckpt-6 would be saved right after it,
    # before any loss computed from those weights has been seen.
    model.optimizer = keras.optimizers.Adam(learning_rate=NanFromStep(5))
    model.compile(optimizer=model.optimizer, loss=model.loss, metrics=[MaskedAccuracy()])
    model.optimizer.build(model.trainable_variables)
    with pytest.raises(NonFiniteLossError, match=r"NaN or infinite.*ckpt-3\.weights\.h5 is kept") as error:
        fit(model, batches(), None, config.train, str(tmp_path), verbose=0)
    assert "train.learning_rate" in str(error.value)
    assert [step for step, _ in list_checkpoints(str(tmp_path))] == [3]
    assert weights_finite(list_checkpoints(str(tmp_path))[0][1], config)[0]  # (its optimizer differs: not compared)
    assert not os.path.exists(tmp_path / training_files.BEST_WEIGHTS)


def test_nan_loss_through_the_cli_exits_nonzero_with_one_error_line(tmp_path, capsys, monkeypatch):
    # The optimizer's learning rate turns NaN at step 4: the 5th update makes the weights NaN.
    monkeypatch.setattr(fit_module, "make_optimizer", lambda train: keras.optimizers.Adam(NanFromStep(4)))
    source, target = write_synthetic_parallel(str(tmp_path), pairs=60)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "format": "parallel",
                    "source_file": source,
                    "target_file": target,
                    "validation_fraction": 0.0,
                    "test_fraction": 0.1,
                },
                "tokenizer": {"kind": "word", "source_vocab_size": 32, "target_vocab_size": 32},
                "model": {"embedding": {"dim": 8}, "encoder": {"units": 8}, "decoder": {"units": 8}},
                "train": {"batch_size": 16, "max_steps": 40, "eval_every": 40, "checkpoint_every": 2},
            }
        )
    )
    model_dir = tmp_path / "model"
    code = main(["--quiet", "train", str(config), "--model-dir", str(model_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert re.search(
        r"^error: training stopped at step \d+: the loss became NaN or infinite; the last good "
        r"checkpoint \S+ckpt-4\.weights\.h5 is kept",
        err,
        re.M,
    )
    assert "Traceback" not in err
    kept = list_checkpoints(str(model_dir))
    assert [step for step, _ in kept] == [2, 4]
    reference = config_from_dict(yaml.safe_load(config.read_text()))
    sizes = [load_tokenizer(str(model_dir / "tokenizers"), side).vocab_size for side in ("source", "target")]
    for _, path in kept:  # whatever was kept has finite weights
        model = compile_model(build_trainable_model(reference, *sizes), reference.train)
        model.load_weights(path)
        assert all(np.isfinite(w).all() for w in model.get_weights())
    assert not os.path.exists(model_dir / training_files.BEST_WEIGHTS)
