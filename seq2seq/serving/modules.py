"""Serving modules: raw inputs in, text out, entirely in TensorFlow ops (what `seq2seq export` saves).

A `ServingModule` is a `tf.Module` whose `tf.function`s hold the whole path from the raw input to text —
for translation: normalisation, SentencePiece (or word) tokenisation, the encoder, batched beam search /
greedy / sampling over the decoder's step (`seq2seq.decoding.decode_batch`), detokenisation; for
captioning: image decoding by content, resizing, the CNN backbone and the same decoding. The CLI,
evaluation and the server call the very graph that `seq2seq.serving.export.export_module` saves, so an
export gives exactly the outputs of the model directory it came from.

Every module has three functions over a batch of inputs `tf.string [batch]` (sentences, or encoded image
bytes), each exported as a signature:

| function | signature name | outputs |
|---|---|---|
| `best` | `serving_default` | {OUTPUT: tf.string [batch], "score": float32 [batch]} |
| `nbest` | `<verb>_nbest` | {OUTPUT + "s": tf.string [batch, n_best], "scores": float32 [batch, n_best]} |
| `with_attention` | `<verb>_with_attention` | {OUTPUT, "score", "target_pieces": tf.string [batch, time] (EOS included, "<pad>" after it), "lengths": int32 [batch], "attention": float32 [batch, time, memory_time]} plus the task's extras |

with OUTPUT = "translation" (verb "translate", input "text") or "caption" (verb "caption", input
"image_bytes"). A translation module also has `score` (signature `score`): (text, target) → the model's
log-probability of each target, by teacher forcing. Scores are length-normalised log-probabilities for beam search and summed log-probabilities
otherwise. An empty batch (0 inputs) gives outputs with 0 rows.
"""

from __future__ import annotations

import abc
import dataclasses
import sys
from typing import Callable, Optional, Sequence

import tensorflow as tf
from tqdm import tqdm

from pipelines.batching import append_eos, format_source, prepend_bos
from pipelines.images import decode_image, resize_image
from pipelines.vocab import PAD_ID
from seq2seq.config import DecodeConfig
from seq2seq.decoding import decode_batch, gnmt_length_penalty


def detokenize_nbest(tokenizer, ids, empty=None):
    """Detokenise n-best ids in-graph: int32 [batch, n, time] -> tf.string [batch, n].

    Args:
      tokenizer: a `pipelines.tokenizers` tokenizer (its `detokenize` stops at EOS, drops PAD/BOS/EOS).
      ids: int32 [batch, n, time], e.g. `decode_batch(...).ids`.
      empty: optional bool [batch]; rows where it is True give "" (inputs with nothing to decode).
    """
    if (
        empty is not None
    ):  # all-PAD rows detokenise to "" (ids are masked rather than strings: LiteRT has no string select)
        ids = tf.where(empty[:, None, None], tf.constant(PAD_ID, ids.dtype), ids)
    shape = tf.shape(ids)
    flat = tf.reshape(ids, [shape[0] * shape[1], shape[2]])
    return tf.reshape(tokenizer.detokenize(flat), shape[:2])


