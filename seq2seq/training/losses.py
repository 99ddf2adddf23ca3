"""Masked token-level loss and accuracy for teacher-forced decoders (padding never counts).

Kept apart from the training loop so that loading a saved `model.keras` (which names them) needs only
`seq2seq.model.seq2seq`, which imports this module.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from pipelines.vocab import PAD_ID


# --------------------------------------------------------------------------------------------------
def _global_count(count):
    """`count` summed over the replicas of the current `tf.distribute` replica context (itself outside one)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return count
    return context.all_reduce(tf.distribute.ReduceOp.SUM, count)


@keras.saving.register_keras_serializable(package="seq2seq")
class MaskedCrossEntropy(keras.losses.Loss):
    """Token-level cross-entropy averaged over real (non-padding) target positions.

    With label smoothing ε the target distribution is (1 − ε) on the true token plus ε/V spread over the
    vocabulary (Szegedy et al., 2016). Padding positions (`y_true == 0`) contribute nothing, whatever the
    logits there.

    Call:
      y_true: int32 [batch, time], target ids, 0 at padding.
      y_pred: float [batch, time, vocab] logits.

    Returns:
      float32 scalar: sum of token losses / number of real tokens (0 for an all-padding batch). Under a
      `tf.distribute` strategy with several replicas the divisor is the number of real tokens of the whole
      global batch (summed over replicas), so the replicas' losses add up to the global token mean: Keras
      sums their gradients, and its loss tracker (which multiplies by the replica count and averages)
      reports that global mean — the same numbers as one device on the same global batch.
    """

    def __init__(self, label_smoothing=0.0, name="masked_cross_entropy", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, "float32")
        # TensorFlow's fused softmax cross-entropy kernels compute the loss and its gradient in one pass over
        # the logits (about twice as fast as log_softmax + gather, whose gradient is a scatter).
        if self.label_smoothing > 0:
            vocab = tf.shape(logits)[-1]
            off = self.label_smoothing / tf.cast(vocab, tf.float32)
            smoothed = tf.one_hot(y_true, vocab, on_value=1.0 - self.label_smoothing + off, off_value=off)
            token_loss = ops.categorical_crossentropy(smoothed, logits, from_logits=True)
        else:
            token_loss = ops.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        return ops.sum(token_loss * mask) / ops.maximum(_global_count(ops.sum(mask)), 1.0)

    def get_config(self):
        return {"name": self.name, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="seq2seq")
class MaskedAccuracy(keras.metrics.Metric):
    """Fraction of real (non-padding) target positions whose arg-max prediction is the true token.

    Call: y_true int [batch, time] (0 at padding), y_pred float [batch, time, vocab] logits. A position
    where the true token ties for the highest logit counts as correct.
    """

    def __init__(self, name="masked_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        # `in_top_k` with k = 1 is a single fast pass (several times faster than an arg-max over the vocabulary);
        # it differs only by counting a tie for the highest logit as a hit.
        vocab = tf.shape(y_pred)[-1]
        hit = tf.math.in_top_k(tf.reshape(y_true, [-1]), tf.reshape(tf.cast(y_pred, tf.float32), [-1, vocab]), k=1)
        hit = tf.reshape(tf.cast(hit, tf.float32), tf.shape(y_true))
        self.correct.assign_add(ops.sum(hit * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)
