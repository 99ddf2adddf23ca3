"""Strings in, strings out: the translation module used in-process, by evaluation, and as the SavedModel.

`TranslationModule` is a `tf.Module` whose `tf.function`s hold the whole path — normalisation,
SentencePiece (or word) tokenisation, the encoder, batched beam search / greedy / sampling over the
decoder's step, detokenisation — in TensorFlow ops only. The CLI and evaluation call the very graph that
`seq2seq export` saves, so an export gives exactly the outputs of the model directory it came from.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from pipelines.batching import format_source
from pipelines.vocab import BOS_ID, EOS_ID
from seq2seq import decoding
from seq2seq.config import DecodeConfig

TEXT_SIGNATURE = [tf.TensorSpec([None], tf.string, name="text")]


def decode_batch(model, source, source_lengths, decode: DecodeConfig, return_attention=False):
    """Decode a batch with the strategy of `decode` over `model.encode` / `model.step`.

    Args:
      model: a built `Seq2Seq`.
      source: the encoder input with leading dimension batch (ids int32 [batch, time], or images/features).
      source_lengths: int32 [batch] source lengths for the relative length limit, or None (absolute only).
      decode: DecodeConfig (strategy, beam_size, n_best, length_penalty, max_length, max_length_ratio,
        max_length_offset, temperature, top_k).
      return_attention: also return attention weights.

    Returns:
      `decoding.BeamResult` with an n-best axis: ids int32 [batch, n, time], lengths int32 [batch, n],
      scores float32 [batch, n] (length-normalised for beam search; sum of log-probabilities otherwise),
      attention float32 [batch, n, time, memory_time] or None. Greedy and sampling give n = 1.
    """
    state, constants = model.encode(source, training=False)
    batch_size = tf.shape(tf.nest.flatten(constants)[0])[0]
    if source_lengths is None or decode.max_length_ratio is None:
        max_length = tf.fill([batch_size], tf.constant(decode.max_length, tf.int32))
    else:
        max_length = decoding.max_output_length(source_lengths, decode.max_length, decode.max_length_ratio,
                                                decode.max_length_offset)
    common = dict(step_fn=model.step, initial_state=state, constants=constants, batch_size=batch_size,
                  max_length=max_length, bos_id=BOS_ID, eos_id=EOS_ID, return_attention=return_attention)
    if decode.strategy == "beam":
        return decoding.beam_search_decode(beam_size=decode.beam_size, length_penalty=decode.length_penalty,
                                           n_best=decode.n_best, **common)
    if decode.strategy == "greedy":
        result = decoding.greedy_decode(**common)
    else:
        result = decoding.sample_decode(temperature=decode.temperature, top_k=decode.top_k, **common)
    attention = None if result.attention is None else result.attention[:, None]
    return decoding.BeamResult(result.ids[:, None], result.lengths[:, None], result.scores[:, None],
                               result.scores[:, None], attention)


class TranslationModule(tf.Module):
    """Raw sentences → translations, entirely in TensorFlow ops (exportable as a SavedModel).

    Args:
      model: a built `Seq2Seq` translation model.
      source_tokenizer, target_tokenizer: `pipelines.tokenizers` tokenizers (tf.Modules).
      decode: DecodeConfig used by every signature.
      max_source_length: int; longer inputs are cut to their first `max_source_length - 1` pieces (+ EOS),
        the length the model was trained on.

    Outputs for inputs that are empty after normalisation: translation "" and score 0.0.
    Characters never seen in training: SentencePiece's byte fallback (when enabled) gives them byte pieces,
    otherwise they become <unk>; either way decoding proceeds.
    """

    def __init__(self, model, source_tokenizer, target_tokenizer, decode: DecodeConfig, max_source_length: int):
        super().__init__(name="translator")
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.decode_config = dataclasses.asdict(decode)
        self._decode = decode
        self.max_source_length = int(max_source_length)

    def _run(self, text, return_attention=False):
        text = tf.convert_to_tensor(text, tf.string)
        pieces = self.source_tokenizer.tokenize(text)
        empty = tf.equal(pieces.row_lengths(), 0)
        source = format_source(pieces, self.max_source_length)
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(source, 0), tf.int32), axis=1)
        result = decode_batch(self.model, source, lengths, self._decode, return_attention=return_attention)
        return result, empty, source

    def _strings(self, ids, empty):
        """ids int32 [batch, n, time] -> tf.string [batch, n]; "" for empty inputs."""
        shape = tf.shape(ids)
        flat = tf.reshape(ids, [shape[0] * shape[1], shape[2]])
        text = tf.reshape(self.target_tokenizer.detokenize(flat), shape[:2])
        return tf.where(empty[:, None], tf.constant(""), text)

    @tf.function(input_signature=TEXT_SIGNATURE)
    def translate(self, text):
        """text: tf.string [batch] → {"translation": tf.string [batch], "score": float32 [batch]}."""
        result, empty, _ = self._run(text)
        translations = self._strings(result.ids[:, :1], empty)[:, 0]
        score = tf.where(empty, 0.0, result.scores[:, 0])
        return {"translation": translations, "score": score}

    @tf.function(input_signature=TEXT_SIGNATURE)
    def translate_nbest(self, text):
        """text: tf.string [batch] → {"translations": tf.string [batch, n_best], "scores": float32 [batch, n_best]}."""
        result, empty, _ = self._run(text)
        return {"translations": self._strings(result.ids, empty),
                "scores": tf.where(empty[:, None], 0.0, result.scores)}

    @tf.function(input_signature=TEXT_SIGNATURE)
    def translate_with_attention(self, text):
        """Best translation with its pieces and attention (for plots).

        Returns: {"translation": tf.string [batch], "score": float32 [batch], "target_pieces": tf.string
        [batch, time], "source_pieces": tf.string [batch, source_time], "attention": float32
        [batch, time, source_time]}.
        """
        result, empty, source = self._run(text, return_attention=True)
        return {"translation": self._strings(result.ids[:, :1], empty)[:, 0],
                "score": tf.where(empty, 0.0, result.scores[:, 0]),
                "target_pieces": self.target_tokenizer.id_to_piece(result.ids[:, 0]),
                "source_pieces": self.source_tokenizer.id_to_piece(source),
                "attention": result.attention[:, 0]}
