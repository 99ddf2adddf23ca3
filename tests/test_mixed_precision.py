"""`train.mixed_precision` (mixed_float16 with Keras loss scaling, mixed_bfloat16) and `train.jit_compile`:
a tiny model trains a few steps without NaN and decodes; attention stays float32, the output projection runs in
the compute dtype and its logits come out float32 (also with the output tied to the embedding).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.config import config_from_dict
from seq2seq.decoding import greedy_decode
from seq2seq.training.fit import compile_model
from seq2seq.training.trainer import build_trainable_model


def batch():
    source = np.array([[5, 6, 3], [7, 3, 0]], "int32")
    target_in = np.array([[2, 6, 5], [2, 7, 0]], "int32")
    target_out = np.array([[6, 5, 3], [7, 3, 0]], "int32")
    return (source, target_in), target_out


@pytest.mark.parametrize(
    "policy, jit",
    [
        ("mixed_float16", False),
        ("mixed_bfloat16", False),
        pytest.param(None, True, marks=pytest.mark.slow),  # XLA compilation: ~20-40 s each on 2 shared cores
        pytest.param("mixed_bfloat16", True, marks=pytest.mark.slow),
    ],
)
def test_trains_without_nan_and_decodes(policy, jit):
    config = config_from_dict(
        {
            "data": {"path": "unused.tsv"},
            "model": {"embedding": {"dim": 8}, "encoder": {"units": 8}, "decoder": {"units": 8}},
            "train": {"mixed_precision": policy, "jit_compile": jit, "learning_rate": 0.01},
        }
    )
    keras.utils.set_random_seed(0)
    model = compile_model(build_trainable_model(config, 12, 12), config.train)
    assert keras.mixed_precision.global_policy().name == "float32"  # build_model restored the global policy
    if policy:
        compute = policy.split("_")[1]
        assert model.decoder.rnn.dtype_policy.compute_dtype == compute
        assert model.decoder.attention.dtype_policy.compute_dtype == "float32"
        assert model.decoder.output_projection.dtype_policy.compute_dtype == compute
        assert all(v.dtype == "float32" for v in model.trainable_variables)
    # Keras wraps the optimizer in a LossScaleOptimizer for float16 only (bfloat16 has float32's range).
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    (x, y) = batch()
    losses = [float(model.train_on_batch(x, y)[0]) for _ in range(8)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    logits = model(x)
    assert logits.dtype == "float32" and np.all(np.isfinite(logits.numpy()))
    state, constants = model.encode(tf.constant(x[0]))
    result = greedy_decode(model.step, state, constants, batch_size=2, max_length=5)
    assert result.ids.shape[0] == 2 and np.all(np.isfinite(result.scores.numpy()))


def test_tied_output_logits_are_float32_under_mixed_bfloat16():
    config = config_from_dict(
        {
            "data": {"path": "unused.tsv"},
            "model": {
                "embedding": {"dim": 8, "share": True, "tie_output": True},
                "encoder": {"units": 8},
                "decoder": {"units": 8},
            },
            "tokenizer": {"shared": True},
            "train": {"mixed_precision": "mixed_bfloat16", "learning_rate": 0.01},
        }
    )
    model = compile_model(build_trainable_model(config, 12, 12), config.train)
    (x, y) = batch()
    losses = [float(model.train_on_batch(x, y)[0]) for _ in range(8)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    logits = model(x)
    assert logits.dtype == "float32" and np.all(np.isfinite(logits.numpy()))