class ServingModule(tf.Module, abc.ABC):
    """Base of the serving modules: batching guard, decoding, n-best detokenisation, the three functions.

    Subclasses set INPUT (the signature's input name), OUTPUT (the best output's name) and VERB (the prefix of
    the signature names), and implement `encode_inputs` and `placeholder_input`.

    Args:
      model: a built `seq2seq.model.seq2seq.Seq2Seq` (or anything with its `encode` / `step`).
      target_tokenizer: the `pipelines.tokenizers` tokenizer of the output text.
      decode: DecodeConfig used by every function.
      name: the tf.Module name.
      batch_size: None (default: any number of inputs per call) or a fixed number of inputs per call (the
        LiteRT export traces with 1, see `seq2seq.serving.litert`).
    """

    INPUT = ""
    OUTPUT = ""
    VERB = ""

    def __init__(self, model, target_tokenizer, decode: DecodeConfig, name: str, batch_size: Optional[int] = None):
        super().__init__(name=name)
        self.model = model
        self.target_tokenizer = target_tokenizer
        self._decode = decode
        self.decode_config = dataclasses.asdict(decode)
        spec = [self.input_spec(batch_size)]
        self.best = tf.function(self._best, input_signature=spec)
        self.nbest = tf.function(self._nbest, input_signature=spec)
        self.with_attention = tf.function(self._with_attention, input_signature=spec)

    # -- what a task provides ---------------------------------------------------------------------

    @abc.abstractmethod
    def encode_inputs(self, inputs):
        """inputs tf.string [batch] -> (model source, source lengths int32 [batch] or None,
        empty bool [batch] (rows with nothing to decode), extras {name: tensor [batch, ...]} for `with_attention`).
        """

    def input_spec(self, batch_size: Optional[int]) -> tf.TensorSpec:
        """The signature's input: tf.string [batch] named INPUT (sentences or encoded images)."""
        return tf.TensorSpec([batch_size], tf.string, name=self.INPUT)

    @abc.abstractmethod
    def placeholder_input(self) -> tf.Tensor:
        """One valid input, tf.string [1], decoded in place of an empty batch (RNN layers need a row)."""

    def over_long_inputs(self, inputs) -> list[tuple[int, int]]:
        """[(index, length)] of the inputs that are cut before decoding (eager, host side). Default: none."""
        return []

    # -- shared ----------------------------------------------------------------------------------

    def signatures(self) -> dict:
        """{signature name: tf.function} for `tf.saved_model.save`."""
        return {
            "serving_default": self.best,
            f"{self.VERB}_nbest": self.nbest,
            f"{self.VERB}_with_attention": self.with_attention,
        }

    def _decode_rows(self, inputs, return_attention=False):
        n = tf.shape(inputs)[0]
        inputs = tf.cond(n > 0, lambda: inputs, self.placeholder_input)
        source, lengths, empty, extras = self.encode_inputs(inputs)
        result = decode_batch(self.model, source, lengths, self._decode, return_attention=return_attention)
        return result, empty, extras, n

    @staticmethod
    def _first(outputs: dict, n) -> dict:
        return tf.nest.map_structure(lambda x: x[:n], outputs)

    def _best(self, inputs):
        result, empty, _, n = self._decode_rows(inputs)
        text = detokenize_nbest(self.target_tokenizer, result.ids[:, :1], empty)[:, 0]
        return self._first({self.OUTPUT: text, "score": tf.where(empty, 0.0, result.scores[:, 0])}, n)

    def _nbest(self, inputs):
        result, empty, _, n = self._decode_rows(inputs)
        return self._first(
            {
                self.OUTPUT + "s": detokenize_nbest(self.target_tokenizer, result.ids, empty),
                "scores": tf.where(empty[:, None], 0.0, result.scores),
            },
            n,
        )

    def _with_attention(self, inputs):
        result, empty, extras, n = self._decode_rows(inputs, return_attention=True)
        return self._first(
            {
                self.OUTPUT: detokenize_nbest(self.target_tokenizer, result.ids[:, :1], empty)[:, 0],
                "score": tf.where(empty, 0.0, result.scores[:, 0]),
                "target_pieces": self.target_tokenizer.id_to_piece(result.ids[:, 0]),
                "lengths": result.lengths[:, 0],
                "attention": result.attention[:, 0],
                **extras,
            },
            n,
        )


