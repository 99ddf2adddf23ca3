"""Dropout levers (embeddings, memory, decoder output) and layer normalisation: wiring and defaults."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from seq2seq.config import ConfigError, config_from_dict
from seq2seq.model.seq2seq import Seq2Seq, build_model

SOURCE = np.array([[5, 6, 7, 3, 0, 0], [8, 9, 3, 0, 0, 0]], dtype="int32")
TARGET_IN = np.array([[2, 5, 6, 7], [2, 8, 9, 0]], dtype="int32")


def config(embedding=None, encoder=None, decoder=None):
    return config_from_dict(
        {
            "data": {"path": "unused.tsv"},
            "model": {
                "embedding": {"dim": 16, **(embedding or {})},
                "encoder": {"units": 16, **(encoder or {})},
                "decoder": {"units": 32, **(decoder or {})},
            },
        }
    )


def rates(model):
    return (
        model.encoder.input_dropout.rate,
        model.encoder.memory_dropout.rate,
        model.decoder.input_dropout.rate,
        model.decoder.output_dropout.rate,
    )


def test_defaults_keep_the_earlier_rates_and_weights():
    model = build_model(config(encoder={"dropout": 0.1}, decoder={"dropout": 0.2}), 20, 20)
    assert rates(model) == (0.1, 0.0, 0.2, 0.2)
    assert not [w.path for w in model.weights if "norm" in w.path]


def test_each_lever_sets_its_own_rate():
    model = build_model(
        config(
            embedding={"dropout": 0.4},
            encoder={"dropout": 0.1, "output_dropout": 0.5},
            decoder={"dropout": 0.2, "output_dropout": 0.3},
        ),
        20,
        20,
    )
    assert rates(model) == (0.4, 0.5, 0.4, 0.3)
    assert model.decoder.rnn.dropout == 0.2  # between decoder layers: still model.decoder.dropout


def test_a_model_config_saved_before_the_levers_still_builds():
    """model.keras files written earlier hold a model_config without the new keys."""
    values = dataclasses.asdict(config().model)
    for section, key in [
        ("embedding", "dropout"),
        ("encoder", "output_dropout"),
        ("decoder", "output_dropout"),
        ("decoder", "layer_norm"),
        ("decoder", "type"),
    ]:
        del values[section][key]
    model = Seq2Seq(values, 20, source_vocab_size=20)
    model.build_weights()
    assert rates(model) == (0.0, 0.0, 0.0, 0.0)


def test_memory_dropout_drops_memory_only_in_training():
    model = build_model(config(encoder={"output_dropout": 0.5}), 20, 20)
    memory, _, final = model.encoder(SOURCE, training=False)
    dropped, _, dropped_final = model.encoder(SOURCE, training=True)
    memory, dropped = memory.numpy(), dropped.numpy()
    kept = dropped != 0
    np.testing.assert_allclose(dropped[kept], 2.0 * memory[kept], rtol=1e-6)  # inverted dropout: × 1 / (1 - 0.5)
    assert 0.3 < 1 - kept[memory != 0].mean() < 0.7
    for a, b in zip(final, dropped_final):  # the bridge reads undropped final states
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    again, _, _ = model.encoder(SOURCE, training=False)
    np.testing.assert_array_equal(again.numpy(), memory)


def test_layer_norm_normalises_the_attentional_layer():
    model = build_model(config(decoder={"layer_norm": True}), 20, 20)
    dec = model.decoder
    state, constants = model.encode(SOURCE)
    ids = tf.constant(TARGET_IN[:, 0])
    logits, _, _ = model.step(ids, state, constants)
    output, _ = dec.rnn.step(dec.embedding(ids), state["rnn"])
    context, _ = dec.attention(output[:, None, :], constants["keys"], constants["memory"], constants["mask"])
    pre = np.concatenate([context.numpy()[:, 0], output.numpy()], -1) @ dec.attentional.kernel.numpy()
    normed = (pre - pre.mean(-1, keepdims=True)) / np.sqrt(pre.var(-1, keepdims=True) + dec.attentional_norm.epsilon)
    attentional = np.tanh(normed * dec.attentional_norm.gamma.numpy() + dec.attentional_norm.beta.numpy())
    expected = attentional @ dec.output_projection.kernel.numpy() + dec.output_projection.bias.numpy()
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-5)
    full = model((SOURCE, TARGET_IN)).numpy()
    np.testing.assert_allclose(full[:, 0], logits.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "values,named",
    [
        ({"embedding": {"dropout": 1.0}}, "model.embedding.dropout"),
        ({"encoder": {"output_dropout": -0.1}}, "model.encoder.output_dropout"),
        ({"decoder": {"layer_norm": True, "attention": "none"}}, "model.decoder.layer_norm"),
    ],
)
def test_impossible_values_are_rejected(values, named):
    with pytest.raises(ConfigError, match=named):
        config(**values)
