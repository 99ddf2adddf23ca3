"""Truncated backpropagation through time (TBPTT).

Williams & Peng 1990, "An efficient gradient-based algorithm for on-line
training of recurrent network trajectories": a long sequence is cut into
windows of ``k`` time steps; the recurrent state is carried from one window to
the next *as a constant* (``tf.stop_gradient``), so gradients never cross a
window boundary, and the parameters are updated after every window.

One function, `window_loop`, serves every user: the seq2seq training step
(`seq2seq.training.trainer.TrainingSeq2Seq`, `train.tbptt_steps`) and any other
recurrent model, e.g. the time-series forecaster of docs/sequence_modes.md,
through a callable ``window_step(start, stop, state) -> (loss, new_state,
outputs)`` that may apply an optimizer update per window.
"""

from __future__ import annotations

import tensorflow as tf


def _stop(state):
    return None if state is None else tf.nest.map_structure(tf.stop_gradient, state)


def _swap_first_axes(tensor, rank):
    return tf.transpose(tensor, [1, 0] + list(range(2, rank)))


def window_loop(window_step, time, k, initial_state, output_dtype=tf.float32):
    """Truncated BPTT over a time length known only at run time (works inside ``tf.function``).

    A ``tf.while_loop`` over the
    ``ceil(time / k)`` windows ``[start, stop)``; the state handed to each window is
    ``tf.stop_gradient`` of the previous window's final state, so no gradient crosses a boundary.
    ``window_step`` may apply its own optimizer update (one per window); it is what
    ``seq2seq.training.trainer.TrainingSeq2Seq.train_step`` uses inside
    ``model.fit``, where batches have different lengths.

    Args:
        window_step: callable ``(start, stop, state) -> (loss, new_state, outputs)`` with
            ``start``/``stop`` int32 scalars, ``state`` a nested structure of tensors whose shapes do
            not change from window to window, ``loss`` a float32 scalar and ``outputs`` a tensor
            ``[batch, stop - start, ...]`` (e.g. the window's logits).
        time: int or int32 scalar tensor, the sequence length T (> 0).
        k: positive Python int, window length (the last window may be shorter).
        initial_state: the state handed (gradient-stopped) to the first window.
        output_dtype: dtype of ``outputs`` (default float32).

    Returns:
        ``(losses float32 [ceil(T / k)], final_state (gradient-stopped), outputs [batch, T, ...])``
        where ``outputs`` concatenates the windows' outputs along time.

    Raises:
        ValueError: ``k <= 0``.
    """
    k = int(k)
    if k <= 0:
        raise ValueError(f"window length k must be positive, got {k}.")
    time = tf.cast(time, tf.int32)
    count = (time + k - 1) // k
    losses = tf.TensorArray(tf.float32, size=count)
    outputs = tf.TensorArray(output_dtype, size=count, infer_shape=False)
    rank = []  # the outputs' rank, known once `body` has been traced

    def body(w, state, losses, outputs):
        start = w * k
        loss, new_state, out = window_step(start, tf.minimum(start + k, time), _stop(state))
        rank[:] = [out.shape.rank]
        return (
            w + 1,
            _stop(new_state),
            losses.write(w, tf.cast(loss, tf.float32)),
            outputs.write(w, _swap_first_axes(tf.cast(out, output_dtype), rank[0])),
        )

    _, state, losses, outputs = tf.while_loop(
        lambda w, *_: w < count, body, (tf.constant(0), _stop(initial_state), losses, outputs)
    )
    return losses.stack(), state, _swap_first_axes(outputs.concat(), rank[0])
