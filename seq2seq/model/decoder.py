"""The recurrent decoder shared by translation and captioning.

One set of weights, two ways to run it:

* `step(ids, state, constants)`: one target position for a batch — used by greedy decoding, beam search,
  sampling and the exported SavedModels (the step contract of docs/DESIGN.md);
* `call(target_in, constants, state)`: the whole teacher-forced target sequence for training. Without input
  feeding every position's attention query is the recurrent output of that position, so the recurrent
  stack runs fused over the sequence and attention is one batched matrix product; with input feeding
  (Luong et al., 2015, sec. 3.3) each step needs the previous step's attentional vector, so `call` loops
  over `step` with `tf.while_loop`. Both give the same numbers as running `step` position by position.

Attention is placed after the recurrent layer (Luong et al., 2015): h̃_t = tanh(W_c [c_t; h_t]),
logits_t = W_o h̃_t, with either the additive score of Bahdanau et al. (2015) or the multiplicative
("general") score of Luong et al. (2015).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from seq2seq.model.attention import ATTENTIONS, MemoryAttention
from seq2seq.model.rnn import StackedRNN
from seq2seq.model.vocabulary_output import VocabularyOutput
from seq2seq.registry import Registry


@keras.saving.register_keras_serializable(package="seq2seq")
class RecurrentDecoder(VocabularyOutput, keras.layers.Layer):
    """Embedding → stacked RNN → attention → attentional vector → vocabulary logits.

    Args:
      vocab_size: int, target vocabulary size V (ids 0..V-1; id 0 is padding).
      embedding_dim: int, size of the target word embeddings.
      memory_dim: int, size of the encoder memory vectors that attention reads.
      cell: "simple" | "gru" | "lstm" | "peephole_lstm" (see `seq2seq.model.cells`).
      units: int, recurrent size (also the size of the attentional vector h̃).
      num_layers: int, stacked recurrent layers.
      attention: "bahdanau" | "luong" | "none".
      attention_units: int or None (= units), size of the additive attention space (Luong uses `units`).
      input_feeding: bool, feed h̃_{t-1} with the embedding of y_{t-1} (Luong et al., 2015).
      dropout: float in [0, 1), on embeddings, between recurrent layers and on h̃.
      residual: bool, residual connections between recurrent layers (from layer 2 on).
      embedding_trainable: bool, False freezes the embedding (pretrained vectors).
      tie_output: bool, share the embedding matrix with the output projection (Press & Wolf, 2017).
      embedding_dropout: float in [0, 1) or None (default: `dropout`), dropout on the target embeddings.
      output_dropout: float in [0, 1) or None (default: `dropout`), dropout on h̃ before the projection.
      layer_norm: bool, default False: h̃ = tanh(LayerNorm(W_c [c_t; h_t])) (Ba et al., 2016); needs attention.

    Raises:
      ValueError: an unknown attention or cell kind; `layer_norm` without attention.
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        memory_dim,
        cell="gru",
        units=256,
        num_layers=1,
        attention="bahdanau",
        attention_units=None,
        input_feeding=False,
        dropout=0.0,
        residual=False,
        embedding_trainable=True,
        tie_output=False,
        embedding_dropout=None,
        output_dropout=None,
        layer_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {attention!r}; allowed values: {', '.join(ATTENTIONS)}")
        score = ATTENTIONS.get(attention)
        if layer_norm and ATTENTIONS.get(attention) is None:
            raise ValueError("layer_norm normalises the attentional layer: it needs attention 'bahdanau' or 'luong'")
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.memory_dim = int(memory_dim)
        self.cell = cell
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.attention_kind = attention
        self.attention_units = attention_units
        self.input_feeding = bool(input_feeding) and score is not None
        self.dropout = float(dropout)
        self.residual = bool(residual)
        self.embedding_trainable = bool(embedding_trainable)
        self.tie_output = bool(tie_output)
        self.embedding_dropout = None if embedding_dropout is None else float(embedding_dropout)
        self.output_dropout_rate = None if output_dropout is None else float(output_dropout)
        self.layer_norm = bool(layer_norm)

        self.embedding = keras.layers.Embedding(
            self.vocab_size, self.embedding_dim, name="target_embedding", trainable=self.embedding_trainable
        )
        self.rnn = StackedRNN(
            cell,
            self.units,
            num_layers=self.num_layers,
            dropout=self.dropout,
            residual=self.residual,
            name="decoder_rnn",
        )
        self.input_dropout = keras.layers.Dropout(self.dropout if embedding_dropout is None else self.embedding_dropout)
        self.output_dropout = keras.layers.Dropout(self.dropout if output_dropout is None else self.output_dropout_rate)
        if score is not None:
            size = score.size(self.units, attention_units)
            # Attention scores and softmax stay float32 under mixed precision.
            self.attention = MemoryAttention(size, score=attention, name="attention", dtype="float32")
            self.attentional = keras.layers.Dense(
                self.units, activation=None if self.layer_norm else "tanh", use_bias=False, name="attentional"
            )
            self.attentional_norm = (
                keras.layers.LayerNormalization(name="attentional_norm") if self.layer_norm else None
            )
        else:
            self.attention = None
            self.attentional = None
            self.attentional_norm = None
        if self.tie_output:
            self.pre_output = (
                keras.layers.Dense(self.embedding_dim, name="pre_output") if self.units != self.embedding_dim else None
            )
            self.output_projection = None
        else:
            self.pre_output = None
            # In the compute dtype: under mixed precision the largest matmul of a step runs in bfloat16/float16;
            # `_logits` casts its output to float32 for the softmax and the loss.
            self.output_projection = keras.layers.Dense(self.vocab_size, name="output_projection")

    # ----------------------------------------------------------------------------------------------
    # Set-up shared by training and decoding

    @property
    def state_sizes(self):
        """Sizes of the flat recurrent state list the bridge must produce."""
        return self.rnn.state_sizes

    def prepare_memory(self, memory, memory_mask):
        """Per-source work done once: returns the `constants` of the step contract.

        Args:
          memory: float32 [batch, memory_time, memory_dim] encoder outputs.
          memory_mask: bool [batch, memory_time], True at real positions.

        Returns:
          dict with "memory", "mask" and (with attention) "keys" float32 [batch, memory_time, units].
        """
        constants = {"memory": memory, "mask": ops.cast(memory_mask, "bool")}
        if self.attention is not None:
            constants["keys"] = self.attention.project_memory(ops.cast(memory, "float32"))
        return constants

    def initial_state(self, rnn_states):
        """Decoder state at position 0 from the bridge's flat list of recurrent states [batch, size]."""
        state = {"rnn": list(rnn_states)}
        if self.input_feeding:
            state["feed"] = ops.zeros((ops.shape(rnn_states[0])[0], self.units), dtype=rnn_states[0].dtype)
        return state

    # ----------------------------------------------------------------------------------------------
    # Shared computation

    def _attend(self, rnn_output, constants, training):
        """rnn_output [batch, time, units] -> (h̃ [batch, time, units], weights [batch, time, memory_time])."""
        if self.attention is None:
            weights = ops.zeros(
                (ops.shape(rnn_output)[0], ops.shape(rnn_output)[1], ops.shape(constants["mask"])[1]), dtype="float32"
            )
            return rnn_output, weights
        context, weights = self.attention(
            ops.cast(rnn_output, "float32"),
            constants["keys"],
            ops.cast(constants["memory"], "float32"),
            constants["mask"],
            training=training,
        )
        context = ops.cast(context, rnn_output.dtype)
        attentional = self.attentional(ops.concatenate([context, rnn_output], axis=-1))
        if self.attentional_norm is not None:
            attentional = ops.tanh(self.attentional_norm(attentional))
        return attentional, weights

    # ----------------------------------------------------------------------------------------------
    # The step contract

    def step(self, ids, state, constants, training=False):
        """One decoding step.

        Args:
          ids: int32 [batch], the previous target token (BOS at position 0).
          state: dict from `initial_state` or a previous `step`.
          constants: dict from `prepare_memory`.

        Returns:
          (logits float32 [batch, vocab_size], new_state (same structure), attention float32
          [batch, memory_time], zeros without attention).
        """
        x = self.embedding(ids)
        if self.input_feeding:
            x = ops.concatenate([x, ops.cast(state["feed"], x.dtype)], axis=-1)
        x = self.input_dropout(x, training=training)
        output, rnn_states = self.rnn.step(x, state["rnn"], training=training)
        attentional, weights = self._attend(output[:, None, :], constants, training)
        attentional = attentional[:, 0, :]
        new_state = {"rnn": list(rnn_states)}
        if self.input_feeding:
            new_state["feed"] = attentional
        return self._logits(attentional, training), new_state, weights[:, 0, :]

    # ----------------------------------------------------------------------------------------------
    # Teacher forcing

    def call(self, target_in, constants, state, training=None, return_state=False):
        """Teacher-forced decoding of a whole target prefix (or of one window of it).

        Args:
          target_in: int32 [batch, time], BOS + target pieces, right-padded with 0.
          constants: dict from `prepare_memory`.
          state: dict from `initial_state`, or the final state of the previous window (truncated BPTT).
          return_state: bool, default False; also return the state after the last position (same
            structure as `state`: the recurrent states and, with input feeding, the last h̃ as "feed"),
            so that decoding the next window from it continues exactly where this one stopped.

        Returns:
          (logits float32 [batch, time, vocab_size], attention float32 [batch, time, memory_time]), plus
          the final state when `return_state`.
        """
        if self.input_feeding:
            logits, weights, final = self._call_stepwise(target_in, constants, state, training)
        else:
            x = self.input_dropout(self.embedding(target_in), training=training)
            outputs, rnn_states = self.rnn(x, initial_state=state["rnn"], training=training)
            attentional, weights = self._attend(outputs, constants, training)
            logits, final = self._logits(attentional, training), {"rnn": list(rnn_states)}
        return (logits, weights, final) if return_state else (logits, weights)

    def _call_stepwise(self, target_in, constants, state, training):
        target_in = tf.convert_to_tensor(target_in)
        time = tf.shape(target_in)[1]
        logits_ta = tf.TensorArray(tf.float32, size=time)
        weights_ta = tf.TensorArray(tf.float32, size=time)

        def body(t, state, logits_ta, weights_ta):
            logits, state, weights = self.step(target_in[:, t], state, constants, training=training)
            return t + 1, state, logits_ta.write(t, logits), weights_ta.write(t, weights)

        _, final, logits_ta, weights_ta = tf.while_loop(
            lambda t, *_: t < time, body, (tf.constant(0), state, logits_ta, weights_ta)
        )
        logits = tf.transpose(logits_ta.stack(), [1, 0, 2])
        weights = tf.transpose(weights_ta.stack(), [1, 0, 2])
        return logits, weights, final

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "memory_dim": self.memory_dim,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "attention": self.attention_kind,
            "attention_units": self.attention_units,
            "input_feeding": self.input_feeding,
            "dropout": self.dropout,
            "residual": self.residual,
            "embedding_trainable": self.embedding_trainable,
            "tie_output": self.tie_output,
            "embedding_dropout": self.embedding_dropout,
            "output_dropout": self.output_dropout_rate,
            "layer_norm": self.layer_norm,
        }


