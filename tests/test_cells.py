"""Tests for seq2seq.model.cells (cell registry + PeepholeLSTMCell)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.model.cells import CELLS, PeepholeLSTMCell, make_cell, make_rnn_layer, state_count

RNG = np.random.default_rng(0)


def _x(batch=3, time=5, dim=4):
    return RNG.normal(size=(batch, time, dim)).astype("float32")


def test_registry_kinds_and_state_count():
    assert CELLS.names() == ("simple", "gru", "lstm", "peephole_lstm")
    assert [state_count(k) for k in CELLS] == [1, 1, 2, 2]
    assert isinstance(make_cell("simple", 3), keras.layers.SimpleRNNCell)
    gru = make_cell("gru", 3)
    assert isinstance(gru, keras.layers.GRUCell) and gru.reset_after
    assert type(make_cell("lstm", 3)) is keras.layers.LSTMCell
    assert isinstance(make_cell("peephole_lstm", 3), PeepholeLSTMCell)


def test_unknown_kind_raises_with_allowed_values():
    with pytest.raises(ValueError, match="'tcn'.*'simple'.*'peephole_lstm'"):
        make_cell("tcn", 3)
    with pytest.raises(ValueError, match="tcn"):
        state_count("tcn")


def test_simple_rnn_cell_is_tanh_and_matches_formula():
    cell = make_cell("simple", 3)
    x = _x(2, 1, 4)[:, 0]
    h0 = RNG.normal(size=(2, 3)).astype("float32")
    out, _ = cell(x, [h0])
    expect = np.tanh(x @ cell.kernel.numpy() + h0 @ cell.recurrent_kernel.numpy() + cell.bias.numpy())
    np.testing.assert_allclose(out.numpy(), expect, atol=1e-6)


def test_simple_rnn_dropout_kwargs_forwarded():
    cell = make_cell("simple", 3, dropout=0.2, recurrent_dropout=0.1)
    assert cell.dropout == 0.2 and cell.recurrent_dropout == 0.1


def test_peephole_equals_lstm_with_zero_peepholes():
    x = _x()
    lstm = keras.layers.RNN(keras.layers.LSTMCell(6), return_sequences=True, return_state=True)
    peep = keras.layers.RNN(PeepholeLSTMCell(6), return_sequences=True, return_state=True)
    lstm(x)
    peep(x)
    pc, lc = peep.cell, lstm.cell
    for name in ("kernel", "recurrent_kernel", "bias"):
        getattr(pc, name).assign(getattr(lc, name))
    pc.peephole_weights.assign(np.zeros((3, 6), "float32"))
    for a, b in zip(lstm(x), peep(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    # Non-zero peepholes change the result.
    pc.peephole_weights.assign(np.ones((3, 6), "float32"))
    assert not np.allclose(lstm(x)[0].numpy(), peep(x)[0].numpy(), atol=1e-4)


def test_peephole_matches_gers_schmidhuber_equations():
    cell = PeepholeLSTMCell(3)
    x = _x(2, 1, 4)[:, 0]
    h0, c0 = (RNG.normal(size=(2, 3)).astype("float32") for _ in range(2))
    cell.build((None, 4))
    p = RNG.normal(size=(3, 3)).astype("float32")
    cell.peephole_weights.assign(p)
    h, (h2, c) = cell(x, [h0, c0])
    z = x @ cell.kernel.numpy() + h0 @ cell.recurrent_kernel.numpy() + cell.bias.numpy()
    zi, zf, zc, zo = np.split(z, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))
    i, f = sig(zi + p[0] * c0), sig(zf + p[1] * c0)
    c_exp = f * c0 + i * np.tanh(zc)
    o = sig(zo + p[2] * c_exp)
    np.testing.assert_allclose(c.numpy(), c_exp, atol=1e-5)
    np.testing.assert_allclose(h.numpy(), o * np.tanh(c_exp), atol=1e-5)
    np.testing.assert_allclose(h2.numpy(), h.numpy())


def test_peephole_gradients_reach_peephole_weights():
    layer = keras.layers.RNN(PeepholeLSTMCell(5))
    x = tf.constant(_x())
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    names = [w.name for w in layer.trainable_weights]
    g = grads[names.index("peephole_weights")]
    assert g is not None and g.shape == (3, 5)
    assert np.all(np.isfinite(g.numpy())) and np.abs(g.numpy()).sum() > 0


def test_peephole_dropout_training_runs_and_inference_deterministic():
    layer = keras.layers.RNN(PeepholeLSTMCell(4, dropout=0.5, recurrent_dropout=0.5, seed=1))
    x = _x()
    a, b = layer(x, training=False), layer(x, training=False)
    np.testing.assert_allclose(a.numpy(), b.numpy())
    assert not np.allclose(layer(x, training=True).numpy(), a.numpy())


def test_peephole_save_load_roundtrip(tmp_path):
    inp = keras.Input((None, 4))
    out = keras.layers.RNN(PeepholeLSTMCell(5, peephole_initializer="ones"), return_sequences=True)(inp)
    model = keras.Model(inp, out)
    cfg = model.layers[1].cell.get_config()
    assert cfg["units"] == 5 and "peephole_initializer" in cfg
    path = tmp_path / "peephole.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = _x()
    np.testing.assert_allclose(model(x).numpy(), loaded(x).numpy(), atol=1e-6)
    assert isinstance(loaded.layers[1].cell, PeepholeLSTMCell)


@pytest.mark.parametrize("kind", CELLS)
def test_each_kind_in_rnn_with_masking(kind):
    """Final states of right-padded sequences equal the unpadded ones."""
    x = _x(2, 6, 4)
    lengths = [6, 3]
    mask = np.array([[t < n for t in range(6)] for n in lengths])
    cell = make_cell(kind, 5)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    out = layer(x, mask=mask)
    states = out[1:]
    assert len(states) == state_count(kind)
    short = layer(x[1:2, :3])
    for s_full, s_short in zip(states, short[1:]):
        np.testing.assert_allclose(s_full.numpy()[1:2], s_short.numpy(), atol=1e-5)
    # The whole-sequence layer from the registry agrees with the plain cell.
    fast = make_rnn_layer(kind, 5)
    fast(x)
    fast.set_weights(layer.get_weights())
    for a, b in zip(fast(x, mask=mask)[1:], states):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
