"""Recurrent cell registry shared by encoders and decoders.

One place maps a cell *kind* (a string from the configuration) to a Keras RNN
cell, or to the fastest whole-sequence Keras layer for that kind:

============== ====================================== =========================
kind           cell                                   paper
============== ====================================== =========================
``simple``     ``keras.layers.SimpleRNNCell`` (tanh)  Elman 1990
``gru``        ``keras.layers.GRUCell``               Cho et al. 2014
               (``reset_after=True``)
``lstm``       ``keras.layers.LSTMCell``              Hochreiter & Schmidhuber
                                                      1997
``peephole_lstm`` :class:`PeepholeLSTMCell`           Gers & Schmidhuber 2000
============== ====================================== =========================

All cells follow the Keras cell protocol:
``cell(inputs [batch, d], states list[[batch, units]], training=...) ->
(output [batch, units], new_states list)``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
from keras import ops

from seq2seq.errors import ConfigError
from seq2seq.model.precomputed_rnn import PrecomputedInputGRU, PrecomputedInputLSTM
from seq2seq.registry import Registry


@dataclasses.dataclass(frozen=True)
class CellKind:
    """One registered recurrent cell kind.

    Attributes:
      cell: the Keras cell class (one step).
      layer: callable(**cell_args, **sequence_args) -> whole-sequence Keras layer.
      states: number of state tensors (1: h; 2: h, c).
      defaults: constructor defaults that differ from Keras' (e.g. tanh, reset_after).
    """

    cell: type
    layer: Callable
    states: int
    defaults: dict = dataclasses.field(default_factory=dict)


CELLS = Registry("recurrent cell", "model.encoder.cell", "model.decoder.cell")


def _check_kind(kind):
    try:
        CELLS.check(kind)
    except ConfigError as err:
        raise ValueError(
            f"Unknown recurrent cell kind {kind!r}; allowed values are {', '.join(repr(k) for k in CELLS)}."
        ) from err


def state_count(kind: str) -> int:
    """Number of state tensors carried by a cell of this ``kind``.

    Returns 1 for ``simple``/``gru`` (h) and 2 for ``lstm``/``peephole_lstm``
    (h, c — in that order, as Keras does).

    Raises:
        ValueError: unknown ``kind``.
    """
    _check_kind(kind)
    return CELLS.get(kind).states


def make_cell(kind: str, units: int, dropout: float = 0.0, recurrent_dropout: float = 0.0, **kwargs):
    """Create one RNN cell of the given ``kind``.

    Args:
        kind: one of :data:`CELLS`.
        units: positive int, size of the output and of each state.
        dropout: float in [0, 1), dropout on the cell inputs (training only;
            one mask per sequence when driven by ``keras.layers.RNN``).
        recurrent_dropout: float in [0, 1), dropout on the recurrent state.
        **kwargs: forwarded to the cell constructor (initialisers,
            regularisers, ``name``, ``seed`` ...).

    Returns:
        A Keras RNN cell (``state_size``/``output_size`` = ``units``).
        ``simple`` uses tanh; ``gru`` uses ``reset_after=True`` (the
        cuDNN-compatible variant of Cho et al. 2014).

    Raises:
        ValueError: unknown ``kind`` (message lists the allowed values).
    """
    _check_kind(kind)
    spec = CELLS.get(kind)
    args = {**spec.defaults, **kwargs}
    return spec.cell(units=units, dropout=dropout, recurrent_dropout=recurrent_dropout, **args)


def make_rnn_layer(
    kind: str,
    units: int,
    return_sequences: bool = True,
    return_state: bool = True,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    name=None,
    **kwargs,
):
    """Create the fastest whole-sequence Keras layer for a cell ``kind``.

    ``simple`` maps to ``keras.layers.SimpleRNN``; ``gru``/``lstm`` map to
    :class:`~seq2seq.model.precomputed_rnn.PrecomputedInputGRU`
    (``reset_after=True``) / ``PrecomputedInputLSTM``: the Keras layers (cuDNN
    kernels on GPU when the configuration allows it) with, on CPU, the input
    projection of all time steps computed in one product before the
    recurrence; ``peephole_lstm`` maps to
    ``keras.layers.RNN(PeepholeLSTMCell(...))``. Every layer exposes its
    cell as ``layer.cell`` and uses ``zero_output_for_mask=True`` (outputs at
    masked time steps are zeros; states are carried through unchanged).

    Raises:
        ValueError: unknown ``kind``.
    """
    _check_kind(kind)
    spec = CELLS.get(kind)
    sequence_args = dict(
        return_sequences=return_sequences, return_state=return_state, zero_output_for_mask=return_sequences, name=name
    )
    cell_args = dict(units=units, dropout=dropout, recurrent_dropout=recurrent_dropout, **{**spec.defaults, **kwargs})
    return spec.layer(**cell_args, **sequence_args)


@keras.saving.register_keras_serializable(package="seq2seq")
class PeepholeLSTMCell(keras.layers.LSTMCell):
    """LSTM cell with diagonal peephole connections (Gers & Schmidhuber 2000).

    Equations (``x`` input, ``h``/``c`` previous states, ⊙ element-wise)::

        i   = σ(W_i x + U_i h + p_i ⊙ c_{t-1} + b_i)
        f   = σ(W_f x + U_f h + p_f ⊙ c_{t-1} + b_f)
        c_t = f ⊙ c_{t-1} + i ⊙ tanh(W_c x + U_c h + b_c)
        o   = σ(W_o x + U_o h + p_o ⊙ c_t + b_o)
        h_t = o ⊙ tanh(c_t)

    Weight layout is exactly that of ``keras.layers.LSTMCell`` (Hochreiter &
    Schmidhuber 1997): ``kernel [input_dim, 4*units]``, ``recurrent_kernel
    [units, 4*units]``, ``bias [4*units]`` with gate order i, f, c, o and
    ``unit_forget_bias``; plus ``peephole_weights float32 [3, units]`` (rows
    p_i, p_f, p_o). With the peepholes at zero and the same kernels the cell
    computes exactly what ``LSTMCell`` computes.

    Args:
        units: positive int.
        peephole_initializer: initialiser of ``peephole_weights``
            (default ``"glorot_uniform"``, as in ``tf.keras.experimental``'s
            former PeepholeLSTMCell).
        peephole_regularizer / peephole_constraint: optional.
        All other arguments as ``keras.layers.LSTMCell`` (activation,
        recurrent_activation, use_bias, initialisers, regularisers,
        constraints, ``dropout``, ``recurrent_dropout`` and ``seed`` — dropout
        masks are applied exactly as in ``LSTMCell``).

    State: ``[h, c]``, each ``float32 [batch, units]``; output ``h``.
    Works inside ``keras.layers.RNN`` (masking, ``Bidirectional``, stacking)
    and can be called step by step.
    """

    def __init__(
        self,
        units,
        peephole_initializer="glorot_uniform",
        peephole_regularizer=None,
        peephole_constraint=None,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.peephole_initializer = keras.initializers.get(peephole_initializer)
        self.peephole_regularizer = keras.regularizers.get(peephole_regularizer)
        self.peephole_constraint = keras.constraints.get(peephole_constraint)

    def build(self, input_shape):
        super().build(input_shape)
        self.peephole_weights = self.add_weight(
            shape=(3, self.units),
            name="peephole_weights",
            initializer=self.peephole_initializer,
            regularizer=self.peephole_regularizer,
            constraint=self.peephole_constraint,
        )

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        units = self.units

        dropping = training and 0.0 < self.dropout < 1.0
        rec_dropping = training and 0.0 < self.recurrent_dropout < 1.0
        if dropping or rec_dropping or self.implementation == 1:
            # Per-gate masks (LSTMCell implementation 1 semantics).
            dp = self.get_dropout_mask(inputs) if dropping else None
            rdp = self.get_recurrent_dropout_mask(h_tm1) if rec_dropping else None
            k = ops.split(self.kernel, 4, axis=1)
            z = []
            for g in range(4):
                xg = inputs
                if dp is not None:
                    xg = xg * (dp[g] if isinstance(dp, (list, tuple)) else dp)
                hg = h_tm1
                if rdp is not None:
                    hg = hg * (rdp[g] if isinstance(rdp, (list, tuple)) else rdp)
                zg = ops.matmul(xg, k[g]) + ops.matmul(hg, self.recurrent_kernel[:, g * units : (g + 1) * units])
                z.append(zg)
            z = ops.concatenate(z, axis=-1)
        else:
            z = ops.matmul(inputs, self.kernel)
            z = ops.add(z, ops.matmul(h_tm1, self.recurrent_kernel))
        if self.use_bias:
            z = ops.add(z, self.bias)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=1)

        p = self.peephole_weights
        i = self.recurrent_activation(z_i + p[0] * c_tm1)
        f = self.recurrent_activation(z_f + p[1] * c_tm1)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o + p[2] * c)
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
                "peephole_regularizer": keras.regularizers.serialize(self.peephole_regularizer),
                "peephole_constraint": keras.constraints.serialize(self.peephole_constraint),
            }
        )
        return config


def _rnn_of(cell_class: type) -> Callable:
    """A whole-sequence layer factory: `keras.layers.RNN` over `cell_class`."""

    def layer(return_sequences, return_state, zero_output_for_mask, name, **cell_args):
        return keras.layers.RNN(
            cell_class(**cell_args),
            return_sequences=return_sequences,
            return_state=return_state,
            zero_output_for_mask=zero_output_for_mask,
            name=name,
        )

    return layer


CELLS.register("simple", CellKind(keras.layers.SimpleRNNCell, keras.layers.SimpleRNN, 1, {"activation": "tanh"}))
CELLS.register("gru", CellKind(keras.layers.GRUCell, PrecomputedInputGRU, 1, {"reset_after": True}))
CELLS.register("lstm", CellKind(keras.layers.LSTMCell, PrecomputedInputLSTM, 2))
CELLS.register("peephole_lstm", CellKind(PeepholeLSTMCell, _rnn_of(PeepholeLSTMCell), 2))
