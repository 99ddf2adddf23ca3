"""Checkpoint averaging: the averaged weights are the mean of the checkpoints; mismatches write nothing."""

import os
import shutil

import numpy as np
import pytest
import yaml

from seq2seq import model_dir as md
from seq2seq import runner
from seq2seq.averaging import average_checkpoints, select_checkpoints
from seq2seq.config import config_from_dict
from seq2seq.model.seq2seq import build_model
from seq2seq.model_dir import atomic_save_weights, list_checkpoints
from seq2seq.training.fit import compile_model


@pytest.fixture()
def three_checkpoints(synthetic_model_dir, tmp_path):
    """A copy of the synthetic model directory with checkpoints at steps 30, 40, 50 (distinct weights)."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(synthetic_model_dir, model_dir)
    model = runner.load(model_dir).model
    rng = np.random.default_rng(0)
    for step in (40, 50):
        model.set_weights([w + rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()])
        atomic_save_weights(model, os.path.join(model_dir, "checkpoints", f"ckpt-{step}.weights.h5"))
    return model_dir


def weights_of(model_dir, path):
    model = runner.load(model_dir).model
    model.load_weights(path)
    return [w.numpy() for w in model.weights]


def test_averaged_weights_are_the_mean_of_the_checkpoints(three_checkpoints, tmp_path):
    paths = [p for _, p in list_checkpoints(three_checkpoints)]
    assert [os.path.basename(p) for p in paths] == ["ckpt-30.weights.h5", "ckpt-40.weights.h5", "ckpt-50.weights.h5"]
    output = average_checkpoints(three_checkpoints, str(tmp_path / "averaged"), last=2)
    assert sorted(os.listdir(output)) == ["averaged_from.json", "best.weights.h5", "config.yaml", "tokenizers"]
    expected = [
        (a + b) / 2 for a, b in zip(weights_of(three_checkpoints, paths[1]), weights_of(three_checkpoints, paths[2]))
    ]
    averaged = runner.load(output).model
    for want, got in zip(expected, [w.numpy() for w in averaged.weights]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert runner.predict(runner.serving_module(runner.load(output)), ["a b ."])[0][0] != ""


def test_select_checkpoints(three_checkpoints):
    assert [os.path.basename(p) for p in select_checkpoints(three_checkpoints, last=3)] == [
        "ckpt-30.weights.h5",
        "ckpt-40.weights.h5",
        "ckpt-50.weights.h5",
    ]
    with pytest.raises(ValueError, match="3 kept"):
        select_checkpoints(three_checkpoints, last=4)
    with pytest.raises(ValueError, match="exactly one"):
        select_checkpoints(three_checkpoints)
    with pytest.raises(ValueError, match="ckpt-40.weights.h5, ckpt-50.weights.h5"):  # no val_loss at 40, 50
        select_checkpoints(three_checkpoints, best=2)
    assert [os.path.basename(p) for p in select_checkpoints(three_checkpoints, last=1)] == ["ckpt-50.weights.h5"]


def _log_rounds(model_dir, select_on, values):
    """Rewrite config.yaml (train.select_on, eval_every 10) and train_log.csv with one row per round."""
    config = md.read_config(model_dir).to_dict()
    config["train"].update(select_on=select_on, eval_every=10)
    with open(os.path.join(model_dir, md.CONFIG_FILE), "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    with open(os.path.join(model_dir, "train_log.csv"), "w", encoding="utf-8") as f:
        f.write(f"epoch,loss,{select_on}\n")
        for step, value in values.items():
            f.write(f"{step // 10 - 1},1.0,{value}\n")


@pytest.mark.parametrize(
    "select_on, values, chosen",
    [
        ("val_loss", {30: 2.0, 40: 1.5, 50: 1.7}, ["ckpt-40.weights.h5", "ckpt-50.weights.h5"]),
        ("val_bleu", {30: 20.0, 40: 18.0, 50: 22.0}, ["ckpt-30.weights.h5", "ckpt-50.weights.h5"]),
    ],
)
def test_best_follows_the_runs_selection_metric(three_checkpoints, select_on, values, chosen):
    _log_rounds(three_checkpoints, select_on, values)
    assert [os.path.basename(p) for p in select_checkpoints(three_checkpoints, best=2)] == chosen


def test_different_architectures_are_named_and_nothing_is_written(three_checkpoints, tmp_path):
    config = runner.load(three_checkpoints).config
    values = config.to_dict()
    values["model"]["decoder"]["units"] = 24
    other = config_from_dict(values)
    model = compile_model(build_model(other, 64, 64), other.train)
    odd = os.path.join(three_checkpoints, "checkpoints", "ckpt-60.weights.h5")
    atomic_save_weights(model, odd)
    output = str(tmp_path / "averaged")
    with pytest.raises(
        ValueError,
        match=r"ckpt-50\.weights\.h5 and .*ckpt-60\.weights\.h5 hold different "
        r"architectures: .*has shape",
    ):
        average_checkpoints(three_checkpoints, output, last=2)
    assert not os.path.exists(output)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-average")]
