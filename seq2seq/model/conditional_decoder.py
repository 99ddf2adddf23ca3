"""The conditional GRU decoder (cGRU) of Nematus (Sennrich et al., 2017, "Nematus: a Toolkit for Neural
Machine Translation", EACL demo, sec. 2; the decoder of the Edinburgh and LIUM-CVC WMT17 systems).

One decoding step, from the previous target token y_{j-1} and the previous state s_{j-1}:

    s'_j = GRU_1(E y_{j-1}, s_{j-1})                 first transition, on the previous embedding
    c_j, α_j = ATT(C, s'_j)                          attention over the memory C, queried with s'_j
    s_j  = GRU_2(c_j, s'_j)                          second transition, on the context
    t_j  = tanh(W_t [s_j; c_j; E y_{j-1}] + b_t)     deep output (Pascanu et al., 2014), size = embedding dim
    logits_j = W_o dropout(t_j) + b_o                (W_o = E with a tied output)

Unlike `RecurrentDecoder` without input feeding, the state reaching the next position passes through the
attention, so teacher forcing runs the recurrence in a `tf.while_loop`: `call` and `step` compute the same
numbers. In `call` only what depends on the previous state is in the loop: GRU_1's input projection, the deep
output and the vocabulary projection (the largest product) run once over all positions.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from seq2seq.model.attention import MemoryAttention, attention_score
from seq2seq.model.decoder import DECODERS
from seq2seq.model.precomputed_rnn import gru_step_from_projection, project_gru_input
from seq2seq.model.vocabulary_output import VocabularyOutput


@keras.saving.register_keras_serializable(package="seq2seq")
class ConditionalDecoder(VocabularyOutput, keras.layers.Layer):
    """cGRU decoder with the step contract of docs/DESIGN.md (same interface as `RecurrentDecoder`).

    Args:
      vocab_size: int, target vocabulary size V (id 0 is padding).
      embedding_dim: int, size of the target embeddings (and of the deep output t_j).
      memory_dim: int, size of the encoder memory vectors.
      units: int, size of the GRU state s_j.
      attention: "bahdanau" (additive) | "luong" (multiplicative "general" score, query size = units).
      attention_units: int or None (= units), size of the additive attention space.
      dropout: float in [0, 1), default rate of `embedding_dropout` and `output_dropout`.
      embedding_dropout: float in [0, 1) or None (= `dropout`), on the target embeddings.
      output_dropout: float in [0, 1) or None (= `dropout`), on t_j before the vocabulary projection.
      layer_norm: bool, t_j = tanh(LayerNorm(W_t [...])) (Ba et al., 2016).
      embedding_trainable: bool, False freezes the embedding.
      tie_output: bool, W_o = E (Press & Wolf, 2017); t_j already has the embedding size.

    Raises:
      ValueError: an unknown attention score.
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        memory_dim,
        units=256,
        attention="bahdanau",
        attention_units=None,
        dropout=0.0,
        embedding_dropout=None,
        output_dropout=None,
        layer_norm=False,
        embedding_trainable=True,
        tie_output=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        score = attention_score(attention, needed_by="the conditional decoder")
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.memory_dim = int(memory_dim)
        self.units = int(units)
        self.attention_kind = attention
        self.attention_units = attention_units
        self.dropout = float(dropout)
        self.embedding_dropout = None if embedding_dropout is None else float(embedding_dropout)
        self.output_dropout_rate = None if output_dropout is None else float(output_dropout)
        self.layer_norm = bool(layer_norm)
        self.embedding_trainable = bool(embedding_trainable)
        self.tie_output = bool(tie_output)

        self.embedding = keras.layers.Embedding(
            self.vocab_size, self.embedding_dim, name="target_embedding", trainable=self.embedding_trainable
        )
        self.input_dropout = keras.layers.Dropout(self.dropout if embedding_dropout is None else embedding_dropout)
        self.output_dropout = keras.layers.Dropout(self.dropout if output_dropout is None else output_dropout)
        self.transition_1 = keras.layers.GRUCell(self.units, name="transition_1")
        self.transition_2 = keras.layers.GRUCell(self.units, name="transition_2")
        size = score.size(self.units, attention_units)
        # Attention scores and softmax stay float32 under mixed precision.
        self.attention = MemoryAttention(size, score=attention, name="attention", dtype="float32")
        self.deep_output = keras.layers.Dense(self.embedding_dim, name="deep_output")
        self.deep_output_norm = keras.layers.LayerNormalization(name="deep_output_norm") if self.layer_norm else None
        self.pre_output = None
        self.output_projection = (
            None if self.tie_output else keras.layers.Dense(self.vocab_size, name="output_projection")
        )

    @property
    def state_sizes(self):
        """Sizes of the flat recurrent state list the bridge must produce: [units]."""
        return [self.units]

    def build(self, input_shape=None):
        for layer, shape in [
            (self.embedding, (None,)),
            (self.transition_1, (None, self.embedding_dim)),
            (self.transition_2, (None, self.memory_dim)),
            (self.deep_output, (None, self.units + self.memory_dim + self.embedding_dim)),
        ]:
            if not layer.built:
                layer.build(shape)
        if self.deep_output_norm is not None and not self.deep_output_norm.built:
            self.deep_output_norm.build((None, self.embedding_dim))
        if self.output_projection is not None and not self.output_projection.built:
            self.output_projection.build((None, self.embedding_dim))
        super().build(input_shape)

    def prepare_memory(self, memory, memory_mask):
        """Per-source work done once: {"memory", "mask", "keys" float32 [batch, memory_time, attention units]}."""
        return {
            "memory": memory,
            "mask": ops.cast(memory_mask, "bool"),
            "keys": self.attention.project_memory(ops.cast(memory, "float32")),
        }

    def initial_state(self, rnn_states):
        """Decoder state at position 0: {"rnn": [s_0 [batch, units]]} from the bridge."""
        return {"rnn": list(rnn_states)}

    def _transition(self, projected, state, constants, training):
        """(GRU_1 input projection [batch, 3·units], s_{j-1}) -> (s_j [batch, units], c_j [batch, memory],
        α_j [batch, memory_time]): the part of a step that depends on the previous state.
        """
        intermediate = gru_step_from_projection(self.transition_1, projected, state)
        context, weights = self.attention(
            ops.cast(intermediate[:, None, :], "float32"),
            constants["keys"],
            ops.cast(constants["memory"], "float32"),
            constants["mask"],
            training=training,
        )
        context = ops.cast(context[:, 0, :], intermediate.dtype)
        new_state, _ = self.transition_2(context, [intermediate], training=training)
        return new_state, context, ops.cast(weights[:, 0, :], "float32")

    def _deep_output(self, state, context, embedded):
        """t_j = tanh([LayerNorm](W_t [s_j; c_j; E y_{j-1}] + b_t)), float [..., embedding_dim]."""
        hidden = self.deep_output(ops.concatenate([state, context, embedded], axis=-1))
        if self.deep_output_norm is not None:
            hidden = self.deep_output_norm(hidden)
        return ops.tanh(hidden)

    def step(self, ids, state, constants, training=False):
        """One decoding step (the step contract).

        Args:
          ids: int32 [batch], the previous target token (BOS at position 0).
          state: {"rnn": [float [batch, units]]} from `initial_state` or a previous `step`.
          constants: dict from `prepare_memory`.

        Returns:
          (logits float32 [batch, vocab_size], new_state (same structure), attention float32 [batch, memory_time]).
        """
        embedded = self.input_dropout(self.embedding(ids), training=training)
        projected = project_gru_input(self.transition_1, embedded)
        new_state, context, weights = self._transition(projected, state["rnn"][0], constants, training)
        hidden = self._deep_output(new_state, context, embedded)
        return self._logits(hidden, training), {"rnn": [new_state]}, weights

    def call(self, target_in, constants, state, training=None, return_state=False):
        """Teacher-forced decoding of a whole target prefix (or of one window of it).

        Only the recurrence (GRU_1's state update, the attention, GRU_2) runs inside the loop; the GRU_1 input
        projection before it, and the deep output and vocabulary projection after it, run once over all
        positions.

        Args:
          target_in: int32 [batch, time], BOS + target pieces, right-padded with 0.
          constants: dict from `prepare_memory`.
          state: dict from `initial_state`, or the final state of the previous window (truncated BPTT).
          return_state: bool, default False; also return the state after the last position.

        Returns:
          (logits float32 [batch, time, vocab_size], attention float32 [batch, time, memory_time]), plus
          the final state when `return_state`.
        """
        target_in = tf.convert_to_tensor(target_in)
        embedded = self.input_dropout(self.embedding(target_in), training=training)
        by_time = tf.transpose(project_gru_input(self.transition_1, embedded), [1, 0, 2])
        time = tf.shape(target_in)[1]
        state_ta = tf.TensorArray(embedded.dtype, size=time)
        context_ta = tf.TensorArray(embedded.dtype, size=time)
        weights_ta = tf.TensorArray(tf.float32, size=time)

        def body(t, s, state_ta, context_ta, weights_ta):
            s, context, weights = self._transition(by_time[t], s, constants, training)
            return t + 1, s, state_ta.write(t, s), context_ta.write(t, context), weights_ta.write(t, weights)

        _, final, state_ta, context_ta, weights_ta = tf.while_loop(
            lambda t, *_: t < time,
            body,
            (tf.constant(0), state["rnn"][0], state_ta, context_ta, weights_ta),
        )
        states = tf.transpose(state_ta.stack(), [1, 0, 2])
        contexts = tf.transpose(context_ta.stack(), [1, 0, 2])
        weights = tf.transpose(weights_ta.stack(), [1, 0, 2])
        logits = self._logits(self._deep_output(states, contexts, embedded), training)
        return (logits, weights, {"rnn": [final]}) if return_state else (logits, weights)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "memory_dim": self.memory_dim,
            "units": self.units,
            "attention": self.attention_kind,
            "attention_units": self.attention_units,
            "dropout": self.dropout,
            "embedding_dropout": self.embedding_dropout,
            "output_dropout": self.output_dropout_rate,
            "layer_norm": self.layer_norm,
            "embedding_trainable": self.embedding_trainable,
            "tie_output": self.tie_output,
        }


@DECODERS.register("conditional")
def conditional_decoder(target_vocab_size, embedding_dim, memory_dim, decoder: dict, **common) -> ConditionalDecoder:
    """A `ConditionalDecoder` (cGRU) from the `model.decoder` section (a plain dict) and the shared arguments."""
    return ConditionalDecoder(target_vocab_size, embedding_dim, memory_dim, units=decoder["units"], **common)
