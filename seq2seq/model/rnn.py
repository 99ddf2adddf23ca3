"""Stacked (optionally bidirectional, residual) recurrent layers.

:class:`StackedRNN` is the recurrent core of the encoders and decoders. Each
layer is the fastest Keras whole-sequence layer for its cell kind
(``PrecomputedInputGRU`` / ``PrecomputedInputLSTM`` / ``keras.layers.SimpleRNN`` — cuDNN on GPU when the
configuration allows it — or ``keras.layers.RNN(PeepholeLSTMCell)``), see
:func:`seq2seq.model.cells.make_rnn_layer`.

References: Hochreiter & Schmidhuber 1997 (LSTM), Cho et al. 2014 (GRU),
Gers & Schmidhuber 2000 (peepholes), Schuster & Paliwal 1997 (bidirectional
RNNs), He et al. 2016 / Wu et al. 2016 (residual connections between stacked
recurrent layers, GNMT).
"""

from __future__ import annotations

import keras
from keras import ops

from seq2seq.model.cells import make_rnn_layer, state_count

_MERGE_MODES = ("concat", "sum")
# Base keras.layers.Layer arguments (they appear in Layer.get_config()).
_LAYER_KWARGS = ("activity_regularizer", "autocast", "input_shape", "input_dim", "batch_input_shape", "batch_size")