class TranslationModule(ServingModule):
    """Raw sentences → translations (input "text", output "translation", signatures `translate_*`).

    Args:
      model: a built `Seq2Seq` translation model.
      source_tokenizer, target_tokenizer: `pipelines.tokenizers` tokenizers (tf.Modules).
      decode: DecodeConfig used by every function.
      max_source_length: int; longer inputs are cut to their first `max_source_length - 1` pieces (+ EOS),
        the length the model was trained on.
      batch_size: None (any number of sentences per call) or a fixed number (see `ServingModule`).

    Inputs that are empty after normalisation give translation "" and score 0.0. Characters never seen in
    training: SentencePiece's byte fallback (when enabled) gives them byte pieces, otherwise they become
    <unk>; either way decoding proceeds. `with_attention` adds "source_pieces": tf.string [batch, source_time].
    """

    INPUT, OUTPUT, VERB = "text", "translation", "translate"

    def __init__(
        self,
        model,
        source_tokenizer,
        target_tokenizer,
        decode: DecodeConfig,
        max_source_length: int,
        batch_size: Optional[int] = None,
    ):
        super().__init__(model, target_tokenizer, decode, name="translator", batch_size=batch_size)
        self.source_tokenizer = source_tokenizer
        self.max_source_length = int(max_source_length)
        # A SavedModel traces every tf.function of the module: an ensemble (no teacher-forced call) gets none.
        self.score = None
        if callable(model):
            self.score = tf.function(
                self._score,
                input_signature=[
                    tf.TensorSpec([None], tf.string, name="text"),
                    tf.TensorSpec([None], tf.string, name="target"),
                ],
            )

    def signatures(self) -> dict:
        """The three decoding signatures plus `score` (text, target → log-probabilities) when the model scores by
        teacher forcing (a single model; an ensemble decodes but has no teacher-forced call).
        """
        if self.score is None:
            return super().signatures()
        return {**super().signatures(), "score": self.score}

    def _score(self, text, target):
        """The model's log-probability of each target given its source, by teacher forcing.

        Args:
          text: tf.string [batch], sources (normalised and tokenised as for translation; cut to
            `max_source_length` pieces like every input).
          target: tf.string [batch], the target sentences to score (tokenised with the target tokenizer, never
            cut: a longer target than training saw is scored in full).

        Returns:
          {"log_prob": float32 [batch] (natural log, EOS included: the sum of the per-step log-probabilities that
          decoding computes for the same tokens), "per_token": float32 [batch] (log_prob / tokens),
          "normalized": float32 [batch] (log_prob / GNMT length penalty with `decode.length_penalty`, the score
          beam search ranks by), "tokens": int32 [batch] (target pieces + EOS)}. An empty batch gives 0 rows.
        """
        n = tf.size(text)
        text = tf.cond(n > 0, lambda: text, self.placeholder_input)
        target = tf.cond(n > 0, lambda: target, self.placeholder_input)
        source, _, _, _ = self.encode_inputs(text)
        pieces = self.target_tokenizer.tokenize(target)
        target_in, target_out = prepend_bos(pieces).to_tensor(), append_eos(pieces).to_tensor()
        logits = self.model((source, target_in), training=False)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        token_log_probs = tf.gather(log_probs, target_out, batch_dims=2)
        real = tf.cast(tf.not_equal(target_out, 0), tf.float32)
        total = tf.reduce_sum(token_log_probs * real, axis=1)
        tokens = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
        return self._first(
            {
                "log_prob": total,
                "per_token": total / tf.cast(tokens, tf.float32),
                "normalized": total / gnmt_length_penalty(tokens, self._decode.length_penalty),
                "tokens": tokens,
            },
            n,
        )

    def over_long_inputs(self, inputs) -> list[tuple[int, int]]:
        """[(index, pieces + EOS)] of the sentences longer than `max_source_length`: only their first
        `max_source_length - 1` pieces are translated (see `format_source`).
        """
        if not len(inputs):
            return []
        lengths = self.source_tokenizer.tokenize(tf.constant(list(inputs), tf.string)).row_lengths().numpy() + 1
        return [(i, int(n)) for i, n in enumerate(lengths) if n > self.max_source_length]

    def placeholder_input(self):
        return tf.constant([""])

    def encode_inputs(self, inputs):
        pieces = self.source_tokenizer.tokenize(inputs)
        source = format_source(pieces, self.max_source_length)
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(source, 0), tf.int32), axis=1)
        return (
            source,
            lengths,
            tf.equal(pieces.row_lengths(), 0),
            {"source_pieces": self.source_tokenizer.id_to_piece(source)},
        )

    @property
    def translate(self):
        """`best`: text tf.string [batch] → {"translation", "score"}."""
        return self.best

    @property
    def translate_nbest(self):
        """`nbest`: text tf.string [batch] → {"translations", "scores"} [batch, n_best]."""
        return self.nbest

    @property
    def translate_with_attention(self):
        """`with_attention`: best translation with its pieces, the source pieces and the attention."""
        return self.with_attention


