"""Builders for the four input/output modes of recurrent networks, on the toolkit's building blocks.

| mode | input -> output | builder |
|---|---|---|
| sequence-to-sequence (same length) | series [batch, T, f] -> next values [batch, T, f] | `forecaster` + `shift_series` |
| sequence-to-vector | token ids [batch, T] -> class logits / score [batch, n] | `sequence_classifier` |
| vector-to-sequence | vector [batch, d] -> token ids (like captioning) | `VectorToSequence` |
| encoder–decoder | token ids -> token ids (translation) | `seq2seq.model.seq2seq.build_model` |

Karpathy (2015), "The unreasonable effectiveness of recurrent neural networks", draws these modes;
the recurrent parts are `StackedRNN` (Elman / GRU / LSTM / peephole LSTM), `RecurrentEncoder`,
`Bridge` and `RecurrentDecoder`. Worked examples: docs/sequence_modes.md.
"""

from __future__ import annotations

import keras
from keras import ops

from seq2seq.model.bridge import Bridge
from seq2seq.model.decoder import RecurrentDecoder
from seq2seq.model.encoders import RecurrentEncoder
from seq2seq.model.rnn import StackedRNN


def shift_series(series):
    """(inputs, targets) for next-step forecasting: inputs = series[:, :-1], targets = series[:, 1:].

    Args:
      series: float [batch, T, features] (a tensor or array; works inside `tf.data.Dataset.map`).

    Returns:
      (float [batch, T-1, features], float [batch, T-1, features]).
    """
    return series[:, :-1], series[:, 1:]


def forecaster(features=1, cell="gru", units=32, num_layers=1, dropout=0.0) -> keras.Model:
    """Sequence-to-sequence forecaster: at every step t, predict the value at t+1 (teacher-forced).

    Args:
      features: int, values per time step. cell: a `seq2seq.model.cells` kind. units, num_layers, dropout:
        of the `StackedRNN`.

    Returns:
      an uncompiled functional `keras.Model`: float32 [batch, T, features] -> float32 [batch, T, features]
      (train with mean squared error on `shift_series` pairs; with `seq2seq.training.tbptt.window_loop` for long
      series).
    """
    inputs = keras.Input((None, features), name="series")
    outputs, _ = StackedRNN(cell, units, num_layers=num_layers, dropout=dropout, name="rnn")(inputs)
    return keras.Model(inputs, keras.layers.Dense(features, name="next_value")(outputs), name="forecaster")


def sequence_classifier(
    vocab_size, num_outputs, embedding_dim=64, cell="gru", units=64, num_layers=1, bidirectional=True, dropout=0.0
) -> keras.Model:
    """Sequence-to-vector: encode token ids, read the final states, map them to `num_outputs` values.

    The padded positions (id 0) are masked, so a sentence's output does not depend on its padding.

    Args:
      vocab_size: int, source vocabulary (id 0 = padding). num_outputs: int, classes (logits; train with
        `SparseCategoricalCrossentropy(from_logits=True)`) or 1 for a score (train with MSE).
      embedding_dim, cell, units, num_layers, bidirectional, dropout: of the `RecurrentEncoder`.

    Returns:
      an uncompiled functional `keras.Model`: int32 [batch, T] -> float32 [batch, num_outputs].
    """
    ids = keras.Input((None,), dtype="int32", name="ids")
    encoder = RecurrentEncoder(
        vocab_size,
        embedding_dim,
        cell=cell,
        units=units,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
        name="encoder",
    )
    _, _, final_states = encoder(ids)
    summary = final_states[0] if len(final_states) == 1 else keras.layers.Concatenate()(final_states)
    return keras.Model(ids, keras.layers.Dense(num_outputs, name="head")(summary), name="sequence_classifier")


@keras.saving.register_keras_serializable(package="seq2seq")
class VectorToSequence(keras.Model):
    """Vector-to-sequence: a fixed vector starts the decoder, which then writes a token sequence.

    As in captioning (Vinyals et al., 2015, "Show and tell"): the vector initialises the decoder state
    through a learned `Bridge` ("dense") and, with attention, is also a one-slot memory.

    Args:
      vector_dim: int, size d of the input vectors.
      vocab_size: int, output vocabulary (0 = PAD, 2 = BOS, 3 = EOS, see pipelines/vocab.py).
      embedding_dim, cell, units, num_layers, dropout: of the `RecurrentDecoder`.
      attention: "none" (default) | "bahdanau" | "luong".

    Call:
      (vector float32 [batch, d], target_in int32 [batch, T]) -> logits float32 [batch, T, vocab_size].
      `encode(vector)` and `step(ids, state, constants)` follow the decoder step contract of
      docs/DESIGN.md, so `seq2seq.decoding` (greedy, beam, sampling) generates from a vector.
    """

    def __init__(
        self,
        vector_dim,
        vocab_size,
        embedding_dim=32,
        cell="gru",
        units=64,
        num_layers=1,
        dropout=0.0,
        attention="none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.settings = dict(
            vector_dim=int(vector_dim),
            vocab_size=int(vocab_size),
            embedding_dim=int(embedding_dim),
            cell=cell,
            units=int(units),
            num_layers=int(num_layers),
            dropout=float(dropout),
            attention=attention,
        )
        self.decoder = RecurrentDecoder(
            vocab_size,
            embedding_dim,
            memory_dim=vector_dim,
            cell=cell,
            units=units,
            num_layers=num_layers,
            attention=attention,
            dropout=dropout,
            name="decoder",
        )
        self.bridge = Bridge("dense", self.decoder.state_sizes, name="bridge")

    def encode(self, vector, training=False):
        """(state, constants) of the step contract for float32 [batch, d] vectors."""
        vector = ops.convert_to_tensor(vector, "float32")
        memory = vector[:, None, :]
        mask = ops.ones((ops.shape(vector)[0], 1), dtype="bool")
        return self.decoder.initial_state(self.bridge([vector])), self.decoder.prepare_memory(memory, mask)

    def step(self, ids, state, constants):
        """One decoding step (docs/DESIGN.md step contract), inference mode."""
        return self.decoder.step(ids, state, constants, training=False)

    def call(self, inputs, training=None):
        vector, target_in = inputs
        state, constants = self.encode(vector, training=training)
        logits, _ = self.decoder(target_in, constants, state, training=training)
        return logits

    def get_config(self):
        return {"name": self.name, **self.settings}
