"""pipelines.feature_cache.FeatureCache: compute once, content-keyed, invalidated by backbone key."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from captioning_helpers import write_image

from pipelines.feature_cache import FeatureCache


class CountingFeatureFn:
    """images [b, H, W, 3] -> [b, 4, 3] (2x2 grid); counts how many images it saw."""

    image_size = (8, 8)

    def __init__(self, scale=1.0):
        self.images = 0
        self.scale = scale

    def __call__(self, images):
        self.images += int(images.shape[0])
        return self.scale * tf.reshape(tf.image.resize(images, (2, 2)), (-1, 4, 3))


@pytest.fixture
def paths(tmp_path):
    return [write_image(tmp_path / f"img{i}.jpg", seed=i) for i in range(5)]


def test_features_computed_once_then_reused(tmp_path, paths):
    fn = CountingFeatureFn()
    cache = FeatureCache(tmp_path / "cache", "toy;input=8x8")
    entries = cache.features_for(paths, fn, batch_size=2, progress=False)
    assert fn.images == 5 and cache.computed == 5
    assert len(entries) == 5 and all(e.endswith(".npy") and os.path.isfile(e) for e in entries)
    first = [FeatureCache.load(e) for e in entries]
    assert all(f.shape == (4, 3) and f.dtype == np.float32 for f in first)

    again = FeatureCache(tmp_path / "cache", "toy;input=8x8")  # a new run, same directory and key
    assert again.features_for(paths, fn) == entries
    assert fn.images == 5 and again.computed == 0  # feature_fn ran on zero images
    assert again.features_for(paths, None) == entries  # no feature_fn needed when nothing is missing
    # only the new image is computed
    extra = write_image(tmp_path / "new.png", fmt="PNG", seed=9)
    again.features_for(paths + [extra], fn)
    assert fn.images == 6
    # no temporary files left behind
    leftovers = [f for _, _, files in os.walk(tmp_path / "cache") for f in files if f.endswith(".tmp")]
    assert leftovers == []


def test_key_is_image_content_not_path(tmp_path, paths):
    fn = CountingFeatureFn()
    cache = FeatureCache(tmp_path / "cache", "toy")
    cache.features_for(paths[:1], fn)
    copy = shutil.copy(paths[0], tmp_path / "renamed_copy.jpg")
    assert cache.contains(copy)
    cache.features_for([copy, paths[0]], fn)
    assert fn.images == 1


def test_changed_backbone_key_gives_new_entries(tmp_path, paths):
    fn_a, fn_b = CountingFeatureFn(1.0), CountingFeatureFn(2.0)
    a = FeatureCache(tmp_path / "cache", "backbone=toy;trainable=False")
    b = FeatureCache(tmp_path / "cache", "backbone=toy;trainable=2")
    entries_a = a.features_for(paths, fn_a)
    assert not any(b.contains(p) for p in paths)
    entries_b = b.features_for(paths, fn_b)
    assert fn_b.images == 5 and set(entries_a).isdisjoint(entries_b)
    np.testing.assert_allclose(2 * FeatureCache.load(entries_a[0]), FeatureCache.load(entries_b[0]))
    with open(os.path.join(b.key_dir, "backbone_key.txt")) as handle:
        assert handle.read().strip() == "backbone=toy;trainable=2"


def test_missing_feature_fn_or_bad_output_raises(tmp_path, paths):
    cache = FeatureCache(tmp_path / "cache", "toy")
    with pytest.raises(ValueError, match="no feature_fn"):
        cache.features_for(paths, None)
    with pytest.raises(ValueError, match=r"\[batch, regions, channels\]"):
        cache.features_for(paths, lambda images: tf.zeros((images.shape[0], 5)), image_size=8)
    with pytest.raises(ValueError):
        FeatureCache(tmp_path, "")
