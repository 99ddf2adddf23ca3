"""Truncated backpropagation through time (TBPTT).

Williams & Peng 1990, "An efficient gradient-based algorithm for on-line
training of recurrent network trajectories": a long sequence is cut into
windows of ``k`` time steps; the recurrent state is carried from one window to
the next *as a constant* (``tf.stop_gradient``), so gradients never cross a
window boundary, and the parameters are updated after every window.

The mechanics here are generic over a user callable::

    model_step(window, state) -> (loss, new_state)

where ``window`` is the slice of ``inputs`` (any nested structure of
``[batch, time, ...]`` tensors) for one window — or ``(inputs_window,
targets_window)`` when ``targets`` is given — ``state`` is any nested
structure of tensors (or ``None`` for "start from zeros", which the callable
must handle, e.g. ``StackedRNN(..., initial_state=None)``), ``loss`` a scalar
float32 tensor and ``new_state`` a structure of tensors.
"""

from __future__ import annotations

import tensorflow as tf


def _time_length(tensor):
    time = tensor.shape[1] if tensor.shape.rank and tensor.shape.rank >= 2 \
        else None
    if time is None:
        if not tf.executing_eagerly():
            raise ValueError(
                "split_windows needs a static time dimension inside "
                "tf.function (got shape "
                f"{tensor.shape}); call it eagerly or fix the shape.")
        time = int(tf.shape(tensor)[1])
    return int(time)


def split_windows(tensor, k):
    """Cut ``tensor [batch, time, ...]`` into windows of ``k`` time steps.

    Args:
        tensor: a tensor (or array) of rank >= 2, time on axis 1.
        k: positive int, window length.

    Returns:
        list of ``ceil(time / k)`` tensors ``[batch, k, ...]``; the last one
        is shorter when ``k`` does not divide ``time``. Concatenating them on
        axis 1 gives back ``tensor``.

    Raises:
        ValueError: ``k <= 0``, rank < 2, or unknown time length in graph
            mode.
    """
    k = int(k)
    if k <= 0:
        raise ValueError(f"window length k must be positive, got {k}.")
    tensor = tf.convert_to_tensor(tensor)
    if tensor.shape.rank is not None and tensor.shape.rank < 2:
        raise ValueError(
            f"split_windows expects [batch, time, ...], got shape "
            f"{tensor.shape}.")
    time = _time_length(tensor)
    return [tensor[:, start:start + k] for start in range(0, time, k)]


def _windows(inputs, targets, k):
    """List of per-window structures (``inputs`` or ``(inputs, targets)``)."""
    structure = inputs if targets is None else (inputs, targets)
    flat = tf.nest.flatten(structure)
    if not flat:
        raise ValueError("inputs is empty.")
    split = [split_windows(t, k) for t in flat]
    counts = {len(s) for s in split}
    if len(counts) != 1:
        raise ValueError(
            "all inputs/targets must have the same time length; got window "
            f"counts {sorted(counts)} for k={k}.")
    return [tf.nest.pack_sequence_as(structure, [s[w] for s in split])
            for w in range(counts.pop())]


def _stop(state):
    return None if state is None else tf.nest.map_structure(
        tf.stop_gradient, state)


def run_windows(model_step, inputs, k, initial_state=None, targets=None):
    """Forward pass window by window, without parameter updates.

    The state handed to window ``w + 1`` is ``tf.stop_gradient`` of the state
    returned by window ``w``; the forward values therefore equal a full
    unroll, while no gradient flows across a boundary.

    Args:
        model_step: callable ``(window, state) -> (loss, new_state)``.
        inputs: nested structure of ``[batch, time, ...]`` tensors.
        k: positive int, window length.
        initial_state: state for the first window (or None).
        targets: optional nested structure of ``[batch, time, ...]`` tensors;
            when given, windows are ``(inputs_window, targets_window)``.

    Returns:
        ``(losses, final_state)``: a Python list of scalar losses (one per
        window) and the state after the last window (not stopped).
    """
    state = initial_state
    losses = []
    for window in _windows(inputs, targets, k):
        loss, state = model_step(window, _stop(state))
        losses.append(loss)
    return losses, state


def _resolve_variables(model_step, variables):
    if variables is None:
        variables = getattr(model_step, "trainable_variables", None)
        if variables is None:
            raise ValueError(
                "tbptt: pass `variables` (a list or a zero-argument callable) "
                "when model_step has no `trainable_variables` attribute.")
    if callable(variables):
        variables = variables()
    variables = list(variables)
    if not variables:
        raise ValueError("tbptt: no trainable variables to update.")
    return variables


