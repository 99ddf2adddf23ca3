"""Adam whose per-variable update is TensorFlow's fused `ResourceApplyAdam` kernel.

Keras' Adam updates each variable with about ten separate element-wise operations (subtract, multiply,
square, assign-add twice, sqrt, add, divide, multiply, assign-sub), each a full pass over the variable and
its two moment slots. TensorFlow's `ResourceApplyAdam` kernel does the same update in one pass. For the
Multi30k model (≈ 9 M parameters) that is a measurable share of a CPU training step.

Kept apart from the training loop so that loading a compiled `model.keras` (which names the optimizer)
needs only `seq2seq.model.seq2seq`, which imports this module.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from seq2seq import compat


@keras.saving.register_keras_serializable(package="seq2seq")
class FusedAdam(compat.ClipGradientsHook, keras.optimizers.Adam):
    """`keras.optimizers.Adam` (Kingma & Ba, 2015, Algorithm 1 with the "epsilon hat" of section 2) applied
    by `tf.raw_ops.ResourceApplyAdam`.

    Same arguments, slot variables, checkpoints and, for dense gradients, results as `keras.optimizers.Adam`
    (up to float rounding): m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², θ ← θ − α_t·m / (√v + ε) with
    α_t = lr·√(1 − β2^t) / (1 − β1^t). Loss scaling and learning-rate schedules are handled by Keras, as
    for the stock class; `global_clipnorm` clipping by `tf.clip_by_global_norm` (the same result for
    dense gradients; the norm of a sparse one is that of its dense sum, see below).

    Sparse gradients (`tf.IndexedSlices`, from embedding lookups) are summed into a dense gradient first,
    so an embedding gets the paper's update on its true gradient — every row's moments decay at every step
    (as in tf.keras 2 and PyTorch). Keras 3's own Adam differs there: it squares each repeated row's
    contributions separately (Σg² rather than (Σg)²) in the second moment.

    The fused kernel is used for float32 variables outside a `tf.distribute` strategy; with `amsgrad`, under
    a strategy (mirrored and multi-worker variables), or for other dtypes, the stock Keras update runs.
    """

    def clip_gradients(self, grads):
        """Gradients clipped by `global_clipnorm` (`tf.clip_by_global_norm`); None when no clipping is set."""
        if not (self.global_clipnorm and self.global_clipnorm > 0):
            return None
        # `tf.clip_by_global_norm` sums squares with one fused `L2Loss` reduction per tensor (Keras squares
        # each gradient into a temporary first): the same scale, min(1, clip_norm / global norm), and the same
        # NaN result for a non-finite norm. Sparse (IndexedSlices) gradients are densified first, so that a
        # row repeated in them counts once, as its sum (Keras' norm squares each repeated part separately).
        dense = [None if g is None else tf.convert_to_tensor(g) for g in grads]
        clipped, _ = tf.clip_by_global_norm(dense, self.global_clipnorm)
        return clipped

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.amsgrad
            or tf.distribute.has_strategy()
            or not hasattr(variable, "handle")
            or variable.dtype != tf.float32
        ):
            return super().update_step(gradient, variable, learning_rate)
        gradient = tf.convert_to_tensor(gradient, dtype=tf.float32)  # densifies an IndexedSlices gradient
        step = tf.cast(self.iterations + 1, tf.float32)
        slots = compat.adam_slots(self, variable)
        if slots is None:
            return super().update_step(gradient, variable, learning_rate)
        momentum, velocity = slots
        beta_1, beta_2 = tf.constant(self.beta_1, tf.float32), tf.constant(self.beta_2, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=momentum.value.handle,
            v=velocity.value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, tf.float32),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.constant(self.epsilon, tf.float32),
            grad=gradient,
            use_locking=False,
        )
