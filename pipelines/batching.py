"""Translation batches: tokenise once, BOS/EOS, length filter, shuffle, bucketing, padding, prefetch.

Batches are ``((source_ids, target_in_ids), target_out_ids)``, all ``int32 [batch, time]`` right-padded
with PAD_ID (0): ``source_ids`` = pieces + EOS, ``target_in_ids`` = BOS + pieces, ``target_out_ids``
= pieces + EOS (teacher forcing: ``target_in[:, 1:] == target_out[:, :-1]`` on real tokens).

The pair strings are read from Python and tokenised by the in-graph tokenizers exactly once: the
tokenised examples are cached (in memory, or in a file given by ``cache``), so later epochs (and the
counting pass of :class:`LengthStats`) run no Python and re-tokenise nothing.
"""

import dataclasses
from typing import Callable, Iterable, Optional, Sequence, Tuple

import tensorflow as tf

from pipelines.vocab import BOS_ID, EOS_ID, PAD_ID

_TOKENIZE_BATCH = 1024
_COUNT_BATCH = 8192
_BUCKET_WIDTH = 4


def _add_column(ids: tf.RaggedTensor, token_id: int, at_end: bool) -> tf.RaggedTensor:
    column = tf.fill(tf.stack([ids.nrows(), 1]), tf.constant(token_id, ids.dtype))
    return tf.concat([ids, column] if at_end else [column, ids], axis=1)


def append_eos(ids: tf.RaggedTensor) -> tf.RaggedTensor:
    """int32 ragged [batch, (pieces)] -> ragged [batch, (pieces + 1)] with EOS_ID appended to each row."""
    return _add_column(ids, EOS_ID, at_end=True)


def prepend_bos(ids: tf.RaggedTensor) -> tf.RaggedTensor:
    """int32 ragged [batch, (pieces)] -> ragged [batch, (1 + pieces)] with BOS_ID prepended to each row."""
    return _add_column(ids, BOS_ID, at_end=False)


def format_source(ragged_ids: tf.RaggedTensor, max_length: Optional[int] = None) -> tf.Tensor:
    """Formats tokenised sources as the model expects them: pieces + EOS, right-padded with PAD_ID.

    The same :func:`append_eos` is used by :func:`make_translation_dataset`, so exported models format
    sources exactly as training did.

    Args:
      ragged_ids: int32 ``tf.RaggedTensor [batch, (pieces)]`` (a tokenizer's ``tokenize`` output).
      max_length: int or None (default); when given, pieces are truncated to ``max_length - 1`` so
        that rows (with EOS) are at most ``max_length`` long.

    Returns:
      int32 ``[batch, time]``, time = longest row + 1 (EOS), PAD_ID after each row's EOS.
    """
    # Dense ops only (no ragged slicing), so the same code converts to LiteRT: pieces cut to max_length - 1,
    # then EOS at each row's end, PAD after it; the same rows as append_eos(...).to_tensor().
    lengths = tf.cast(ragged_ids.row_lengths(), tf.int32)
    dense = ragged_ids.to_tensor(default_value=PAD_ID)
    if max_length is not None:
        lengths = tf.minimum(lengths, max_length - 1)
        dense = dense[:, : max_length - 1]
    width = tf.reduce_max(tf.concat([lengths, [0]], axis=0)) + 1
    dense = tf.pad(dense, [[0, 0], [0, 1]])[:, :width]
    positions = tf.range(width)[None, :]
    ends = lengths[:, None]
    eos = tf.where(tf.equal(positions, ends), tf.constant(EOS_ID, dense.dtype), tf.constant(PAD_ID, dense.dtype))
    return tf.where(positions < ends, dense, eos)


def _fits(max_source_length: int, max_target_length: int) -> Callable:
    """Predicate on a formatted example: source (with EOS) and target (with BOS or EOS) within the max."""

    def fits(source, target_in, target_out):
        del target_in  # same length as target_out
        return (tf.size(source) <= max_source_length) & (tf.size(target_out) <= max_target_length)

    return fits


@dataclasses.dataclass
class LengthStats:
    """Kept/dropped counts of the length filter of :func:`make_translation_dataset`.

    ``count()`` makes one pass over the cached tokenised examples (lengths only, no Python per
    example; it fills the cache if the dataset has not been iterated yet) and stores ``kept`` and
    ``dropped`` (ints, None until counted).
    """

    examples: tf.data.Dataset
    max_source_length: int
    max_target_length: int
    kept: Optional[int] = None
    dropped: Optional[int] = None

    def count(self) -> Tuple[int, int]:
        """Returns ``(kept, dropped)`` and stores them on the object."""
        fits = self.examples.map(_fits(self.max_source_length, self.max_target_length)).batch(_COUNT_BATCH)
        kept_dropped = fits.reduce(
            tf.zeros([2], tf.int64),
            lambda total, batch: total + tf.stack([tf.math.count_nonzero(batch), tf.math.count_nonzero(~batch)]),
        )
        self.kept, self.dropped = (int(value) for value in kept_dropped.numpy())
        return self.kept, self.dropped

    def summary(self) -> str:
        """``"kept N, dropped M longer than max length"`` (counts first if needed)."""
        if self.kept is None:
            self.count()
        return f"kept {self.kept}, dropped {self.dropped} longer than max length"