class CaptioningModule(ServingModule):
    """Encoded image bytes → captions (input "image_bytes", output "caption", signatures `caption_*`).

    Show, Attend and Tell (Xu et al., 2015) at serving time: decode by content
    (`pipelines.images.decode_image`: JPEG/PNG/GIF/BMP, grayscale → RGB, alpha dropped), bilinear resize to
    the backbone's input size, the backbone's `preprocess_input` and CNN, the image encoder, decoding and
    detokenisation. Bytes that are not a decodable image make the call fail with
    `tf.errors.InvalidArgumentError` (callers check files first, see `pipelines.images.check_images`).
    The attention of `with_attention` is over the regions of `grid_shape` in row-major order.

    Args:
      model: a built captioning `Seq2Seq` (its encoder an `ImageEncoder`, fed images here).
      tokenizer: the caption tokenizer (`pipelines.tokenizers`).
      decode: DecodeConfig; `max_length` is capped at `max_caption_length + 1` (EOS) and the relative
        length limit is unused (an image has no source length).
      max_caption_length: int, `data.max_target_length`, the longest caption trained on (pieces).
      batch_size: None (any number of images per call) or a fixed number (see `ServingModule`).
    """

    INPUT, OUTPUT, VERB = "image_bytes", "caption", "caption"

    def __init__(
        self, model, tokenizer, decode: DecodeConfig, max_caption_length: int, batch_size: Optional[int] = None
    ):
        decode = dataclasses.replace(
            decode, max_length=min(decode.max_length, int(max_caption_length) + 1), max_length_ratio=None
        )
        self.image_size = tuple(model.encoder.image_size)
        self.grid_shape = tuple(model.encoder.grid_shape)
        super().__init__(model, tokenizer, decode, name="captioner", batch_size=batch_size)

    def placeholder_input(self):
        return tf.reshape(tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8)), [1])

    def encode_inputs(self, inputs):
        images = tf.map_fn(
            lambda data: decode_image(data, self.image_size),
            inputs,
            fn_output_signature=tf.TensorSpec([*self.image_size, 3], tf.float32),
        )
        return images, None, tf.zeros_like(inputs, tf.bool), {}

    @property
    def caption(self):
        """`best`: image_bytes tf.string [batch] → {"caption", "score"}."""
        return self.best

    @property
    def caption_nbest(self):
        """`nbest`: image_bytes tf.string [batch] → {"captions", "scores"} [batch, n_best]."""
        return self.nbest

    @property
    def caption_with_attention(self):
        """`with_attention`: best caption with its pieces and the attention over the image regions."""
        return self.with_attention


class PixelCaptioningModule(CaptioningModule):
    """Decoded RGB pixels → captions: `CaptioningModule` without its image decoding (input "image").

    For LiteRT, which has no JPEG/PNG/GIF/BMP decoding kernels: the caller decodes the image (any size, RGB) and
    the graph resizes it as `pipelines.images.decode_image` does (bilinear, `resize_image`), then runs the
    backbone, the image encoder and decoding. Signature input: uint8 [batch, height, width, 3].
    """

    INPUT = "image"

    def input_spec(self, batch_size):
        return tf.TensorSpec([batch_size, None, None, 3], tf.uint8, name=self.INPUT)

    def placeholder_input(self):
        return tf.zeros([1, 1, 1, 3], tf.uint8)

    def encode_inputs(self, inputs):
        return resize_image(inputs, self.image_size), None, tf.zeros(tf.shape(inputs)[:1], tf.bool), {}


def predict_batches(
    function: Callable,
    input_name: str,
    output_name: str,
    inputs: Sequence,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[list[str], list[float]]:
    """Run a serving function (a module's `best` or an export's `serving_default`) over `inputs` in batches.

    Args:
      function: callable(**{input_name: tf.string [b]}) -> {output_name: tf.string [b], "score": float32 [b]}.
      input_name, output_name: e.g. "text" / "translation", "image_bytes" / "caption".
      inputs: str sentences or bytes of encoded images.
      batch_size: inputs per call (default 64).
      progress: draw a progress bar (tqdm, on stderr when it is a terminal; redirected logs get none).

    Returns:
      (texts: list[str], scores: list[float]) aligned with `inputs`.
    """
    texts, scores = [], []
    starts = range(0, len(inputs), batch_size)
    for start in tqdm(starts, desc=output_name, unit="batch", disable=not progress or not sys.stderr.isatty()):
        out = function(**{input_name: tf.constant(list(inputs[start : start + batch_size]), tf.string)})
        texts += [t.decode("utf-8") for t in out[output_name].numpy()]
        scores += [float(s) for s in out["score"].numpy()]
    return texts, scores
