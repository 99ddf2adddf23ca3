import os

import pytest
import tensorflow as tf

from pipelines.batching import (
    LengthStats,
    append_eos,
    default_bucket_boundaries,
    format_source,
    make_translation_dataset,
    prepend_bos,
    tokenize_pairs,
)
from pipelines.tokenizers import WordTokenizer, train_sentencepiece
from pipelines.translation import read_anki
from pipelines.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIAL_PIECES

SPA_ENG = "/work/shared/data/anki/spa-eng.txt"
# ids:            4      5      6       7      8     9      10     11
SOURCE_WORDS = ["ve", "hola", "corre", "tom", "es", "alto", "muy", "."]
TARGET_WORDS = ["go", "hi", "run", "tom", "is", "tall", "very", "."]
PAIRS = [
    ("Ve.", "Go."),
    ("Hola.", "Hi."),
    ("Tom es muy muy muy alto.", "Tom is very very very tall."),
    ("Corre", "Run"),
    ("Tom es alto.", "Tom is tall."),
]


@pytest.fixture(scope="module")
def tokenizers():
    return (
        WordTokenizer(list(SPECIAL_PIECES) + SOURCE_WORDS, name="src"),
        WordTokenizer(list(SPECIAL_PIECES) + TARGET_WORDS, name="tgt"),
    )


class CountingPairs:
    """pairs_fn that counts how often the pipeline reads the Python pairs."""

    def __init__(self, pairs):
        self.pairs, self.calls = pairs, 0

    def __call__(self):
        self.calls += 1
        return iter(self.pairs)


def rows(tensor):
    return tensor.numpy().tolist()


def test_append_eos_prepend_bos_and_format_source():
    ids = tf.ragged.constant([[5, 6, 7], [8], []], dtype=tf.int32)
    assert append_eos(ids).to_list() == [[5, 6, 7, EOS_ID], [8, EOS_ID], [EOS_ID]]
    assert prepend_bos(ids).to_list() == [[BOS_ID, 5, 6, 7], [BOS_ID, 8], [BOS_ID]]
    formatted = format_source(ids)
    assert formatted.dtype == tf.int32
    assert rows(formatted) == [[5, 6, 7, 3], [8, 3, 0, 0], [3, 0, 0, 0]]
    assert rows(format_source(ids, max_length=3)) == [[5, 6, 3], [8, 3, 0], [3, 0, 0]]


def test_default_bucket_boundaries_every_four_tokens():
    assert default_bucket_boundaries(10, 14) == [5, 9, 13]
    assert default_bucket_boundaries(4, 3) == []


def test_exact_batches_in_order_without_shuffle_or_buckets(tokenizers):
    dataset, stats = make_translation_dataset(
        CountingPairs(PAIRS),
        *tokenizers,
        batch_size=2,
        max_source_length=6,
        max_target_length=6,
        training=False,
        bucket_boundaries=[],
    )
    batches = list(dataset)
    assert len(batches) == 2
    (source, target_in), target_out = batches[0]
    assert rows(source) == [[4, 11, 3], [5, 11, 3]]
    assert rows(target_in) == [[2, 4, 11], [2, 5, 11]]
    assert rows(target_out) == [[4, 11, 3], [5, 11, 3]]
    (source, target_in), target_out = batches[1]
    assert rows(source) == [[6, 3, 0, 0, 0], [7, 8, 9, 11, 3]]
    assert rows(target_in) == [[2, 6, 0, 0, 0], [2, 7, 8, 9, 11]]
    assert rows(target_out) == [[6, 3, 0, 0, 0], [7, 8, 9, 11, 3]]
    for batch in batches:
        check_batch_invariants(batch, 6, 6)
    assert stats.count() == (4, 1)
    assert stats.summary() == "kept 4, dropped 1 longer than max length"


def test_pipeline_source_matches_format_source(tokenizers):
    dataset, _ = make_translation_dataset(
        CountingPairs(PAIRS[:2]),
        *tokenizers,
        batch_size=2,
        max_source_length=9,
        max_target_length=9,
        training=False,
        bucket_boundaries=[],
    )
    (source, _), _ = next(iter(dataset))
    expected = format_source(tokenizers[0].tokenize([pair[0] for pair in PAIRS[:2]]))
    assert rows(source) == rows(expected)


def test_length_filter_counts_include_eos(tokenizers):
    # lengths with EOS (resp. BOS): sources 3, 3, 8, 2, 5; targets 3, 3, 8, 2, 5
    examples = tokenize_pairs(CountingPairs(PAIRS), *tokenizers)
    for max_source_length, max_target_length, expected in [
        (2, 8, (1, 4)),
        (3, 8, (3, 2)),
        (5, 8, (4, 1)),
        (8, 8, (5, 0)),
        (8, 4, (3, 2)),
    ]:
        assert LengthStats(examples, max_source_length, max_target_length).count() == expected
    dataset, stats = make_translation_dataset(
        CountingPairs(PAIRS), *tokenizers, batch_size=8, max_source_length=8, max_target_length=4, training=False
    )
    assert (stats.kept, stats.dropped) == (None, None)
    assert sum(int(batch[1].shape[0]) for batch in dataset) == 3
    assert stats.count() == (3, 2) and (stats.kept, stats.dropped) == (3, 2)


