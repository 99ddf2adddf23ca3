"""Tests for seq2seq.bridge.Bridge."""

import keras
import numpy as np
import pytest

from seq2seq.model.bridge import Bridge
from seq2seq.model.rnn import StackedRNN

RNG = np.random.default_rng(2)


def _states(sizes, batch=3):
    return [RNG.normal(size=(batch, n)).astype("float32") for n in sizes]


def test_bridge_dense_bidirectional_lstm_to_gru():
    enc = StackedRNN("lstm", 4, num_layers=2, bidirectional=True)
    dec = StackedRNN("gru", 6, num_layers=3)
    _, states = enc(RNG.normal(size=(3, 5, 2)).astype("float32"))
    bridge = Bridge("dense", dec.state_sizes)
    out = bridge(states)
    assert [tuple(o.shape) for o in out] == [(3, 6)] * 3
    assert all(np.all(np.abs(o.numpy()) <= 1.0) for o in out)  # tanh
    # Each projection sees the concatenation of all encoder states.
    assert bridge.projections[0].kernel.shape == (32, 6)
    y, _ = dec(RNG.normal(size=(3, 2, 5)).astype("float32"), initial_state=out)
    assert y.shape == (3, 2, 6)


def test_bridge_dense_single_state_image_encoder():
    out = Bridge("dense", [5, 5], activation="linear")(_states([7]))
    assert [tuple(o.shape) for o in out] == [(3, 5), (3, 5)]


def test_bridge_copy_identity():
    states = _states([4, 4, 8])
    out = Bridge("copy", [4, 4, 8])(states)
    for a, b in zip(states, out):
        np.testing.assert_array_equal(a, b.numpy())
    assert Bridge("copy", [4]).trainable_weights == []


def test_bridge_copy_mismatch_lists_both_structures():
    with pytest.raises(ValueError, match=r"\[4, 4\].*\[4\]"):
        Bridge("copy", [4])(_states([4, 4]))
    with pytest.raises(ValueError, match=r"\[4, 5\].*\[4, 4\]"):
        Bridge("copy", [4, 4])(_states([4, 5]))


def test_bridge_zero():
    out = Bridge("zero", [3, 6])(_states([2, 2], batch=5))
    assert [tuple(o.shape) for o in out] == [(5, 3), (5, 6)]
    assert all(not o.numpy().any() for o in out)


def test_bridge_invalid_arguments():
    with pytest.raises(ValueError, match="allowed values"):
        Bridge("attention", [3])
    with pytest.raises(ValueError, match="target_state_sizes"):
        Bridge("dense", [])


@pytest.mark.parametrize("kind", ["dense", "copy", "zero"])
def test_bridge_serialisation_roundtrip(kind, tmp_path):
    inputs = [keras.Input((4,)), keras.Input((4,))]
    outputs = Bridge(kind, [4, 4], name="bridge")(inputs)
    outputs = [keras.layers.Identity()(o) for o in outputs]
    model = keras.Model(inputs, outputs)
    states = _states([4, 4])
    expected = model(states)
    path = tmp_path / f"bridge_{kind}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("bridge").get_config()["kind"] == kind
    for a, b in zip(expected, loaded(states)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
