"""Tests for seq2seq.model.rnn.StackedRNN."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.model.cells import CELLS
from seq2seq.model.rnn import StackedRNN

RNG = np.random.default_rng(1)


def _x(batch=3, time=5, dim=4):
    return RNG.normal(size=(batch, time, dim)).astype("float32")


def _mask(lengths, time):
    return np.array([[t < n for t in range(time)] for n in lengths])


@pytest.mark.parametrize("kind", CELLS)
def test_stacked_shapes_and_state_order(kind):
    rnn = StackedRNN(kind, 6, num_layers=2)
    out, states = rnn(_x())
    assert out.shape == (3, 5, 6)
    assert isinstance(states, list)
    assert [int(s.shape[-1]) for s in states] == rnn.state_sizes
    n = 2 if "lstm" in kind else 1
    assert len(states) == 2 * n
    # The h of the last layer is the last output.
    np.testing.assert_allclose(states[n].numpy(), out[:, -1].numpy(), atol=1e-6)
    assert all(s.dtype == tf.float32 for s in states)


def test_stacked_initial_state_and_zeros():
    rnn = StackedRNN("lstm", 4, num_layers=2)
    x = _x()
    zeros = rnn.get_initial_state(3)
    assert [tuple(z.shape) for z in zeros] == [(3, 4)] * 4
    a, sa = rnn(x)
    b, sb = rnn(x, initial_state=zeros)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    c, _ = rnn(x, initial_state=[z + 1.0 for z in zeros])
    assert not np.allclose(a.numpy(), c.numpy())
    with pytest.raises(ValueError, match="expects 4 state tensors"):
        rnn(x, initial_state=zeros[:2])


@pytest.mark.parametrize("merge_mode,width", [("concat", 10), ("sum", 5)])
def test_bidirectional_merge_modes_and_state_order(merge_mode, width):
    rnn = StackedRNN("lstm", 5, num_layers=2, bidirectional=True, merge_mode=merge_mode)
    x = _x()
    out, states = rnn(x)
    assert out.shape == (3, 5, width) and rnn.output_units == width
    # layer, then direction (fwd, bwd), then (h, c)
    assert len(states) == 8 and rnn.state_sizes == [5] * 8
    top = rnn.rnn_layers[1]
    fwd_h, bwd_h = states[4], states[6]
    if merge_mode == "concat":
        np.testing.assert_allclose(fwd_h.numpy(), out[:, -1, :5].numpy(), atol=1e-6)
        np.testing.assert_allclose(bwd_h.numpy(), out[:, 0, 5:].numpy(), atol=1e-6)
    assert top.forward_layer.go_backwards is False


def test_bidirectional_step_raises():
    rnn = StackedRNN("gru", 4, bidirectional=True)
    rnn(_x())
    with pytest.raises(ValueError, match="unidirectional"):
        rnn.step(_x()[:, 0], rnn.get_initial_state(3))


@pytest.mark.parametrize(
    "kind,bidirectional", [("gru", False), ("lstm", True), ("peephole_lstm", False), ("simple", True)]
)
def test_stacked_mask_invariance_right_padding(kind, bidirectional):
    """Final states of right-padded sequences equal the unpadded ones."""
    rnn = StackedRNN(kind, 4, num_layers=2, bidirectional=bidirectional, residual=True)
    x = _x(2, 7, 3)
    x[1, 4:] = 99.0  # garbage in the padding must not leak
    out, states = rnn(x, mask=_mask([7, 4], 7))
    out_short, states_short = rnn(x[1:2, :4])
    for s, s_short in zip(states, states_short):
        np.testing.assert_allclose(s.numpy()[1:2], s_short.numpy(), atol=1e-5)
    np.testing.assert_allclose(out.numpy()[1:2, :4], out_short.numpy(), atol=1e-5)


def test_stacked_keras_mask_from_embedding_propagates():
    emb = keras.layers.Embedding(10, 3, mask_zero=True)
    rnn = StackedRNN("gru", 4)
    ids = np.array([[4, 5, 6, 0, 0], [7, 8, 9, 1, 2]])
    out, states = rnn(emb(ids))
    _, short = rnn(emb(ids[:1, :3]))
    np.testing.assert_allclose(states[0].numpy()[:1], short[0].numpy(), atol=1e-5)
    m = getattr(out, "_keras_mask", None)
    assert m is not None and m.numpy().tolist()[0] == [True] * 3 + [False] * 2


@pytest.mark.parametrize("kind", CELLS)
def test_stacked_step_equals_call(kind):
    rnn = StackedRNN(kind, 5, num_layers=3, residual=True, dropout=0.3)
    x = _x(2, 6, 4)
    init = [tf.constant(RNG.normal(size=(2, 5)).astype("float32")) for _ in rnn.state_sizes]
    out, final = rnn(x, initial_state=init)
    states, outs = init, []
    for t in range(6):
        y, states = rnn.step(tf.constant(x[:, t]), states)
        outs.append(y)
    np.testing.assert_allclose(np.stack([o.numpy() for o in outs], 1), out.numpy(), atol=1e-5)
    for a, b in zip(states, final):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_stacked_step_builds_lazily_and_in_tf_function():
    rnn = StackedRNN("lstm", 3, num_layers=2)
    step = tf.function(lambda x, s: rnn.step(x, s))
    y, s = step(tf.constant(_x()[:, 0]), rnn.get_initial_state(3))
    assert y.shape == (3, 3) and len(s) == 4 and rnn.built


def test_residual_adds_layer_input():
    x = _x()
    plain = StackedRNN("gru", 4, num_layers=2)
    res = StackedRNN("gru", 4, num_layers=2, residual=True)
    plain(x)
    res(x)
    res.set_weights(plain.get_weights())
    out_p, st_p = plain(x)
    out_r, st_r = res(x)
    # First-layer output is identical, so residual output = plain + layer-1 output.
    layer1, *_ = plain.rnn_layers[0](x)
    np.testing.assert_allclose(out_r.numpy(), out_p.numpy() + layer1.numpy(), atol=1e-5)
    np.testing.assert_allclose(st_r[0].numpy(), st_p[0].numpy(), atol=1e-6)


def test_residual_dropout_only_in_training():
    rnn = StackedRNN("gru", 4, num_layers=2, residual=True, dropout=0.5)
    x = _x()
    a, _ = rnn(x, training=False)
    b, _ = rnn(x, training=False)
    np.testing.assert_allclose(a.numpy(), b.numpy())
    c, _ = rnn(x, training=True)
    assert not np.allclose(a.numpy(), c.numpy())


def test_invalid_arguments():
    with pytest.raises(ValueError, match="allowed values"):
        StackedRNN("transformer", 4)
    with pytest.raises(ValueError, match="merge_mode"):
        StackedRNN("gru", 4, bidirectional=True, merge_mode="mul")


def test_stacked_serialisation_roundtrip_functional(tmp_path):
    ids = keras.Input((None,), dtype="int32")
    emb = keras.layers.Embedding(20, 6, mask_zero=True)(ids)
    enc = StackedRNN(
        "peephole_lstm",
        4,
        num_layers=2,
        bidirectional=True,
        residual=True,
        dropout=0.1,
        recurrent_dropout=0.1,
        name="enc",
    )
    out, states = enc(emb)
    dec = StackedRNN("gru", 4, num_layers=2, merge_mode="sum", kernel_initializer="he_normal", name="dec")
    pooled = keras.layers.Dense(4)(states[0])
    dout, dstates = dec(out, initial_state=[pooled, states[2]])
    model = keras.Model(ids, [out, dout] + states + dstates)
    x = np.array([[3, 4, 5, 0], [6, 7, 8, 9]], dtype="int32")
    expected = model(x)
    path = tmp_path / "stack.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("enc"), StackedRNN)
    cfg = loaded.get_layer("dec").get_config()
    assert cfg["kind"] == "gru" and cfg["num_layers"] == 2
    for a, b in zip(expected, loaded(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
