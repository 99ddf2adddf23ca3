"""Model selection on validation BLEU (train.select_on: val_bleu): the BLEU of every round is logged, best.weights.h5
are the weights of the best round (their validation BLEU, re-measured from the model directory, is the recorded
value), best.json says which they are, and a resumed run only replaces them with better ones.
"""

import csv
import json
import os
import types

import keras
import numpy as np
import pytest

from seq2seq import runner
from seq2seq.config import ConfigError, config_from_dict
from seq2seq.model_dir import BEST_RECORD, BEST_WEIGHTS
from seq2seq.training.fit import BestWeights
from tests.conftest import synthetic_config, write_synthetic_parallel


def _rounds(model_dir):
    with open(os.path.join(model_dir, "train_log.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _record(model_dir):
    with open(os.path.join(model_dir, BEST_RECORD), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def bleu_selected(tmp_path_factory):
    data = tmp_path_factory.mktemp("select_on_bleu")
    source, target = write_synthetic_parallel(str(data))
    values = synthetic_config(source, target)
    values["model"] = {"embedding": {"dim": 32}, "encoder": {"units": 32}, "decoder": {"units": 32}}
    values["train"].update({"max_steps": 120, "checkpoint_every": 30, "learning_rate": 0.02, "select_on": "val_bleu"})
    values["train"]["early_stopping_patience"] = None
    model_dir = str(data / "model")
    runner.train(config_from_dict(values), model_dir, verbose=0)
    return values, model_dir


def test_every_round_logs_its_validation_bleu_and_the_best_round_is_kept(bleu_selected):
    _, model_dir = bleu_selected
    bleu = [float(row["val_bleu"]) for row in _rounds(model_dir)]
    assert len(bleu) == 4  # 120 steps, a validation every 30
    assert max(bleu) > bleu[0]  # the model learns the toy language
    record = _record(model_dir)
    best = int(np.argmax(bleu))
    assert record == {"monitor": "val_bleu", "value": pytest.approx(bleu[best], abs=1e-9), "step": 30 * (best + 1)}


def test_best_weights_reproduce_the_recorded_bleu_from_the_model_directory(bleu_selected):
    _, model_dir = bleu_selected
    again = runner.evaluate(model_dir, "validation", progress=False, save=False, strategy="greedy", beam_size=1)
    assert again["sacrebleu"] == pytest.approx(_record(model_dir)["value"], abs=1e-6)


def test_a_resumed_run_keeps_the_earlier_best_unless_it_improves(bleu_selected):
    values, model_dir = bleu_selected
    before = _record(model_dir)
    runner.train(config_from_dict(values, ["train.max_steps=150"]), model_dir, verbose=0)
    after = _record(model_dir)
    last = float(_rounds(model_dir)[-1]["val_bleu"])
    if last > before["value"]:
        assert after == {"monitor": "val_bleu", "value": pytest.approx(last, abs=1e-9), "step": 150}
    else:
        assert after == before


def test_best_weights_in_max_mode_save_only_improvements_and_remember_them(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    callback = BestWeights(str(tmp_path), monitor="val_bleu", mode="max")
    callback.set_model(model)
    path = tmp_path / BEST_WEIGHTS
    callback.on_epoch_end(0, {"val_bleu": 10.0})
    first = path.stat().st_mtime_ns
    callback.on_epoch_end(1, {"val_bleu": 9.0})  # worse: not saved
    assert path.stat().st_mtime_ns == first and _record(str(tmp_path))["value"] == 10.0
    callback.on_epoch_end(2, {"val_bleu": float("nan")})  # not finite: ignored
    assert _record(str(tmp_path))["value"] == 10.0
    again = BestWeights(str(tmp_path), monitor="val_bleu", mode="max")  # a resumed run
    again.set_model(model)
    again.on_epoch_end(0, {"val_bleu": 9.5})
    assert _record(str(tmp_path))["value"] == 10.0
    again.on_epoch_end(1, {"val_bleu": 12.5})
    assert _record(str(tmp_path))["value"] == 12.5
    other = BestWeights(str(tmp_path))  # a different monitor starts afresh
    assert other.best == float("inf")


def test_validation_beam_size_must_be_positive():
    values = synthetic_config("a", "b")
    with pytest.raises(ConfigError, match="train.validation_beam_size"):
        config_from_dict(values, ["train.validation_beam_size=0"])
    with pytest.raises(ConfigError, match="train.select_on"):
        config_from_dict(values, ["train.select_on=val_chrf"])


def test_a_model_trained_on_precomputed_features_cannot_select_on_bleu():
    config = config_from_dict(synthetic_config("a", "b"), ["train.select_on=val_bleu"])
    task = types.SimpleNamespace(config=config, inputs_are_features=lambda for_training: True)
    with pytest.raises(ConfigError, match="precomputed backbone features; use select_on: val_loss"):
        runner.validation_bleu(task, model=None, tokenizers={})
