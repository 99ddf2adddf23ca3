"""FusedAdam: Keras' Adam applied by TensorFlow's fused ResourceApplyAdam kernel — same results."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq.training.optimizers import FusedAdam


def train(optimizer_cls, steps=6, clipnorm=0.5):
    """A few steps of a small GRU classifier (dense gradients); returns the model, weights and slots."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GRU(8)(inputs)))
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 50, warmup_target=0.05, warmup_steps=2)
    optimizer = optimizer_cls(learning_rate=schedule, global_clipnorm=clipnorm)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(
        rng.normal(size=(24, 5, 4)), rng.integers(0, 3, (24,)), batch_size=8, epochs=steps, verbose=0, shuffle=False
    )
    return model, [v.numpy() for v in model.weights], [v.numpy() for v in optimizer.variables]


@pytest.mark.parametrize("clipnorm", [None, 0.05])
def test_same_weights_and_slots_as_keras_adam(clipnorm, monkeypatch):
    fused_calls = []
    original = tf.raw_ops.ResourceApplyAdam
    monkeypatch.setattr(tf.raw_ops, "ResourceApplyAdam", lambda **kw: fused_calls.append(1) or original(**kw))
    _, initial, _ = train(keras.optimizers.Adam, steps=0)
    _, stock_weights, stock_slots = train(keras.optimizers.Adam, clipnorm=clipnorm)
    assert not fused_calls
    model, fused_weights, fused_slots = train(FusedAdam, clipnorm=clipnorm)
    assert fused_calls, "the fused kernel was not used"
    assert int(model.optimizer.iterations) == 18 and len(stock_slots) == len(fused_slots)
    for a, b in zip(stock_weights + stock_slots, fused_weights + fused_slots):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=5e-5)
    assert max(float(np.abs(a - b).max()) for a, b in zip(initial, fused_weights)) > 1e-2  # it trained


def test_sparse_gradient_is_the_dense_adam_update():
    """An embedding's IndexedSlices gradient (row 0 twice) updates like its dense sum, every row's moments
    decaying (Kingma & Ba's algorithm on the true gradient, as tf.keras 2 and PyTorch do).
    """
    sparse = tf.IndexedSlices(tf.constant([[3.0, 4.0], [1.0, 1.0]]), tf.constant([0, 0]), tf.constant([3, 2]))
    results = []
    for optimizer, gradient in ((FusedAdam(0.1), sparse), (keras.optimizers.Adam(0.1), tf.convert_to_tensor(sparse))):
        variable = keras.Variable(np.ones((3, 2), "float32"))
        optimizer.build([variable])
        for _ in range(3):
            optimizer.apply_gradients([(gradient, variable)])
        results.append([variable.numpy()] + [v.numpy() for v in optimizer.variables[2:]])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4)
    np.testing.assert_allclose(results[0][1][0], (1 - 0.9**3) * np.array([4.0, 5.0]), rtol=1e-5)  # first moment


def test_clipping_scales_by_the_dense_global_norm():
    optimizer = FusedAdam(learning_rate=0.1, global_clipnorm=1.0)
    # Row 0 appears twice: its dense gradient is [6, 8] (norm 10), not two rows of norm 5 each.
    sparse = tf.IndexedSlices(tf.constant([[3.0, 4.0], [3.0, 4.0]]), tf.constant([0, 0]), tf.constant([2, 2]))
    dense = tf.constant([0.0, 0.0])
    clipped = optimizer._clip_gradients([sparse, dense, None])
    np.testing.assert_allclose(clipped[0].numpy(), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert clipped[2] is None
    nan = optimizer._clip_gradients([tf.constant([np.nan, 1.0])])
    assert np.isnan(nan[0].numpy()).all()


def test_compiled_model_round_trips_through_keras_file(tmp_path):
    model, weights, _ = train(FusedAdam, steps=1)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, FusedAdam)
    assert loaded.optimizer.global_clipnorm == pytest.approx(0.5)
    for a, b in zip(weights, loaded.weights):
        np.testing.assert_array_equal(a, b.numpy())