def test_tokenises_once_across_epochs_and_counting(tokenizers):
    pairs_fn = CountingPairs(PAIRS * 10)
    dataset, stats = make_translation_dataset(
        pairs_fn,
        *tokenizers,
        batch_size=4,
        max_source_length=8,
        max_target_length=8,
        training=True,
        shuffle_buffer=100,
        seed=3,
    )
    assert stats.count() == (50, 0)
    epochs = [sorted(tuple(filter(None, row)) for batch in dataset for row in rows(batch[0][0])) for _ in range(2)]
    assert pairs_fn.calls == 1
    assert epochs[0] == epochs[1]  # same examples (as a multiset) every epoch


def test_file_cache_is_reused_without_reading_pairs(tokenizers, tmp_path):
    cache = str(tmp_path / "tokenized")
    dataset, _ = make_translation_dataset(
        CountingPairs(PAIRS),
        *tokenizers,
        batch_size=8,
        max_source_length=8,
        max_target_length=8,
        training=False,
        cache=cache,
    )
    first = [rows(batch[1]) for batch in dataset]
    assert any(name.startswith("tokenized") for name in os.listdir(tmp_path))

    def must_not_read():
        raise AssertionError("pairs read again although the cache is complete")

    cached, stats = make_translation_dataset(
        must_not_read, *tokenizers, batch_size=8, max_source_length=8, max_target_length=8, training=False, cache=cache
    )
    assert [rows(batch[1]) for batch in cached] == first
    assert stats.count() == (5, 0)


def test_shuffle_is_seeded_and_reshuffles_each_epoch(tokenizers):
    pairs = [(f"Tom es {'muy ' * (i % 3)}alto.", "Tom is tall.") for i in range(30)]

    def order(seed):
        dataset, _ = make_translation_dataset(
            lambda: iter(pairs),
            *tokenizers,
            batch_size=30,
            max_source_length=9,
            max_target_length=9,
            training=True,
            seed=seed,
            bucket_boundaries=[],
        )
        return [[tuple(row) for row in rows(batch[0][0])] for _ in range(2) for batch in dataset]

    first, again = order(5), order(5)
    assert first == again
    assert sorted(first[0]) == sorted(first[1]) and first[0] != first[1]


def check_batch_invariants(batch, max_source_length, max_target_length):
    (source, target_in), target_out = batch
    assert source.dtype == target_in.dtype == target_out.dtype == tf.int32
    assert source.shape[0] == target_in.shape[0] == target_out.shape[0]
    assert target_in.shape == target_out.shape
    assert source.shape[1] <= max_source_length and target_out.shape[1] <= max_target_length
    source, target_in, target_out = source.numpy(), target_in.numpy(), target_out.numpy()
    for ids, start, end in [(source, None, EOS_ID), (target_in, BOS_ID, None), (target_out, None, EOS_ID)]:
        lengths = (ids != PAD_ID).sum(axis=1)
        assert (lengths > 0).all()
        for row, length in zip(ids, lengths):
            assert (row[length:] == PAD_ID).all() and (row[:length] != PAD_ID).all()
            assert start is None or row[0] == start
            assert end is None or (row[length - 1] == end and (row[: length - 1] != end).all())
    real = (target_out[:, :-1] != PAD_ID) & (target_out[:, :-1] != EOS_ID)  # the pieces
    assert (target_in[:, 1:][real] == target_out[:, :-1][real]).all()
    return source.shape


def test_real_pairs_with_sentencepiece_and_buckets(tmp_path):
    if not os.path.exists(SPA_ENG):
        pytest.skip("real Anki data not present")
    pairs = list(read_anki(SPA_ENG, reverse=True, limit=400))[::2]
    spa = train_sentencepiece((source for source, _ in pairs), tmp_path, "spa", 360)
    eng = train_sentencepiece((target for _, target in pairs), tmp_path, "eng", 340)
    dataset, stats = make_translation_dataset(
        lambda: iter(pairs),
        spa,
        eng,
        batch_size=16,
        max_source_length=8,
        max_target_length=8,
        training=True,
        shuffle_buffer=64,
    )
    kept, dropped = stats.count()
    assert kept + dropped == 200 and kept > 0 and dropped > 0
    boundaries = [0] + default_bucket_boundaries(8, 8) + [9]
    seen = 0
    for batch in dataset:
        check_batch_invariants(batch, 8, 8)
        (source, target_in), _ = batch
        longest = max(
            int(tf.reduce_max(tf.reduce_sum(tf.cast(ids != PAD_ID, tf.int32), axis=1))) for ids in (source, target_in)
        )
        shortest = int(
            tf.reduce_min(
                tf.maximum(
                    tf.reduce_sum(tf.cast(source != PAD_ID, tf.int32), axis=1),
                    tf.reduce_sum(tf.cast(target_in != PAD_ID, tf.int32), axis=1),
                )
            )
        )
        bucket = max(index for index, bound in enumerate(boundaries) if bound <= shortest)
        assert longest < boundaries[bucket + 1]  # one bucket per batch
        seen += int(source.shape[0])
    assert seen == kept
    assert isinstance(stats, LengthStats)


def test_tokenize_pairs_yields_formatted_vectors(tokenizers):
    examples = list(tokenize_pairs(CountingPairs(PAIRS[:1]), *tokenizers).as_numpy_iterator())
    assert [[row.tolist() for row in example] for example in examples] == [[[4, 11, 3], [2, 4, 11], [4, 11, 3]]]


def test_rejects_bad_arguments(tokenizers):
    with pytest.raises(ValueError):
        make_translation_dataset(
            CountingPairs(PAIRS), *tokenizers, batch_size=0, max_source_length=8, max_target_length=8, training=False
        )