DECODERS = Registry("decoder", "model.decoder.type")


@DECODERS.register("recurrent")
def recurrent_decoder(target_vocab_size, embedding_dim, memory_dim, decoder: dict, **common) -> RecurrentDecoder:
    """A `RecurrentDecoder` from the `model.decoder` section (a plain dict) and the shared arguments."""
    return RecurrentDecoder(
        target_vocab_size,
        embedding_dim,
        memory_dim,
        cell=decoder["cell"],
        units=decoder["units"],
        num_layers=decoder["layers"],
        input_feeding=decoder["input_feeding"],
        residual=decoder["residual"],
        **common,
    )


def build_decoder(
    model_config: dict, target_vocab_size: int, memory_dim: int, embedding_trainable: bool, name: str = "decoder"
):
    """The decoder `model_config["decoder"]["type"]` names (`DECODERS`), from the `model` section as a plain dict.

    Keys added after a model was saved take their defaults, so configs of older model.keras files still load.

    Args:
      model_config: the `model` section (`dataclasses.asdict(ModelConfig)` or a saved model's dict).
      target_vocab_size: int.
      memory_dim: int, the encoder's memory size.
      embedding_trainable: bool, False freezes the target embedding.
      name: the layer name (default "decoder").

    Returns:
      a `RecurrentDecoder` ("recurrent", the default) or a `ConditionalDecoder` ("conditional").

    Raises:
      ConfigError: an unknown decoder type; ValueError: the errors of the decoders' constructors.
    """
    emb, dec = model_config["embedding"], model_config["decoder"]
    common = dict(
        attention=dec["attention"],
        attention_units=dec["attention_units"],
        dropout=dec["dropout"],
        embedding_dropout=emb.get("dropout"),
        output_dropout=dec.get("output_dropout"),
        layer_norm=dec.get("layer_norm", False),
        embedding_trainable=embedding_trainable,
        tie_output=emb["tie_output"],
        name=name,
    )
    factory = DECODERS.get(dec.get("type", "recurrent"), "model.decoder.type")
    return factory(target_vocab_size, emb["dim"], memory_dim, dec, **common)
