"""PrecomputedInputGRU / PrecomputedInputLSTM: the same layer as Keras' GRU / LSTM, with the input projection
of all time steps computed before the recurrence.

Each test builds a stock Keras layer and the toolkit's layer with identical weights and compares outputs,
final states and gradients, with masks (right padding), reversed direction, bidirectional wrapping, input
dropout, and through a `.keras` round trip.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.model import precomputed_rnn
from seq2seq.model.cells import make_rnn_layer
from seq2seq.model.precomputed_rnn import PrecomputedInputGRU, PrecomputedInputLSTM

PAIRS = [(keras.layers.GRU, PrecomputedInputGRU), (keras.layers.LSTM, PrecomputedInputLSTM)]


def inputs_and_mask():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 5)).astype("float32")
    lengths = np.array([6, 4, 1])
    return x, np.arange(6)[None, :] < lengths[:, None]


def twin(stock_cls, new_cls, x, **kwargs):
    stock = stock_cls(7, return_sequences=True, return_state=True, **kwargs)
    new = new_cls(7, return_sequences=True, return_state=True, **kwargs)
    stock.build(x.shape)
    new.build(x.shape)
    new.set_weights(
        [w + np.random.default_rng(1).normal(size=w.shape).astype("float32") * 0.1 for w in stock.get_weights()]
    )
    stock.set_weights(new.get_weights())
    return stock, new


def count_steps(monkeypatch, cls):
    """Count calls of the toolkit's recurrent step (0 means the stock Keras loop ran)."""
    calls = []
    original = cls._recurrent_step

    def spy(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(cls, "_recurrent_step", spy)
    return calls


@pytest.mark.parametrize("stock_cls,new_cls", PAIRS)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_same_outputs_states_and_gradients_as_keras(stock_cls, new_cls, go_backwards, monkeypatch):
    x, mask = inputs_and_mask()
    stock, new = twin(stock_cls, new_cls, x, go_backwards=go_backwards, zero_output_for_mask=True)
    calls = count_steps(monkeypatch, new_cls)
    results = []
    for layer in (stock, new):
        with tf.GradientTape() as tape:
            out = layer(x, mask=mask)
            loss = tf.reduce_sum(tf.sin(out[0])) + sum(tf.reduce_sum(s * s) for s in out[1:])
        results.append((out, tape.gradient(loss, layer.trainable_variables)))
    assert calls, "the pre-computed input path did not run"
    (out_a, grad_a), (out_b, grad_b) = results
    for a, b in zip(out_a, out_b):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    for a, b in zip(grad_a, grad_b):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    # Masked steps emit zeros (outputs come in processing order: reversed with go_backwards).
    padded_outputs = out_b[0].numpy()[2, :-1] if go_backwards else out_b[0].numpy()[2, 1:]
    assert np.all(padded_outputs == 0.0) and np.any(out_b[0].numpy()[2] != 0.0)


@pytest.mark.parametrize("stock_cls,new_cls", PAIRS)
def test_input_dropout_uses_the_same_per_sequence_mask_as_keras(stock_cls, new_cls):
    x, mask = inputs_and_mask()
    stock, new = twin(stock_cls, new_cls, x, dropout=0.5, seed=3)
    a = stock(x, mask=mask, training=True)
    b = new(x, mask=mask, training=True)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), atol=1e-5)
    inference = new(x, mask=mask, training=False)[0].numpy()
    assert not np.allclose(b[0].numpy(), inference)
    np.testing.assert_allclose(inference, new(x, mask=mask)[0].numpy())


def test_falls_back_to_keras_loop_for_recurrent_dropout_and_reset_before(monkeypatch):
    x, _ = inputs_and_mask()
    calls = count_steps(monkeypatch, PrecomputedInputGRU)
    PrecomputedInputGRU(4, recurrent_dropout=0.2)(x, training=True)
    PrecomputedInputGRU(4, reset_after=False)(x)
    assert calls == []


def test_falls_back_to_keras_when_a_gpu_is_visible(monkeypatch):
    x, _ = inputs_and_mask()
    calls = count_steps(monkeypatch, PrecomputedInputLSTM)
    monkeypatch.setattr(precomputed_rnn, "_gpu_visible", lambda: True)
    PrecomputedInputLSTM(4)(x)
    assert calls == []


def test_make_rnn_layer_uses_precomputed_layers_and_bidirectional_clone():
    assert isinstance(make_rnn_layer("gru", 4), PrecomputedInputGRU)
    assert isinstance(make_rnn_layer("lstm", 4), PrecomputedInputLSTM)
    bidirectional = keras.layers.Bidirectional(make_rnn_layer("gru", 4))
    assert isinstance(bidirectional.backward_layer, PrecomputedInputGRU)
    assert bidirectional.backward_layer.go_backwards


@pytest.mark.parametrize("new_cls", [PrecomputedInputGRU, PrecomputedInputLSTM])
def test_keras_file_round_trip(tmp_path, new_cls):
    x, mask = inputs_and_mask()
    inputs = keras.Input((None, 5))
    outputs = keras.layers.Bidirectional(new_cls(4, return_sequences=True))(inputs)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "rnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1].forward_layer, new_cls)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
