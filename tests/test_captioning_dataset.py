"""pipelines.captioning.make_captioning_dataset: batch structure, padding, length filter, feature path."""

import os

import numpy as np
import pytest
import tensorflow as tf
from captioning_helpers import FLICKR, StandInTokenizer, write_image

from pipelines.captioning import make_captioning_dataset, read_flickr8k
from pipelines.feature_cache import FeatureCache
from pipelines.vocab import BOS_ID, EOS_ID, PAD_ID

WORDS = ["a", "dog", "cat", "runs", "red", "ball", "sits", "on", "the", "mat"]


@pytest.fixture
def items(tmp_path):
    a = write_image(tmp_path / "a.jpg", seed=1)
    b = write_image(tmp_path / "b.png", fmt="PNG", seed=2)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return {
        a: ["A dog runs.", "A DOG, a red ball", "the cat sits on the mat and a dog runs on the mat"],
        b: ["A cat sits on the mat."],
        str(bad): ["A dog."],
    }


def test_image_dataset_shapes_values_and_counts(items):
    stats = {}
    dataset = make_captioning_dataset(
        items,
        StandInTokenizer(WORDS),
        batch_size=8,
        max_caption_length=6,
        training=False,
        image_size=(24, 20),
        stats=stats,
    )
    assert stats == {
        "images": 2,
        "skipped_images": 1,
        "captions": 4,
        "dropped_too_long": 1,
        "dropped_empty": 0,
        "examples": 3,
    }
    spec = dataset.element_spec
    assert spec[0][0].shape.as_list() == [None, 24, 20, 3] and spec[0][0].dtype == tf.float32
    assert spec[0][1].dtype == tf.int32 and spec[1].dtype == tf.int32
    (images, target_in), target_out = next(iter(dataset))
    assert images.shape == (3, 24, 20, 3) and float(tf.reduce_max(images)) <= 255.0
    target_in, target_out = target_in.numpy(), target_out.numpy()
    assert target_in.shape == target_out.shape == (3, 7)  # longest kept caption: 6 pieces + BOS/EOS
    assert (target_in[:, 0] == BOS_ID).all()
    # "a dog runs" -> ids 4 5 7 ; "a dog a red ball" -> 4 5 4 8 9 ; "a cat sits on the mat" -> 4 6 10 11 12 13
    np.testing.assert_array_equal(target_in[0], [BOS_ID, 4, 5, 7, PAD_ID, PAD_ID, PAD_ID])
    np.testing.assert_array_equal(target_out[0], [4, 5, 7, EOS_ID, PAD_ID, PAD_ID, PAD_ID])
    np.testing.assert_array_equal(target_out[1], [4, 5, 4, 8, 9, EOS_ID, PAD_ID])
    np.testing.assert_array_equal(target_out[2], [4, 6, 10, 11, 12, 13, EOS_ID])
    # teacher forcing: target_in shifted left equals target_out where both are real tokens
    np.testing.assert_array_equal(target_in[:, 1:][target_in[:, 1:] > 0], target_out[:, :-1][target_in[:, 1:] > 0])


def test_training_dataset_shuffles_reproducibly(items):
    def order(seed):
        good = {k: v for k, v in items.items() if not k.endswith("bad.jpg")}
        ds = make_captioning_dataset(
            good, StandInTokenizer(WORDS), batch_size=2, max_caption_length=20, training=True, image_size=8, seed=seed
        )
        return [tuple(i for i in row if i) for (_, t_in), _ in ds for row in t_in.numpy().tolist()]

    first = order(3)
    assert len(first) == 4 and sorted(first) == sorted(order(4))
    assert first == order(3)


def test_feature_dataset_reads_cache(items, tmp_path):
    calls = []

    def feature_fn(images):
        calls.append(int(images.shape[0]))
        return tf.reshape(tf.image.resize(images, (2, 2)), (-1, 4, 3))

    cache = FeatureCache(tmp_path / "cache", "toy-backbone")
    stats = {}
    dataset = make_captioning_dataset(
        items,
        StandInTokenizer(WORDS),
        batch_size=4,
        max_caption_length=10,
        training=False,
        image_size=16,
        features=cache,
        feature_fn=feature_fn,
        stats=stats,
    )
    assert sum(calls) == 2 and stats["examples"] == 3 and stats["dropped_too_long"] == 1
    (features, target_in), target_out = next(iter(dataset))
    assert features.dtype == tf.float32 and features.shape == (3, 4, 3)
    assert dataset.element_spec[0][0].shape.as_list() == [None, 4, 3]
    # the three captions of a.jpg share the same cached features
    np.testing.assert_array_equal(features[0].numpy(), features[1].numpy())
    again = make_captioning_dataset(
        items,
        StandInTokenizer(WORDS),
        batch_size=4,
        max_caption_length=10,
        training=False,
        features=cache,
        feature_fn=feature_fn,
    )
    assert sum(calls) == 2
    np.testing.assert_array_equal(next(iter(again))[0][0].numpy(), features.numpy())


@pytest.mark.skipif(not os.path.isdir(FLICKR), reason=f"{FLICKR} not available")
def test_real_flickr_images_batch():
    data = read_flickr8k(os.path.join(FLICKR, "subset_captions.tsv"), os.path.join(FLICKR, "images"), limit=4)
    dataset = make_captioning_dataset(
        data, StandInTokenizer(WORDS), batch_size=20, max_caption_length=40, training=True, image_size=64
    )
    (images, target_in), target_out = next(iter(dataset))
    assert images.shape == (20, 64, 64, 3) and target_in.shape == target_out.shape
    assert (target_out.numpy() == EOS_ID).sum() == 20


def test_no_examples_left_raises(items):
    with pytest.raises(ValueError, match="no captioning examples"):
        make_captioning_dataset(
            items, StandInTokenizer(WORDS), batch_size=2, max_caption_length=1, training=False, image_size=8
        )
    with pytest.raises(ValueError, match="image_size"):
        make_captioning_dataset(items, StandInTokenizer(WORDS), batch_size=2, max_caption_length=5, training=False)


def test_with_real_word_tokenizer_when_available(items):
    tokenizers = pytest.importorskip("pipelines.tokenizers", reason="pipelines.tokenizers not written yet")
    from pipelines.vocab import SPECIAL_PIECES

    tokenizer = tokenizers.WordTokenizer(list(SPECIAL_PIECES) + WORDS)
    dataset = make_captioning_dataset(
        items, tokenizer, batch_size=8, max_caption_length=6, training=False, image_size=8
    )
    (_, target_in), target_out = next(iter(dataset))
    np.testing.assert_array_equal(target_out.numpy()[0][:4], [4, 5, 7, EOS_ID])
