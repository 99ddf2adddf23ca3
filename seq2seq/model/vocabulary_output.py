"""The last layer of the decoders: dropout, then logits over the target vocabulary (untied or tied)."""

from __future__ import annotations

from keras import ops


class VocabularyOutput:
    """The last layer of a decoder: dropout, then logits over the target vocabulary (untied or tied).

    Shared by `RecurrentDecoder` and `seq2seq.conditional_decoder.ConditionalDecoder`. The layer provides
    `output_dropout` (a Dropout layer), `output_projection` (Dense to the vocabulary, or None when tied),
    `pre_output` (Dense to the embedding size, or None), `embedding`, `tie_output` and `vocab_size`; with a
    tied output `build` adds `output_bias` float32 [vocab_size].
    """

    def _logits(self, hidden, training):
        """hidden [..., size] -> float32 logits [..., vocab_size]."""
        x = self.output_dropout(hidden, training=training)
        if self.output_projection is not None:
            return ops.cast(self.output_projection(x), "float32")
        if self.pre_output is not None:
            x = self.pre_output(x)
        dtype = self.compute_dtype  # as the untied projection: bfloat16/float16 under mixed precision
        matrix = ops.cast(self.embedding.embeddings, dtype)
        # Inside `call` Keras autocasts the bias to the compute dtype; the sum is taken in float32.
        logits = ops.cast(ops.matmul(ops.cast(x, dtype), ops.transpose(matrix)), "float32")
        return logits + ops.cast(self.output_bias, "float32")

    def build(self, input_shape=None):
        if self.tie_output and not hasattr(self, "output_bias"):
            self.output_bias = self.add_weight(
                name="output_bias", shape=(self.vocab_size,), initializer="zeros", dtype="float32"
            )
        self.built = True