def tokenize_pairs(
    pairs_fn: Callable[[], Iterable[Tuple[str, str]]], source_tokenizer, target_tokenizer, cache: Optional[str] = None
) -> tf.data.Dataset:
    """Tokenises a stream of pairs once and caches the formatted examples.

    Strings come from ``tf.data.Dataset.from_generator(pairs_fn)`` in batches of 1024 and are tokenised
    by the in-graph tokenizers (no Python per example beyond reading the strings).

    Args:
      pairs_fn: zero-argument callable returning an iterable of (source, target) str pairs
        (called again only if the cache is not complete).
      source_tokenizer, target_tokenizer: objects with ``tokenize(tf.string [batch]) -> ragged int32``.
      cache: file name prefix for ``Dataset.cache`` or None (default) for an in-memory cache.

    Returns:
      ``tf.data.Dataset`` of ``(source, target_in, target_out)`` int32 ``[length]`` vectors:
      pieces + EOS, BOS + pieces, pieces + EOS (unfiltered, unshuffled, unpadded).
    """
    strings = tf.data.Dataset.from_generator(
        pairs_fn, output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string))
    )

    def tokenize(sources, targets):
        target_pieces = target_tokenizer.tokenize(targets)
        return (append_eos(source_tokenizer.tokenize(sources)), prepend_bos(target_pieces), append_eos(target_pieces))

    # Unbatched ragged rows have a RaggedTensorSpec of ragged_rank 0 but are plain tensors: the
    # identity map re-types them as TensorSpec, which padded_batch requires.
    examples = strings.batch(_TOKENIZE_BATCH).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    examples = examples.unbatch().map(lambda *vectors: vectors)
    return examples.cache(cache or "")


def default_bucket_boundaries(max_source_length: int, max_target_length: int, width: int = _BUCKET_WIDTH) -> list:
    """Bucket upper bounds every ``width`` (default 4) tokens up to the larger max length:
    ``[width+1, 2*width+1, ...]`` for ``bucket_by_sequence_length`` (bounds are exclusive).
    """
    return list(range(width + 1, max(max_source_length, max_target_length) + 1, width))


def make_translation_dataset(
    pairs_fn: Callable[[], Iterable[Tuple[str, str]]],
    source_tokenizer,
    target_tokenizer,
    batch_size: int,
    max_source_length: int,
    max_target_length: int,
    training: bool,
    shuffle_buffer: int = 10000,
    seed: int = 0,
    bucket_boundaries: Optional[Sequence[int]] = None,
    cache: Optional[str] = None,
) -> Tuple[tf.data.Dataset, LengthStats]:
    """Builds the translation ``tf.data`` pipeline.

    Steps: :func:`tokenize_pairs` (tokenise once, EOS/BOS, cache); drop examples whose source
    (pieces + EOS) is longer than ``max_source_length`` or whose target (pieces + EOS) is longer than
    ``max_target_length``; shuffle (training only, ``shuffle_buffer``, ``seed``, reshuffled each
    epoch); bucket by length (``tf.data.Dataset.bucket_by_sequence_length`` on
    max(source, target) length) into batches of ``batch_size``, right-padded with PAD_ID (0) to the
    longest example of the batch; ``prefetch(AUTOTUNE)``.

    Args:
      pairs_fn: zero-argument callable returning an iterable of (source, target) str pairs.
      source_tokenizer, target_tokenizer: tokenizers of :mod:`pipelines.tokenizers`.
      batch_size: int, examples per batch (the last batch of each bucket may be smaller).
      max_source_length, max_target_length: ints, maximum lengths including EOS (resp. BOS/EOS).
      training: bool; shuffle only when True.
      shuffle_buffer: int, default 10000.
      seed: int, default 0, shuffle seed.
      bucket_boundaries: increasing ints (exclusive upper bounds) or None (default:
        :func:`default_bucket_boundaries`, every 4 tokens); ``[]`` means a single bucket.
      cache: file name prefix for the tokenised-example cache, or None (default) for memory.

    Returns:
      ``(dataset, length_stats)``: the ``tf.data.Dataset`` of ``((source_ids, target_in_ids),
      target_out_ids)`` int32 ``[batch, time]``, and a :class:`LengthStats` whose ``count()`` /
      ``summary()`` give the kept/dropped counts of the length filter.

    Raises:
      ValueError: non-positive batch size or max lengths below 2.
    """
    if batch_size < 1 or min(max_source_length, max_target_length) < 2:
        raise ValueError(
            f"Need batch_size >= 1 and max lengths >= 2, got {batch_size}, {max_source_length}, {max_target_length}"
        )
    examples = tokenize_pairs(pairs_fn, source_tokenizer, target_tokenizer, cache)
    dataset = examples.filter(_fits(max_source_length, max_target_length))
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    boundaries = (
        default_bucket_boundaries(max_source_length, max_target_length)
        if bucket_boundaries is None
        else list(bucket_boundaries)
    )
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda source, target_in, target_out: tf.maximum(tf.size(source), tf.size(target_in)),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(PAD_ID, PAD_ID, PAD_ID),
    )
    dataset = dataset.map(lambda source, target_in, target_out: ((source, target_in), target_out))
    return dataset.prefetch(tf.data.AUTOTUNE), LengthStats(examples, max_source_length, max_target_length)
