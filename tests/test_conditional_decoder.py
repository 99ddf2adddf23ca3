"""The conditional GRU decoder (Sennrich et al., 2017): its equations, the step contract, training, serialisation."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.config import ConfigError, config_from_dict
from seq2seq.model.conditional_decoder import ConditionalDecoder
from seq2seq.model.seq2seq import build_model
from seq2seq.training.fit import compile_model
from seq2seq.training.trainer import build_trainable_model


def cgru_config(**decoder):
    values = {
        "data": {"path": "unused.tsv"},
        "model": {
            "embedding": {"dim": 16},
            "encoder": {"units": 12},
            "decoder": {"type": "conditional", "units": 24, **decoder},
        },
        "train": {"max_steps": 10, "learning_rate": 0.01},
    }
    return config_from_dict(values)


def batch():
    source = np.array([[5, 6, 7, 3, 0, 0], [8, 9, 3, 0, 0, 0]], dtype="int32")
    target_in = np.array([[2, 5, 6, 7, 4], [2, 8, 9, 0, 0]], dtype="int32")
    return source, target_in


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gru(cell, x, h):
    """Keras GRU with reset_after=True (Cho et al., 2014), gate order z, r, h."""
    kernel, recurrent, bias = (w.numpy() for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
    x_z, x_r, x_h = np.split(x @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h @ recurrent + bias[1], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return z * h + (1 - z) * np.tanh(x_h + r * h_h)


def test_step_follows_the_cgru_equations():
    """s' = GRU1(E y, s); c = Σ α C with α from the additive score queried with s'; s_new = GRU2(c, s');
    logits = W_o tanh(W_t [s_new; c; E y] + b_t) + b_o.
    """
    model = build_model(cgru_config(), 20, 20)
    dec = model.decoder
    source, target_in = batch()
    state, constants = model.encode(source)
    ids = tf.constant([5, 8])
    logits, new_state, weights = model.step(ids, state, constants)

    s = state["rnn"][0].numpy()
    e = dec.embedding.embeddings.numpy()[ids.numpy()]
    memory, mask = constants["memory"].numpy(), constants["mask"].numpy()
    att = dec.attention
    keys = memory @ att.key_projection.kernel.numpy()
    s1 = gru(dec.transition_1, e, s)
    query = s1 @ att.query_projection.kernel.numpy()
    scores = np.tanh(query[:, None, :] + keys) @ att.scorer.scale.numpy()
    scores = np.where(mask, scores, -np.inf)
    alpha = np.exp(scores - scores.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    context = np.einsum("bt,btd->bd", alpha, memory)
    s2 = gru(dec.transition_2, context, s1)
    hidden = np.tanh(
        np.concatenate([s2, context, e], -1) @ dec.deep_output.kernel.numpy() + dec.deep_output.bias.numpy()
    )
    expected = hidden @ dec.output_projection.kernel.numpy() + dec.output_projection.bias.numpy()

    np.testing.assert_allclose(weights.numpy(), alpha, atol=1e-6)
    np.testing.assert_allclose(new_state["rnn"][0].numpy(), s2, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize(
    "options", [{}, {"attention": "luong", "layer_norm": True}, {"output_dropout": 0.3, "dropout": 0.2}]
)
def test_step_equals_teacher_forcing(options):
    model = build_model(cgru_config(**options), 20, 20)
    source, target_in = batch()
    logits, attention = model((source, target_in), return_attention=True)
    state, constants = model.encode(source)
    for t in range(target_in.shape[1]):
        step_logits, state, step_attention = model.step(tf.constant(target_in[:, t]), state, constants)
        np.testing.assert_allclose(step_logits.numpy(), logits.numpy()[:, t], atol=1e-5)
        np.testing.assert_allclose(step_attention.numpy(), attention.numpy()[:, t], atol=1e-6)


def test_tied_shared_embeddings_use_one_matrix():
    values = {
        "data": {"path": "unused.tsv"},
        "tokenizer": {"shared": True},
        "model": {
            "embedding": {"dim": 16, "share": True, "tie_output": True},
            "encoder": {"units": 12},
            "decoder": {"type": "conditional", "units": 24},
        },
    }
    model = build_model(config_from_dict(values), 20, 20)
    assert model.decoder.embedding is model.encoder.embedding
    assert model.decoder.output_projection is None
    source, target_in = batch()
    state, constants = model.encode(source)
    logits, _, _ = model.step(tf.constant([5, 8]), state, constants)
    assert logits.shape == (2, 20)


def test_keras_file_round_trip(tmp_path):
    model = build_model(cgru_config(layer_norm=True), 20, 20)
    compile_model(model, cgru_config().train)
    source, target_in = batch()
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.decoder, ConditionalDecoder) and loaded.decoder.layer_norm
    np.testing.assert_array_equal(loaded((source, target_in)).numpy(), model((source, target_in)).numpy())


def test_trains_and_supports_tbptt():
    keras.utils.set_random_seed(0)
    source, target_in = batch()
    target_out = np.concatenate([target_in[:, 1:], np.array([[3], [0]], "int32")], axis=1)
    target_out[1, 2] = 3
    config = cgru_config()
    config.train.learning_rate = 0.03
    model = compile_model(build_trainable_model(config, 20, 20), config.train)
    history = model.fit((source, target_in), target_out, epochs=12, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0], history
    model.tbptt_steps = 2  # windows of 2 target positions: the decoder continues from the carried state
    model.make_train_function(force=True)
    steps = int(model.optimizer.iterations)
    model.fit((source, target_in), target_out, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == steps + 3  # ceil(5 / 2) updates


@pytest.mark.parametrize(
    "key,value,named",
    [
        ("cell", "lstm", "model.decoder.cell"),
        ("layers", 2, "model.decoder.layers"),
        ("attention", "none", "model.decoder.attention"),
        ("input_feeding", True, "model.decoder.input_feeding"),
    ],
)
def test_config_rejects_what_the_cgru_cannot_do(key, value, named):
    with pytest.raises(ConfigError, match=named):
        cgru_config(**{key: value})


def test_mixed_bfloat16_trains_and_step_matches_teacher_forcing():
    """The precomputed GRU_1 projection reads its weights outside the cell's autocast scope: under
    mixed_bfloat16 the step and the teacher-forced pass still agree and the model trains.
    """
    keras.utils.set_random_seed(0)
    config = cgru_config(layer_norm=True)
    config.train.mixed_precision = "mixed_bfloat16"
    model = compile_model(build_trainable_model(config, 20, 20), config.train)
    assert model.decoder.compute_dtype == "bfloat16"
    source, target_in = batch()
    target_out = np.concatenate([target_in[:, 1:], np.array([[3], [0]], "int32")], axis=1)
    losses = [float(model.train_on_batch((source, target_in), target_out)[0]) for _ in range(6)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    teacher = model((source, target_in)).numpy()
    state, constants = model.encode(tf.constant(source))
    for t in range(target_in.shape[1]):
        logits, state, _ = model.step(tf.constant(target_in[:, t]), state, constants)
        assert logits.dtype == "float32"
        np.testing.assert_allclose(logits.numpy(), teacher[:, t], atol=0.1)
