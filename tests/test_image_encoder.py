"""seq2seq.model.image_encoder: backbones, ImageEncoder contract, feature equivalence, .keras round trip."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from captioning_helpers import FLICKR, MOBILENET_035, write_image

from pipelines.feature_cache import FeatureCache
from seq2seq.model.image_encoder import (
    BACKBONES,
    BackboneWeightsUnavailableError,
    ImageEncoder,
    build_backbone,
)

needs_weights = pytest.mark.skipif(not os.path.isfile(MOBILENET_035), reason=f"{MOBILENET_035} not available")
SIZE = 96  # a MobileNetV2 size Keras knows; grid 3x3


def _images(n=2, size=SIZE, seed=0):
    return tf.random.stateless_uniform((n, size, size, 3), seed=(seed, 1), minval=0.0, maxval=255.0)


def test_registry_lists_required_backbones():
    for name in ("MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "InceptionV3", "ResNet50", "SmallCNN"):
        assert name in BACKBONES
    assert BACKBONES["InceptionV3"].input_size == 299


@needs_weights
def test_mobilenet_v2_local_weights_encoder_contract():
    encoder = ImageEncoder(32, backbone="MobileNetV2", backbone_weights=MOBILENET_035, alpha=0.35, input_size=SIZE)
    memory, mask, states = encoder(_images())
    assert memory.shape == (2, 9, 32) and memory.dtype == tf.float32
    assert mask.shape == (2, 9) and mask.dtype == tf.bool and bool(tf.reduce_all(mask))
    assert isinstance(states, list) and len(states) == 1 and states[0].shape == (2, 32)
    np.testing.assert_allclose(states[0], tf.reduce_mean(memory, axis=1), atol=1e-6)
    assert encoder.model_input_shape == (SIZE, SIZE, 3)
    assert encoder.num_regions == 9 and encoder.feature_channels == 1280
    assert not encoder.backbone.trainable_weights  # frozen by default
    backbone_state = ImageEncoder(
        8, backbone_weights=MOBILENET_035, alpha=0.35, input_size=SIZE, final_state="backbone"
    )
    assert backbone_state(_images())[2][0].shape == (2, 1280)


@needs_weights
def test_pretrained_weights_are_loaded_not_random():
    loaded = build_backbone("MobileNetV2", weights=MOBILENET_035, alpha=0.35, input_size=SIZE)
    random = build_backbone("MobileNetV2", weights=None, alpha=0.35, input_size=SIZE)
    kernel = lambda m: m.get_layer("mobilenetv2_0.35_96").get_layer("Conv1").kernel.numpy()  # noqa: E731
    assert not np.allclose(kernel(loaded), kernel(random))


@needs_weights
def test_encoder_on_images_equals_encoder_on_cached_features(tmp_path):
    src = os.path.join(FLICKR, "images")
    if os.path.isdir(src):
        paths = [os.path.join(src, name) for name in sorted(os.listdir(src))[:5]]
    else:
        paths = [write_image(tmp_path / f"{i}.jpg", size=(120, 90), seed=i) for i in range(5)]
    encoder = ImageEncoder(16, backbone_weights=MOBILENET_035, alpha=0.35, input_size=SIZE, inputs_are_features=True)
    cache = FeatureCache(tmp_path / "cache", encoder.backbone_key)
    entries = cache.features_for(paths, encoder.feature_fn, batch_size=3, progress=False)
    assert cache.computed == 5
    features = np.stack([FeatureCache.load(e) for e in entries])
    assert features.shape == (5, 9, 1280)
    from pipelines.images import load_image

    images = tf.stack([load_image(p, SIZE) for p in paths])
    from_images = encoder(images)
    from_features = encoder(tf.constant(features))
    for a, b in zip(tf.nest.flatten(from_images), tf.nest.flatten(from_features)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    # same backbone config -> same key (so the cache is reused); another width -> another key
    assert (
        ImageEncoder(4, backbone_weights=MOBILENET_035, alpha=0.35, input_size=SIZE).backbone_key
        == encoder.backbone_key
    )
    assert ImageEncoder(4, backbone_weights=None, alpha=0.35, input_size=SIZE).backbone_key != encoder.backbone_key
    assert (
        ImageEncoder(4, backbone_weights=MOBILENET_035, alpha=0.35, input_size=128).backbone_key != encoder.backbone_key
    )


@needs_weights
def test_imagenet_weights_from_keras_home_without_network(tmp_path, monkeypatch):
    from keras.src.backend import config

    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))
    with pytest.raises(BackboneWeightsUnavailableError, match="weights="):
        try:
            build_backbone("MobileNetV2", weights="imagenet", alpha=0.35, input_size=224)
        except BackboneWeightsUnavailableError:
            raise
        else:  # pragma: no cover - only when the network is reachable
            pytest.skip("network available: the download succeeded")
    shutil.copy(MOBILENET_035, home / "models")
    model = build_backbone("MobileNetV2", weights="imagenet", alpha=0.35, input_size=224)
    reference = build_backbone("MobileNetV2", weights=MOBILENET_035, alpha=0.35, input_size=224)
    x = _images(1, 224)
    np.testing.assert_allclose(model(x).numpy(), reference(x).numpy(), atol=1e-5)
    assert model.output_shape == (None, 7, 7, 1280)


def test_small_cnn_from_scratch():
    encoder = ImageEncoder(
        12, backbone="SmallCNN", backbone_weights=None, backbone_trainable=True, input_size=64, dropout=0.1
    )
    memory, mask, states = encoder(_images(3, 64), training=True)
    assert memory.shape == (3, 16, 12) and mask.shape == (3, 16) and states[0].shape == (3, 12)
    assert encoder.backbone.trainable_weights
    with pytest.raises(ValueError, match="frozen"):
        ImageEncoder(12, backbone="SmallCNN", backbone_weights=None, backbone_trainable=True, inputs_are_features=True)
    with pytest.raises(ValueError, match="from scratch"):
        build_backbone("SmallCNN", weights="imagenet")


def test_trainable_top_n_layers_and_errors():
    model = build_backbone("SmallCNN", weights=None, trainable=3, input_size=32)
    flags = [layer.trainable for layer in model.layers]
    assert flags[-3:] == [True] * 3 and not any(flags[:-3])
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("VGG99")
    with pytest.raises(FileNotFoundError):
        build_backbone("MobileNetV2", weights="/nonexistent/weights.h5")
    with pytest.raises(ValueError, match="at least"):
        build_backbone("InceptionV3", weights=None, input_size=40)


@needs_weights
def test_wrong_weights_file_gives_clear_error():
    with pytest.raises(ValueError, match="same architecture"):
        build_backbone("MobileNetV2", weights=MOBILENET_035, alpha=1.0, input_size=SIZE)


def test_encoder_keras_round_trip(tmp_path):
    encoder = ImageEncoder(8, backbone="SmallCNN", backbone_weights=None, input_size=32, name="image_encoder")
    images = keras.Input((32, 32, 3))
    memory, mask, states = encoder(images)
    model = keras.Model(images, [memory, states[0]])
    path = str(tmp_path / "encoder.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    x = _images(2, 32)
    for a, b in zip(model(x), restored(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    layer = restored.get_layer("image_encoder")
    assert isinstance(layer, ImageEncoder) and layer.get_config()["backbone"] == "SmallCNN"
    assert layer.backbone_key == encoder.backbone_key


@needs_weights
def test_pretrained_encoder_keras_round_trip_needs_no_weights_file(tmp_path):
    encoder = ImageEncoder(
        8, backbone_weights=MOBILENET_035, alpha=0.35, input_size=SIZE, inputs_are_features=True, name="image_encoder"
    )
    features = keras.Input(encoder.model_input_shape)
    memory, _, _ = encoder(features)
    model = keras.Model(features, memory)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    layer = restored.get_layer("image_encoder")
    x = _images(1)
    np.testing.assert_allclose(layer(x)[0].numpy(), encoder(x)[0].numpy(), atol=1e-5)  # images path after load
    assert layer.backbone_key == encoder.backbone_key


@pytest.mark.parametrize(
    "name, size, channels",
    [
        ("MobileNetV3Small", 64, 576),
        ("EfficientNetB0", 64, 1280),
        ("InceptionV3", 75, 2048),
        ("ResNet50", 64, 2048),
    ],
)
def test_other_keras_backbones_random_init(name, size, channels):
    encoder = ImageEncoder(4, backbone=name, backbone_weights=None, input_size=size)
    memory, mask, states = encoder(_images(1, size))
    assert memory.shape == (1, encoder.num_regions, 4) and encoder.feature_channels == channels
    assert mask.shape == (1, encoder.num_regions) and states[0].shape == (1, 4)
