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
from pipelines.vocab import BOS_ID, EOS_ID, UNK_ID
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
        max_length_offset, temperature, top_k, block_unk: never output `<unk>`).
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
    step_fn = decoding.suppress_tokens(model.step, [UNK_ID]) if decode.block_unk else model.step
    common = dict(step_fn=step_fn, initial_state=state, constants=constants, batch_size=batch_size,
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


def decode_settings(decode: DecodeConfig, **overrides) -> DecodeConfig:
    """`decode` with the non-None `overrides` applied (e.g. beam_size=1 from the command line).

    `beam_size` is raised to `n_best` when needed, so n-best output always has enough beams.

    Raises:
      TypeError: an override that is not a DecodeConfig field.
    """
    decode = dataclasses.replace(decode, **{k: v for k, v in overrides.items() if v is not None})
    if decode.n_best > decode.beam_size:
        decode = dataclasses.replace(decode, beam_size=decode.n_best)
    return decode


def detokenize_nbest(tokenizer, ids, empty=None):
    """Detokenise n-best ids in-graph: int32 [batch, n, time] -> tf.string [batch, n].

    Args:
      tokenizer: a `pipelines.tokenizers` tokenizer (its `detokenize` stops at EOS, drops PAD/BOS/EOS).
      ids: int32 [batch, n, time], e.g. `decode_batch(...).ids`.
      empty: optional bool [batch]; rows where it is True give "" (inputs with nothing to decode).
    """
    shape = tf.shape(ids)
    flat = tf.reshape(ids, [shape[0] * shape[1], shape[2]])
    text = tf.reshape(tokenizer.detokenize(flat), shape[:2])
    if empty is None:
        return text
    return tf.where(empty[:, None], tf.constant(""), text)


class TranslationModule(tf.Module):
    """Raw sentences → translations, entirely in TensorFlow ops (exportable as a SavedModel).

    Args:
      model: a built `Seq2Seq` translation model.
      source_tokenizer, target_tokenizer: `pipelines.tokenizers` tokenizers (tf.Modules).
      decode: DecodeConfig used by every signature.
      max_source_length: int; longer inputs are cut to their first `max_source_length - 1` pieces (+ EOS),
        the length the model was trained on.

    Outputs for inputs that are empty after normalisation: translation "" and score 0.0. An empty batch
    (0 strings) gives outputs with 0 rows.
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

    @staticmethod
    def _at_least_one_row(text):
        """(text, n): Keras RNN layers cannot run on a batch of 0 rows, so an empty batch becomes [""];
        `_first(outputs, n)` then cuts every output back to the n real rows."""
        n = tf.size(text)
        return tf.cond(n > 0, lambda: text, lambda: tf.constant([""])), n

    @staticmethod
    def _first(outputs, n):
        return tf.nest.map_structure(lambda x: x[:n], outputs)

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
        return detokenize_nbest(self.target_tokenizer, ids, empty)

    @tf.function(input_signature=TEXT_SIGNATURE)
    def translate(self, text):
        """text: tf.string [batch] → {"translation": tf.string [batch], "score": float32 [batch]}."""
        text, n = self._at_least_one_row(text)
        result, empty, _ = self._run(text)
        translations = self._strings(result.ids[:, :1], empty)[:, 0]
        score = tf.where(empty, 0.0, result.scores[:, 0])
        return self._first({"translation": translations, "score": score}, n)

    @tf.function(input_signature=TEXT_SIGNATURE)
    def translate_nbest(self, text):
        """text: tf.string [batch] → {"translations": tf.string [batch, n_best], "scores": float32 [batch, n_best]}."""
        text, n = self._at_least_one_row(text)
        result, empty, _ = self._run(text)
        return self._first({"translations": self._strings(result.ids, empty),
                            "scores": tf.where(empty[:, None], 0.0, result.scores)}, n)

    @tf.function(input_signature=TEXT_SIGNATURE)
    def translate_with_attention(self, text):
        """Best translation with its pieces and attention (for plots).

        Returns: {"translation": tf.string [batch], "score": float32 [batch], "target_pieces": tf.string
        [batch, time], "source_pieces": tf.string [batch, source_time], "attention": float32
        [batch, time, source_time]}.
        """
        text, n = self._at_least_one_row(text)
        result, empty, source = self._run(text, return_attention=True)
        return self._first({"translation": self._strings(result.ids[:, :1], empty)[:, 0],
                            "score": tf.where(empty, 0.0, result.scores[:, 0]),
                            "target_pieces": self.target_tokenizer.id_to_piece(result.ids[:, 0]),
                            "source_pieces": self.source_tokenizer.id_to_piece(source),
                            "attention": result.attention[:, 0]}, n)
