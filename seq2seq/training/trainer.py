"""The trainable model: `Seq2Seq` plus what only training needs.

`TrainingSeq2Seq` is the `keras.Model` that `fit` runs. It adds to the serving model (`seq2seq.model.seq2seq.Seq2Seq`,
whose weights it has, variable for variable, so checkpoints load into either):
- the doubly stochastic attention regulariser of Xu et al. (2015, eq. 14), `train.doubly_stochastic`;
- truncated backpropagation through time (Williams & Peng, 1990), `train.tbptt_steps`, in `train_step`;
- the multi-worker fixes: the build from a local batch and logs shaped for `strategy.reduce`
  (`seq2seq.compat`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from pipelines.vocab import PAD_ID
from seq2seq import compat
from seq2seq.model.seq2seq import Seq2Seq, build_model
from seq2seq.training.tbptt import window_loop


def attention_coverage_penalty(attention, target_in):
    """Doubly stochastic attention penalty mean_b Σ_i (1 − Σ_t α_bti)² over real target positions.

    Args:
      attention: float32 [batch, target_time, memory_time] attention weights.
      target_in: int32 [batch, target_time], 0 at padding (excluded from the sums).

    Returns:
      float32 scalar (Xu et al., 2015, sec. 4.2.1).
    """
    real = ops.cast(ops.not_equal(target_in, PAD_ID), attention.dtype)[:, :, None]
    coverage = ops.sum(attention * real, axis=1)
    return ops.mean(ops.sum(ops.square(1.0 - coverage), axis=-1))


@keras.saving.register_keras_serializable(package="seq2seq")
class TrainingSeq2Seq(compat.LocalBatchBuildHook, Seq2Seq):
    """`Seq2Seq` with its training step.

    Args (besides those of `Seq2Seq`):
      doubly_stochastic: float ≥ 0, weight λ of the attention regulariser λ Σ_i (1 − Σ_t α_ti)²
        (Xu et al., 2015, eq. 14); 0 disables it.
      tbptt_steps: int ≥ 1 or None (default): train with truncated BPTT over windows of this many target
        positions, see `train_step`. None trains on the whole target sequence.

    Raises:
      ValueError: `tbptt_steps` < 1, or combined with `doubly_stochastic` (its penalty sums attention over
        the whole target, not per window); and those of `Seq2Seq`.
    """

    def __init__(
        self,
        model_config,
        target_vocab_size,
        source_vocab_size=None,
        inputs_are_features=False,
        doubly_stochastic=0.0,
        tbptt_steps=None,
        **kwargs,
    ):
        if tbptt_steps is not None and (int(tbptt_steps) < 1 or doubly_stochastic > 0):
            raise ValueError(
                f"train.tbptt_steps: got {tbptt_steps}; must be >= 1 and cannot be combined with "
                f"train.doubly_stochastic (got {doubly_stochastic})"
            )
        super().__init__(
            model_config,
            target_vocab_size,
            source_vocab_size=source_vocab_size,
            inputs_are_features=inputs_are_features,
            **kwargs,
        )
        self.doubly_stochastic = float(doubly_stochastic)
        self.tbptt_steps = None if tbptt_steps is None else int(tbptt_steps)

    def call(self, inputs, training=None, return_attention=False):
        logits, attention = super().call(inputs, training=training, return_attention=True)
        if self.doubly_stochastic > 0 and training:
            self.add_loss(self.doubly_stochastic * attention_coverage_penalty(attention, inputs[1]))
        return (logits, attention) if return_attention else logits

    def train_step(self, data):
        """One `fit` batch (see `_window_train_step`), its logs shaped for the strategy's reduction."""
        logs = self._window_train_step(data) if self.tbptt_steps else super().train_step(data)
        return _logs_for_reduction(logs)

    def test_step(self, data):
        """One validation batch (Keras' own `test_step`), its logs shaped for the strategy's reduction."""
        return _logs_for_reduction(super().test_step(data))

    def _window_train_step(self, data):
        """One `fit` batch with truncated BPTT over windows of k = `tbptt_steps` target positions.

        The target is cut into windows of k positions. For each window, under its own gradient tape, the
        encoder and the attention keys are computed from the source, the decoder runs over the window from
        the previous window's final state (`tf.stop_gradient`: no gradient crosses a window boundary; the
        first window starts from the bridge, so the state is reset between batches), the masked loss of the
        window is differentiated and the optimizer takes one step. A batch of target length T therefore
        makes ceil(T / k) updates (`optimizer.iterations` counts them). Re-running the encoder in every
        window lets each window's loss train the encoder with the current parameters. The reported loss is
        the mean over windows weighted by their real (non-padding) target tokens; metrics use the
        concatenated window logits.

        Args:
          data: ((source, target_in int32 [batch, T]), target_out int32 [batch, T]).

        Returns:
          dict of metric results, as `keras.Model.train_step`.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("train.tbptt_steps does not support sample weights")
        source, target_in = x
        target_in = tf.convert_to_tensor(target_in)
        y = tf.convert_to_tensor(y)
        loss_metric = next(m for m in self.metrics if m.name == "loss")
        batch = tf.shape(target_in)[0]
        dtype = self.decoder.compute_dtype
        start_state = self.decoder.initial_state([tf.zeros((batch, n), dtype) for n in self.decoder.state_sizes])

        def window_step(start, stop, carried):
            with tf.GradientTape() as tape:
                first_state, constants = self.encode(source, training=True)
                state = tf.nest.map_structure(
                    lambda new, old: tf.where(start == 0, new, tf.cast(old, new.dtype)), first_state, carried
                )
                logits, _, final = self.decoder(
                    target_in[:, start:stop], constants, state, training=True, return_state=True
                )
                y_window = y[:, start:stop]
                loss = self.compute_loss(x=x, y=y_window, y_pred=logits, training=True)
                scaled = self.optimizer.scale_loss(loss)
            variables = self.trainable_weights
            self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
            loss_metric.update_state(loss, sample_weight=tf.math.count_nonzero(y_window != PAD_ID, dtype=tf.float32))
            return loss, final, logits

        _, _, logits = window_loop(window_step, tf.shape(target_in)[1], self.tbptt_steps, start_state)
        return self.compute_metrics(x, y, logits, sample_weight=None)

    def get_config(self):
        return {**super().get_config(), "doubly_stochastic": self.doubly_stochastic, "tbptt_steps": self.tbptt_steps}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _logs_for_reduction(logs: dict) -> dict:
    """Scalar step logs as shape-[1] tensors when several workers train under `MultiWorkerMirroredStrategy`.

    Keras 3 (3.15) reduces each replica's logs with `strategy.reduce("MEAN", value, axis=0)` only in that
    mode, and a scalar has no axis 0 ("Invalid reduction dimension 0"); a [1] value reduces to the scalar
    mean over replicas, which is what the logs would be on one device. Every other strategy gets the logs
    unchanged. Called in replica context (inside `train_step` / `test_step`).
    """
    if not compat.in_multi_worker_mode(tf.distribute.get_strategy()):
        return logs
    return {
        name: tf.reshape(value, [1]) if tf.is_tensor(value) and value.shape.rank == 0 else value
        for name, value in logs.items()
    }


def build_trainable_model(config, source_vocab_size, target_vocab_size, inputs_are_features=False) -> TrainingSeq2Seq:
    """`seq2seq.model.seq2seq.build_model` of a `TrainingSeq2Seq`, with `train.doubly_stochastic` and
    `train.tbptt_steps`.
    """
    return build_model(
        config,
        source_vocab_size,
        target_vocab_size,
        inputs_are_features=inputs_are_features,
        model_class=TrainingSeq2Seq,
        doubly_stochastic=config.train.doubly_stochastic,
        tbptt_steps=config.train.tbptt_steps,
    )
