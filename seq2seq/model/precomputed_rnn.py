"""GRU and LSTM layers that project the whole input sequence before the recurrence (CPU speed-up).

A recurrent layer computes, at every time step t, ``x_t · W`` (input projection) and ``h_{t-1} · U``
(recurrent projection). Only the second depends on the previous step. Keras' GRU/LSTM run both inside the
per-step loop when cuDNN is not available (on CPU), as ``batch × input`` by ``input × gates·units`` products
that are too small to keep the matrix units busy. These layers compute ``X · W + b`` for every time step at
once — one ``[batch·time, input] × [input, gates·units]`` product, and one in the backward pass — and
leave only ``h_{t-1} · U`` in the loop. This is the "pre-computed input GEMM" of cuDNN's RNN kernels
(Appleyard, Kočiský & Blunsom 2016, "Optimizing Performance of Recurrent Neural Networks on GPUs",
arXiv:1604.01946).

The layers are drop-in subclasses of ``keras.layers.GRU`` / ``keras.layers.LSTM``: same constructor, same
weights (``kernel``, ``recurrent_kernel``, ``bias`` of the same cell, same shapes and gate order), same
outputs up to float rounding, same masking (masked steps keep the state; outputs there are zeros with
``zero_output_for_mask``) and same input dropout (one mask per sequence, as the stock layers draw it).
They fall back to the stock implementation — cuDNN where Keras can use it — whenever:

* TensorFlow sees a GPU (Keras' cuDNN kernel already pre-computes the input projection);
* ``recurrent_dropout > 0`` (the per-step recurrent mask lives in the cell);
* a GRU uses ``reset_after=False`` (the reset gate multiplies the state *before* its projection).

They run on ``keras.src.backend.rnn``, the loop Keras' own layers use, reached through `seq2seq.compat`.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from seq2seq import compat


def _gpu_visible() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def gru_step_from_projection(cell, x_proj, h_prev):
    """One step of a ``reset_after`` `keras.layers.GRUCell` whose input projection is already done.

    Args:
      cell: a built ``keras.layers.GRUCell`` with ``reset_after=True`` and no recurrent dropout.
      x_proj: float ``[batch, 3·units]``, ``x @ cell.kernel + cell.bias[0]`` (gate order z, r, h).
      h_prev: float ``[batch, units]``, the previous state.

    Returns:
      float ``[batch, units]``, the new state (equal to the cell's own result on ``x``).
    """
    # Explicit casts: this may run outside the cell's autocast scope (mixed precision).
    inner = ops.matmul(h_prev, ops.cast(cell.recurrent_kernel, h_prev.dtype))
    if cell.use_bias:
        inner = inner + ops.cast(cell.bias[1], h_prev.dtype)
    x_z, x_r, x_h = ops.split(x_proj, 3, axis=-1)
    inner_z, inner_r, inner_h = ops.split(inner, 3, axis=-1)
    z = cell.recurrent_activation(x_z + inner_z)
    r = cell.recurrent_activation(x_r + inner_r)
    candidate = cell.activation(x_h + r * inner_h)
    return z * h_prev + (1.0 - z) * candidate


def project_gru_input(cell, inputs):
    """``inputs @ cell.kernel + cell.bias[0]`` for a ``reset_after`` GRUCell: float ``[..., 3·units]``."""
    projected = ops.matmul(inputs, ops.cast(cell.kernel, inputs.dtype))
    return projected + ops.cast(cell.bias[0], inputs.dtype) if cell.use_bias else projected


class _PrecomputedInputMixin(compat.InnerLoopHook):
    """Shared ``inner_loop`` of :class:`PrecomputedInputGRU` and :class:`PrecomputedInputLSTM`.

    Subclasses provide ``_input_bias()`` (float ``[gates·units]`` or None), ``_recurrent_step(x_proj_t,
    states) -> (output, new_states)`` and may extend ``_precompute_applies()``.
    """

    def _precompute_applies(self) -> bool:
        return not self.cell.recurrent_dropout and not _gpu_visible()

    def precomputed_inner_loop(self, sequences, initial_state, mask, training=False):
        """The recurrence over `sequences` with their input projection done first (NotImplemented: stock)."""
        if not self._precompute_applies():
            return NotImplemented
        if training and self.cell.dropout:
            # The mask `RNN.call` drew for this sequence (cached on the cell): the same one at every step.
            dropout_mask = self.cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * ops.expand_dims(dropout_mask, axis=1)
        projected = ops.matmul(sequences, self.cell.kernel)  # [batch, time, gates·units]
        bias = self._input_bias()
        if bias is not None:
            projected = projected + bias
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        return compat.rnn_loop(
            self._recurrent_step,
            projected,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )


@keras.saving.register_keras_serializable(package="seq2seq")
class PrecomputedInputGRU(_PrecomputedInputMixin, keras.layers.GRU):
    """``keras.layers.GRU`` with the input projection of all time steps computed before the loop.

    Same arguments, weights, call signature and results as ``keras.layers.GRU`` (Cho et al. 2014;
    ``reset_after=True`` is the cuDNN variant): inputs float ``[batch, time, input_dim]``, optional bool
    mask ``[batch, time]``, states float ``[batch, units]``. See the module docstring for when it falls
    back to the stock loop.
    """

    def _precompute_applies(self) -> bool:
        return self.cell.reset_after and super()._precompute_applies()

    def _input_bias(self):
        return self.cell.bias[0] if self.cell.use_bias else None

    def _recurrent_step(self, x_proj, states):
        h = gru_step_from_projection(self.cell, x_proj, states[0])
        return h, [h]


@keras.saving.register_keras_serializable(package="seq2seq")
class PrecomputedInputLSTM(_PrecomputedInputMixin, keras.layers.LSTM):
    """``keras.layers.LSTM`` with the input projection of all time steps computed before the loop.

    Same arguments, weights (gate order i, f, c, o), call signature and results as ``keras.layers.LSTM``
    (Hochreiter & Schmidhuber 1997, with forget gate): inputs float ``[batch, time, input_dim]``, optional
    bool mask ``[batch, time]``, states ``[h, c]`` float ``[batch, units]`` each. See the module docstring
    for when it falls back to the stock loop.
    """

    def _input_bias(self):
        return self.cell.bias if self.cell.use_bias else None

    def _recurrent_step(self, x_proj, states):
        cell = self.cell
        h_prev, c_prev = states
        z = x_proj + ops.matmul(h_prev, cell.recurrent_kernel)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        c = cell.recurrent_activation(z_f) * c_prev + cell.recurrent_activation(z_i) * cell.activation(z_c)
        h = cell.recurrent_activation(z_o) * cell.activation(c)
        return h, [h, c]
