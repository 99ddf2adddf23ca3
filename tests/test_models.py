"""Specification tests for the encoder-decoder model: masking, step contract, learning a toy task."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq import decoding
from seq2seq.config import config_from_dict
from seq2seq.model.seq2seq import build_model
from seq2seq.training.fit import compile_model
from seq2seq.training.losses import MaskedCrossEntropy
from seq2seq.training.trainer import build_trainable_model


def tiny_config(**model):
    values = {
        "data": {"path": "unused.tsv"},
        "model": {"embedding": {"dim": 16}, "encoder": {"units": 16}, "decoder": {"units": 32}},
        "train": {"max_steps": 10, "learning_rate": 0.01},
    }
    for key, value in model.items():
        section, name = key.split("__")
        values["model"][section][name] = value
    return config_from_dict(values)


def padded_source():
    source = np.array([[5, 6, 7, 3, 0, 0], [8, 9, 3, 0, 0, 0]], dtype="int32")
    target_in = np.array([[2, 5, 6, 7], [2, 8, 9, 0]], dtype="int32")
    return source, target_in


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_attention_ignores_padding(attention):
    model = build_model(tiny_config(decoder__attention=attention), 20, 20)
    source, target_in = padded_source()
    memory, mask, final = model.encoder(source)
    state = model.decoder.initial_state(model.bridge(final))
    constants = model.decoder.prepare_memory(memory, mask)
    logits, weights = model.decoder(target_in, constants, state)
    noisy = tf.where(mask[:, :, None], memory, tf.random.normal(tf.shape(memory)) * 100.0)
    logits2, weights2 = model.decoder(target_in, model.decoder.prepare_memory(noisy, mask), state)
    np.testing.assert_array_equal(logits.numpy(), logits2.numpy())
    # Exactly zero weight on padding, rows sum to one.
    assert np.all(weights.numpy()[~np.broadcast_to(mask.numpy()[:, None, :], weights.shape)] == 0.0)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)


def test_encoder_output_does_not_depend_on_extra_padding():
    model = build_model(tiny_config(encoder__cell="lstm"), 20, 20)
    short = np.array([[5, 6, 7, 3]], dtype="int32")
    long = np.array([[5, 6, 7, 3, 0, 0, 0]], dtype="int32")
    m1, _, s1 = model.encoder(short)
    m2, _, s2 = model.encoder(long)
    np.testing.assert_allclose(m1.numpy(), m2.numpy()[:, :4], atol=1e-6)
    for a, b in zip(s1, s2):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_loss_ignores_padding_and_equals_log_vocab_for_uniform_logits():
    y_true = np.array([[4, 5, 0, 0]], dtype="int32")
    logits = np.zeros((1, 4, 10), dtype="float32")
    loss = MaskedCrossEntropy()
    assert float(loss(y_true, logits)) == pytest.approx(np.log(10.0), rel=1e-6)
    changed = logits.copy()
    changed[:, 2:] = np.random.normal(size=(2, 10)) * 50
    assert float(loss(y_true, changed)) == pytest.approx(np.log(10.0), rel=1e-6)


def test_label_smoothing_matches_formula():
    y_true = np.array([[1]], dtype="int32")
    logits = np.log(np.array([[[0.1, 0.6, 0.3]]], dtype="float32"))
    eps = 0.2
    expected = -(1 - eps) * np.log(0.6) - eps * np.mean(np.log([0.1, 0.6, 0.3]))
    assert float(MaskedCrossEntropy(eps)(y_true, logits)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "attention,input_feeding,cell",
    [("bahdanau", False, "gru"), ("luong", True, "lstm"), ("none", False, "peephole_lstm")],
)
def test_step_equals_teacher_forcing(attention, input_feeding, cell):
    config = tiny_config(
        decoder__attention=attention, decoder__input_feeding=input_feeding, decoder__cell=cell, decoder__layers=2
    )
    model = build_model(config, 20, 20)
    source, target_in = padded_source()
    logits = model((source, target_in)).numpy()
    state, constants = model.encode(source)
    for t in range(target_in.shape[1]):
        step_logits, state, _ = model.step(tf.constant(target_in[:, t]), state, constants)
        np.testing.assert_allclose(step_logits.numpy(), logits[:, t], atol=1e-5)


def reverse_task(n, rng, vocab=12, min_len=2, max_len=6):
    lengths = rng.integers(min_len, max_len + 1, size=n)
    source = np.zeros((n, max_len + 1), "int32")
    target_in = np.zeros((n, max_len + 1), "int32")
    target_out = np.zeros((n, max_len + 1), "int32")
    for i, length in enumerate(lengths):
        tokens = rng.integers(4, vocab, size=length)
        source[i, : length + 1] = list(tokens) + [3]
        reversed_tokens = list(tokens[::-1])
        target_in[i, : length + 1] = [2] + reversed_tokens
        target_out[i, : length + 1] = reversed_tokens + [3]
    return source, target_in, target_out


def test_model_learns_to_reverse_sequences():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    config = config_from_dict(
        {
            "data": {"path": "unused.tsv"},
            "model": {
                "embedding": {"dim": 32},
                "encoder": {"units": 48},
                "decoder": {"units": 64, "attention": "luong"},
            },
            "train": {"learning_rate": 0.01, "max_steps": 1},
        }
    )
    model = compile_model(build_trainable_model(config, 12, 12), config.train)
    source, target_in, target_out = reverse_task(4096, rng)
    history = model.fit((source, target_in), target_out, batch_size=64, epochs=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 5
    test_source, _, test_out = reverse_task(200, np.random.default_rng(1))
    state, constants = model.encode(test_source)
    result = decoding.greedy_decode(model.step, state, constants, 200, max_length=test_out.shape[1])
    ids = result.ids.numpy()
    real = test_out != 0
    width = min(ids.shape[1], test_out.shape[1])
    accuracy = (ids[:, :width] == test_out[:, :width])[real[:, :width]].mean()
    assert accuracy >= 0.97, accuracy


def test_smoothed_loss_gradient_is_softmax_minus_smoothed_target_at_real_positions():
    rng = np.random.default_rng(0)
    y_true = np.array([[3, 1, 0], [2, 0, 0]], dtype="int32")
    logits = tf.constant(rng.normal(size=(2, 3, 4)).astype("float32"))
    eps = 0.1
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = MaskedCrossEntropy(eps)(y_true, logits)
    gradient = tape.gradient(loss, logits).numpy()
    target = np.eye(4)[y_true] * (1 - eps) + eps / 4
    expected = (tf.nn.softmax(logits).numpy() - target) * (y_true != 0)[..., None] / 3.0
    np.testing.assert_allclose(gradient, expected, atol=1e-6)


def test_masked_accuracy_counts_real_positions_only():
    from seq2seq.training.losses import MaskedAccuracy

    y_true = np.array([[1, 2, 3, 0], [2, 0, 0, 0]], dtype="int32")
    predicted = np.array([[1, 2, 0, 2], [1, 0, 0, 0]])  # real positions: hit, hit, miss; miss
    logits = np.eye(4, dtype="float32")[predicted] * 5.0
    metric = MaskedAccuracy()
    metric.update_state(y_true, logits)
    assert float(metric.result()) == pytest.approx(2 / 4)


def test_additive_attention_scores_equal_keras_layer():
    from seq2seq.model.attention import AdditiveAttention

    rng = np.random.default_rng(0)
    query, key = rng.normal(size=(2, 3, 5)).astype("float32"), rng.normal(size=(2, 4, 5)).astype("float32")
    value = rng.normal(size=(2, 4, 6)).astype("float32")
    mask = np.array([[True, True, True, False], [True, False, False, False]])
    ours, stock = AdditiveAttention(use_scale=True), keras.layers.AdditiveAttention(use_scale=True)
    ours.build([query.shape, value.shape, key.shape])
    stock.build([query.shape, value.shape, key.shape])
    ours.set_weights([rng.normal(size=(5,)).astype("float32")])
    stock.set_weights(ours.get_weights())
    a = ours([query, value, key], mask=[None, mask], return_attention_scores=True)
    b = stock([query, value, key], mask=[None, mask], return_attention_scores=True)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-6)