def _update(model_step, optimizer, window, state, variables):
    with tf.GradientTape() as tape:
        loss, new_state = model_step(window, state)
    var_list = _resolve_variables(model_step, variables)
    grads = tape.gradient(loss, var_list)
    pairs = [(g, v) for g, v in zip(grads, var_list) if g is not None]
    if not pairs:
        raise ValueError("tbptt: the loss has no gradient w.r.t. any "
                         "variable.")
    optimizer.apply_gradients(pairs)
    return loss, new_state


def tbptt_train_step(model_step, optimizer, inputs, targets, k,
                     initial_state=None, variables=None):
    """One batch of truncated BPTT: one optimizer update per window.

    The state starts from ``initial_state`` for every batch (pass zeros or
    None — state is *reset between batches*), is carried from window to
    window through ``tf.stop_gradient``, and each window's loss is
    differentiated only w.r.t. the parameters through the ``k`` steps of that
    window (Williams & Peng 1990, TBPTT(k, k)).

    Args:
        model_step: callable ``(window, state) -> (loss, new_state)``; with
            ``targets`` not None, ``window = (inputs_window,
            targets_window)``, otherwise ``window = inputs_window``.
        optimizer: a ``keras.optimizers.Optimizer``.
        inputs: nested structure of ``[batch, time, ...]`` tensors.
        targets: nested structure of ``[batch, time, ...]`` tensors or None.
        k: positive int, window length (the last window may be shorter).
        initial_state: nested structure of ``[batch, ...]`` tensors or None.
        variables: list of variables to train, or a zero-argument callable
            returning it (evaluated after the first forward pass, so lazily
            built layers work); default ``model_step.trainable_variables``.

    Returns:
        ``(losses, final_state)``: float32 ``[num_windows]`` tensor of the
        per-window losses (each computed before its own update) and the
        state after the last window, gradient-stopped.

    Raises:
        ValueError: bad ``k``, mismatched time lengths, no variables or no
            gradient.
    """
    state = initial_state
    losses = []
    for window in _windows(inputs, targets, k):
        loss, state = _update(model_step, optimizer, window, _stop(state),
                              variables)
        losses.append(loss)
    return tf.stack(losses), _stop(state)


class TBPTTTrainer:
    """Reusable TBPTT driver whose per-window update is a ``tf.function``.

    Same semantics as :func:`tbptt_train_step`; the window update is traced
    once per window shape (``reduce_retracing=True``), so a fixed ``k`` gives
    at most two traces (full windows and the shorter last one).

    Args:
        model_step, optimizer, k, variables: as in :func:`tbptt_train_step`.
        jit_compile: passed to ``tf.function`` (default False).

    Call:
        ``trainer(inputs, targets=None, initial_state=None)`` ->
        ``(losses float32 [num_windows], final_state)``.
    """

    def __init__(self, model_step, optimizer, k, variables=None,
                 jit_compile=False):
        if int(k) <= 0:
            raise ValueError(f"window length k must be positive, got {k}.")
        self.model_step = model_step
        self.optimizer = optimizer
        self.k = int(k)
        self.variables = variables
        self._update = tf.function(self._window_update,
                                   reduce_retracing=True,
                                   jit_compile=jit_compile)
        self._warm = False

    def _window_update(self, window, state):
        return _update(self.model_step, self.optimizer, window, state,
                       self.variables)

    def __call__(self, inputs, targets=None, initial_state=None):
        state = initial_state
        losses = []
        for window in _windows(inputs, targets, self.k):
            if self._warm:
                loss, state = self._update(window, _stop(state))
            else:
                # The first window runs eagerly so that lazily built layers
                # and optimizer slots are created outside tf.function.
                loss, state = _update(self.model_step, self.optimizer,
                                      window, _stop(state), self.variables)
                self._warm = True
            losses.append(loss)
        return tf.stack(losses), _stop(state)


def _swap_first_axes(tensor, rank):
    return tf.transpose(tensor, [1, 0] + list(range(2, rank)))


def window_loop(window_step, time, k, initial_state, output_dtype=tf.float32):
    """Truncated BPTT over a time length known only at run time (works inside ``tf.function``).

    The graph-mode counterpart of :func:`run_windows`: a ``tf.while_loop`` over the
    ``ceil(time / k)`` windows ``[start, stop)``; the state handed to each window is
    ``tf.stop_gradient`` of the previous window's final state, so no gradient crosses a boundary.
    ``window_step`` may apply its own optimizer update (one per window, as in
    :func:`tbptt_train_step`); it is what ``seq2seq.models.Seq2Seq.train_step`` uses inside
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
        return (w + 1, _stop(new_state), losses.write(w, tf.cast(loss, tf.float32)),
                outputs.write(w, _swap_first_axes(tf.cast(out, output_dtype), rank[0])))

    _, state, losses, outputs = tf.while_loop(
        lambda w, *_: w < count, body, (tf.constant(0), _stop(initial_state), losses, outputs))
    return losses.stack(), state, _swap_first_axes(outputs.concat(), rank[0])
