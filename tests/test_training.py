"""Training loop: checkpoints, resume from the saved step, best weights."""

import os

import numpy as np
import tensorflow as tf

from seq2seq.config import config_from_dict
from seq2seq.model_dir import list_checkpoints
from seq2seq.training.fit import compile_model, fit
from seq2seq.training.trainer import build_trainable_model


def tiny(max_steps, **train):
    return config_from_dict(
        {
            "data": {"path": "unused.tsv"},
            "model": {"embedding": {"dim": 8}, "encoder": {"units": 8}, "decoder": {"units": 8}},
            "train": {"max_steps": max_steps, "eval_every": 4, "checkpoint_every": 3, **train},
        }
    )


def data():
    source = np.array([[5, 6, 3], [7, 3, 0]], "int32")
    target_in = np.array([[2, 6, 5], [2, 7, 0]], "int32")
    target_out = np.array([[6, 5, 3], [7, 3, 0]], "int32")
    return tf.data.Dataset.from_tensors(((source, target_in), target_out))


def test_resume_continues_from_saved_step(tmp_path):
    model_dir = str(tmp_path)
    config = tiny(6)
    model = compile_model(build_trainable_model(config, 10, 10), config.train)
    result = fit(model, data().repeat(), data(), config.train, model_dir, verbose=0)
    assert result == {**result, "start_step": 0, "final_step": 6}
    assert [step for step, _ in list_checkpoints(model_dir)] == [3, 6]
    saved = [w.numpy().copy() for w in model.trainable_weights]

    config = tiny(10)
    resumed = compile_model(build_trainable_model(config, 10, 10), config.train)
    result = fit(resumed, data().repeat(), data(), config.train, model_dir, verbose=0)
    assert result["start_step"] == 6 and result["final_step"] == 10
    assert [step for step, _ in list_checkpoints(model_dir)] == [9, 10]
    assert os.path.exists(os.path.join(model_dir, "best.weights.h5"))

    # The restored weights were the saved ones (training from step 6 changed them afterwards).
    check = compile_model(build_trainable_model(config, 10, 10), config.train)
    check.load_weights(os.path.join(model_dir, "checkpoints", "ckpt-10.weights.h5"))
    assert int(check.optimizer.iterations) == 10
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(saved, check.trainable_weights))


def test_fit_is_a_no_op_when_already_trained(tmp_path):
    config = tiny(3)
    model = compile_model(build_trainable_model(config, 10, 10), config.train)
    fit(model, data().repeat(), None, config.train, str(tmp_path), verbose=0)
    again = compile_model(build_trainable_model(config, 10, 10), config.train)
    result = fit(again, data().repeat(), None, config.train, str(tmp_path), verbose=0)
    assert result["start_step"] == result["final_step"] == 3
