"""Shared helpers for the captioning/image tests (a stand-in tokenizer and tiny image writers)."""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

FLICKR = "/work/shared/data/flickr8k"
WEIGHTS = "/work/shared/weights"
MOBILENET_035 = os.path.join(WEIGHTS, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5")


class StandInTokenizer:
    """Word-level stand-in with the pipelines.tokenizers interface: tokenize(tf.string [n]) -> RaggedTensor int32.

    Ids: PAD 0, UNK 1, BOS 2, EOS 3, then the given words from 4.
    """

    def __init__(self, words=()):
        keys = tf.constant(list(words) or ["a"])
        values = tf.range(4, 4 + tf.size(keys, out_type=tf.int64), dtype=tf.int64)
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=1)

    def tokenize(self, texts):
        words = tf.strings.split(texts)
        return tf.cast(tf.ragged.map_flat_values(self.table.lookup, words), tf.int32)


def write_image(path, size=(20, 16), mode="RGB", fmt="JPEG", seed=0):
    """Write a small random image with Pillow; returns the path."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(array[..., 0] if channels == 1 else array, mode)
    image.save(path, format=fmt)
    return str(path)
