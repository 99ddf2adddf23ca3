"""Tests for seq2seq.tbptt (truncated backpropagation through time)."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from seq2seq.layers.rnn import StackedRNN
from seq2seq.tbptt import (TBPTTTrainer, run_windows, split_windows,
                           tbptt_train_step)

RNG = np.random.default_rng(3)


class Forecaster:
    """StackedRNN + Dense next-value model exposing a TBPTT step."""

    def __init__(self, units=8, kind="gru", num_layers=1):
        self.rnn = StackedRNN(kind, units, num_layers=num_layers)
        self.head = keras.layers.Dense(1)
        self.outputs = []
        self.record = False

    def __call__(self, window, state):
        x, y = window
        out, new_state = self.rnn(x, initial_state=state)
        pred = self.head(out)
        if self.record:
            self.outputs.append(pred)
        return tf.reduce_mean(tf.square(pred - y)), new_state

    @property
    def trainable_variables(self):
        return self.rnn.trainable_variables + self.head.trainable_variables


def test_split_windows():
    x = np.arange(2 * 7 * 3).reshape(2, 7, 3)
    windows = split_windows(x, 3)
    assert [w.shape[1] for w in windows] == [3, 3, 1]
    np.testing.assert_array_equal(tf.concat(windows, 1).numpy(), x)
    with pytest.raises(ValueError, match="positive"):
        split_windows(x, 0)
    with pytest.raises(ValueError):
        split_windows(np.zeros(4), 2)


def test_tbptt_forward_equals_full_unroll():
    model = Forecaster(units=6, kind="lstm", num_layers=2)
    x = RNG.normal(size=(3, 11, 2)).astype("float32")
    y = RNG.normal(size=(3, 11, 1)).astype("float32")
    full_out, full_state = model.rnn(x)
    model.record = True
    losses, state = run_windows(model, x, 4, targets=y)
    assert len(losses) == 3
    windowed = tf.concat(model.outputs, axis=1)
    np.testing.assert_allclose(windowed.numpy(), model.head(full_out).numpy(),
                               atol=1e-5)
    for a, b in zip(state, full_state):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_tbptt_no_gradient_across_window_boundary():
    model = Forecaster(units=5)
    x = tf.constant(RNG.normal(size=(2, 8, 2)).astype("float32"))
    y = tf.constant(RNG.normal(size=(2, 8, 1)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        losses, _ = run_windows(model, x, 4, targets=y)
    g2 = tape.gradient(losses[1], x,
                       unconnected_gradients=tf.UnconnectedGradients.ZERO)
    assert np.all(g2.numpy()[:, :4] == 0.0)          # window 1: exactly zero
    assert np.abs(g2.numpy()[:, 4:]).sum() > 0       # window 2: real gradient
    # Without truncation the same loss does depend on window-1 inputs.
    with tf.GradientTape() as tape:
        tape.watch(x)
        out, _ = model.rnn(x)
        loss2 = tf.reduce_mean(tf.square(model.head(out)[:, 4:] - y[:, 4:]))
    assert np.abs(tape.gradient(loss2, x).numpy()[:, :4]).sum() > 0


def test_tbptt_one_update_per_window_and_state_reset():
    model = Forecaster(units=4)
    opt = keras.optimizers.SGD(0.01)
    x = RNG.normal(size=(2, 10, 1)).astype("float32")
    y = RNG.normal(size=(2, 10, 1)).astype("float32")
    losses, state = tbptt_train_step(model, opt, x, y, 3)
    assert losses.shape == (4,) and int(opt.iterations) == 4
    assert [tuple(s.shape) for s in state] == [(2, 4)]
    losses, _ = tbptt_train_step(model, opt, x, y, 3,
                                 initial_state=model.rnn.get_initial_state(2),
                                 variables=lambda: model.trainable_variables)
    assert int(opt.iterations) == 8


def _sine_batch(rng, batch=16, time=40):
    phase = rng.uniform(0, 2 * np.pi, size=(batch, 1))
    freq = rng.uniform(0.15, 0.3, size=(batch, 1))
    t = np.arange(time + 1)[None, :]
    s = np.sin(freq * t + phase).astype("float32")[..., None]
    return s[:, :-1], s[:, 1:]


def test_tbptt_trains_time_series():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = Forecaster(units=16, kind="gru")
    trainer = TBPTTTrainer(model, keras.optimizers.Adam(0.02), k=10)
    eval_x, eval_y = _sine_batch(rng, batch=32)

    def eval_loss():
        losses, _ = run_windows(model, eval_x, 10, targets=eval_y)
        return float(tf.reduce_mean(losses))

    before = eval_loss()
    for _ in range(40):
        x, y = _sine_batch(rng)
        trainer(x, y)
    after = eval_loss()
    print(f"sine forecaster eval MSE {before:.4f} -> {after:.4f}")
    assert after < before / 5, (before, after)