@keras.saving.register_keras_serializable(package="seq2seq")
class StackedRNN(keras.layers.Layer):
    """A stack of recurrent layers returning outputs and a flat list of states.

    Args:
        kind: cell kind, a name in ``seq2seq.model.cells.CELLS``
            (``"simple"``, ``"gru"``, ``"lstm"``, ``"peephole_lstm"``).
        units: positive int, units per layer and per direction.
        num_layers: positive int (default 1).
        dropout: float in [0, 1) (default 0.0), dropout applied to the input
            of every layer except the first (i.e. *between* layers, never
            after the last one). Training only.
        residual: bool (default False). From the second layer on, the layer
            output becomes ``x + f(x)`` where ``x`` is that layer's (dropped
            out) input. Because every layer from the second on receives the
            previous layer's output, input and output sizes always match
            there; the first layer never gets a residual connection (its
            input is the embedding, of a different size in general).
        bidirectional: bool (default False). Wrap every layer in
            ``keras.layers.Bidirectional`` (Schuster & Paliwal 1997).
        merge_mode: ``"concat"`` (output size ``2 * units``) or ``"sum"``
            (output size ``units``); only used when ``bidirectional``.
        **cell_kwargs: forwarded to each layer/cell (e.g.
            ``recurrent_dropout``, initialisers, regularisers).

    Call:
        ``layer(inputs, mask=None, initial_state=None, training=None)``

        - ``inputs`` float32 ``[batch, time, d]``;
        - ``mask`` bool ``[batch, time]`` (True = real step) or None; also
          taken from a Keras mask attached to ``inputs``. Masked steps keep
          the state unchanged and emit zero outputs (before the residual
          addition), so the final states of right-padded sequences equal
          those of the unpadded sequences;
        - ``initial_state``: None (zeros) or a flat list in the order of
          ``final_states``.

        Returns ``(outputs, final_states)``: ``outputs float32 [batch, time,
        output_units]`` and ``final_states`` a flat Python list of float32
        ``[batch, units]`` tensors ordered by layer, then direction
        (forward, backward), then the cell's state order (``h`` then ``c``
        for LSTMs). The output Keras mask (if any) is the input mask.

    Raises:
        ValueError: unknown ``kind``/``merge_mode``, non-positive sizes, or
            an ``initial_state`` of the wrong length.
    """

    def __init__(
        self,
        kind,
        units,
        num_layers=1,
        dropout=0.0,
        residual=False,
        bidirectional=False,
        merge_mode="concat",
        name=None,
        dtype=None,
        trainable=True,
        **cell_kwargs,
    ):
        layer_kwargs = {k: cell_kwargs.pop(k) for k in _LAYER_KWARGS if k in cell_kwargs}
        super().__init__(name=name, dtype=dtype, trainable=trainable, **layer_kwargs)
        state_count(kind)  # ValueError naming the allowed kinds
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {_MERGE_MODES}, got {merge_mode!r}.")
        if int(units) <= 0 or int(num_layers) <= 0:
            raise ValueError(f"units and num_layers must be positive, got units={units}, num_layers={num_layers}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.kind = kind
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.residual = bool(residual)
        self.bidirectional = bool(bidirectional)
        self.merge_mode = merge_mode
        self.cell_kwargs = dict(cell_kwargs)
        self.supports_masking = True

        self.rnn_layers = []
        for i in range(self.num_layers):
            layer = make_rnn_layer(
                kind, self.units, return_sequences=True, return_state=True, name=f"{kind}_{i}", **self.cell_kwargs
            )
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, merge_mode=merge_mode, name=f"bidirectional_{i}")
            self.rnn_layers.append(layer)
        self.dropout_layers = [
            keras.layers.Dropout(self.dropout, name=f"dropout_{i + 1}") for i in range(self.num_layers - 1)
        ]

    # ------------------------------------------------------------------ sizes
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def states_per_layer(self) -> int:
        """Number of state tensors per layer (all directions)."""
        return state_count(self.kind) * self.num_directions

    @property
    def state_sizes(self) -> list:
        """List of ints, the size of each tensor of ``final_states``."""
        return [self.units] * (self.states_per_layer * self.num_layers)

    @property
    def state_shapes(self) -> list:
        """Alias of :attr:`state_sizes` (list of ints)."""
        return self.state_sizes

    @property
    def output_units(self) -> int:
        """Last dimension of ``outputs``."""
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.units
        return self.units

    def get_initial_state(self, batch_size):
        """Zeros: a flat list of float32 ``[batch_size, units]`` tensors."""
        return [ops.zeros((batch_size, n), dtype=self.compute_dtype) for n in self.state_sizes]

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.rnn_layers:
            if not layer.built:
                layer.build(shape)
            shape = shape[:-1] + (self.output_units,)
        self.built = True

    def _split_states(self, states):
        n = self.states_per_layer
        expected = n * self.num_layers
        states = list(states)
        if len(states) != expected:
            raise ValueError(
                f"StackedRNN({self.kind!r}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}) expects {expected} "
                f"state tensors (sizes {self.state_sizes}), got "
                f"{len(states)}."
            )
        return [states[i * n : (i + 1) * n] for i in range(self.num_layers)]

    # ------------------------------------------------------------------- call
    def call(self, inputs, mask=None, initial_state=None, training=None):
        per_layer = self._split_states(initial_state) if initial_state is not None else [None] * self.num_layers
        x = inputs
        final_states = []
        for i, layer in enumerate(self.rnn_layers):
            layer_in = x if i == 0 else self.dropout_layers[i - 1](x, training=training)
            result = layer(layer_in, mask=mask, initial_state=per_layer[i], training=training)
            y, states = result[0], list(result[1:])
            if self.residual and i > 0:
                y = y + layer_in
            final_states.extend(states)
            x = y
        return x, final_states

    def compute_mask(self, inputs, mask=None):
        # Only the sequence output carries the (unchanged) time mask.
        return mask

    # ------------------------------------------------------------------- step
    def step(self, inputs, states, training=False):
        """Advance every layer by one time step using each layer's cell.

        Args:
            inputs: float32 ``[batch, d]``.
            states: flat list like ``final_states`` (see class docstring).
            training: bool (default False). With ``training=True`` the
                between-layer dropout and any cell dropout draw a fresh mask
                per step (not the per-sequence mask of ``call``).

        Returns:
            ``(output float32 [batch, output_units], new_states flat list)``.
            Running ``step`` over the time axis reproduces ``call`` (without
            mask, ``training=False``) exactly up to float rounding.

        Raises:
            ValueError: if the stack is bidirectional, or wrong state count.
        """
        if self.bidirectional:
            raise ValueError(
                "StackedRNN.step is only defined for unidirectional stacks "
                "(a bidirectional layer needs the whole sequence)."
            )
        if not self.built:
            self.build((None, None, inputs.shape[-1]))
        per_layer = self._split_states(states)
        x = inputs
        new_states = []
        for i, layer in enumerate(self.rnn_layers):
            layer_in = x if i == 0 else self.dropout_layers[i - 1](x, training=training)
            cell = layer.cell
            y, layer_states = cell(layer_in, list(per_layer[i]), training=training)
            if not isinstance(layer_states, (list, tuple)):
                layer_states = [layer_states]
            if training and hasattr(cell, "reset_dropout_mask"):
                cell.reset_dropout_mask()
                cell.reset_recurrent_dropout_mask()
            if self.residual and i > 0:
                y = y + layer_in
            new_states.extend(layer_states)
            x = y
        return x, new_states

    # ----------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "units": self.units,
                "num_layers": self.num_layers,
                "dropout": self.dropout,
                "residual": self.residual,
                "bidirectional": self.bidirectional,
                "merge_mode": self.merge_mode,
            }
        )
        config.update(self.cell_kwargs)
        return config
