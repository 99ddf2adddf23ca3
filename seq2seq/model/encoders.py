"""The recurrent (text) encoder: source embeddings → stacked, optionally bidirectional RNN."""

from __future__ import annotations

import keras
from keras import ops

from pipelines.vocab import PAD_ID
from seq2seq.model.rnn import StackedRNN
from seq2seq.registry import Registry


@keras.saving.register_keras_serializable(package="seq2seq")
class RecurrentEncoder(keras.layers.Layer):
    """Encodes source token ids into a memory for attention and final states for the bridge.

    Sutskever et al. (2014) with the bidirectional encoder of Bahdanau et al. (2015).

    Args:
      vocab_size: int, source vocabulary size (id 0 is padding and is masked).
      embedding_dim: int, size of the source embeddings.
      cell: "simple" | "gru" | "lstm" | "peephole_lstm".
      units: int, recurrent size per direction.
      num_layers: int, stacked layers.
      bidirectional: bool; merge_mode "concat" (memory size 2*units) or "sum" (units).
      dropout: float in [0, 1), on embeddings and between layers.
      residual: bool, residual connections from layer 2 on.
      embedding_trainable: bool, False freezes the embedding (pretrained vectors).
      embedding_dropout: float in [0, 1) or None (default: `dropout`), dropout on the embeddings.
      output_dropout: float in [0, 1), default 0: dropout on the memory (training only); the final states
        for the bridge are not dropped.

    Call:
      source_ids: int32 [batch, source_time], right-padded with 0.

    Returns:
      (memory float32 [batch, source_time, memory_dim], memory_mask bool [batch, source_time],
      final_states: flat list of float32 [batch, units], ordered layer → direction → cell state).
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        cell="gru",
        units=256,
        num_layers=1,
        bidirectional=True,
        merge_mode="concat",
        dropout=0.0,
        residual=False,
        embedding_trainable=True,
        embedding_dropout=None,
        output_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.cell = cell
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.merge_mode = merge_mode
        self.dropout = float(dropout)
        self.residual = bool(residual)
        self.embedding_trainable = bool(embedding_trainable)
        self.embedding_dropout = None if embedding_dropout is None else float(embedding_dropout)
        self.output_dropout = float(output_dropout)
        self.embedding = keras.layers.Embedding(
            self.vocab_size, self.embedding_dim, name="source_embedding", trainable=self.embedding_trainable
        )
        self.input_dropout = keras.layers.Dropout(self.dropout if embedding_dropout is None else self.embedding_dropout)
        self.memory_dropout = keras.layers.Dropout(self.output_dropout)
        self.rnn = StackedRNN(
            cell,
            self.units,
            num_layers=self.num_layers,
            dropout=self.dropout,
            residual=self.residual,
            bidirectional=self.bidirectional,
            merge_mode=merge_mode,
            name="encoder_rnn",
        )

    @property
    def memory_dim(self) -> int:
        """Size of each memory vector."""
        return self.units * (2 if self.bidirectional and self.merge_mode == "concat" else 1)

    @property
    def state_sizes(self):
        """Sizes of the flat final-state list."""
        return self.rnn.state_sizes

    def call(self, source_ids, training=None):
        mask = ops.not_equal(source_ids, PAD_ID)
        x = self.input_dropout(self.embedding(source_ids), training=training)
        memory, final_states = self.rnn(x, mask=mask, training=training)
        if self.output_dropout:
            memory = self.memory_dropout(memory, training=training)
        return memory, mask, list(final_states)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "merge_mode": self.merge_mode,
            "dropout": self.dropout,
            "residual": self.residual,
            "embedding_trainable": self.embedding_trainable,
            "embedding_dropout": self.embedding_dropout,
            "output_dropout": self.output_dropout,
        }


ENCODERS = Registry("encoder", "model.encoder.type")


@ENCODERS.register("recurrent")
def recurrent_encoder(encoder: dict, embedding: dict, source_vocab_size, inputs_are_features=False, name="encoder"):
    """A `RecurrentEncoder` from the `model.encoder` and `model.embedding` config sections (plain dicts).

    Raises:
      ValueError: `source_vocab_size` is None (a text encoder needs a source vocabulary).
    """
    if source_vocab_size is None:
        raise ValueError("a recurrent encoder needs source_vocab_size")
    return RecurrentEncoder(
        source_vocab_size,
        embedding["dim"],
        cell=encoder["cell"],
        units=encoder["units"],
        num_layers=encoder["layers"],
        bidirectional=encoder["bidirectional"],
        merge_mode=encoder["merge_mode"],
        dropout=encoder["dropout"],
        residual=encoder["residual"],
        embedding_trainable=embedding["trainable"] or not embedding.get("source_pretrained"),
        embedding_dropout=embedding.get("dropout"),
        output_dropout=encoder.get("output_dropout", 0.0),
        name=name,
    )
