"""pipelines.images: decode by content, channel handling, resize, bad-file reporting."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from captioning_helpers import FLICKR, write_image

from pipelines.images import check_images, decode_image, load_image, log_skipped_images


def _decode(path, size=(12, 10)):
    return decode_image(tf.io.read_file(path), size)


@pytest.mark.parametrize(
    "name, mode, fmt",
    [
        ("photo.jpg", "RGB", "JPEG"),
        ("really_a_png.jpg", "RGB", "PNG"),  # decoded by content, not by extension
        ("gray.png", "L", "PNG"),
        ("alpha.png", "RGBA", "PNG"),
        ("anim.gif", "RGB", "GIF"),
        ("bitmap.bmp", "RGB", "BMP"),
    ],
)
def test_decode_formats_give_rgb_float_in_range(tmp_path, name, mode, fmt):
    path = write_image(tmp_path / name, mode=mode, fmt=fmt)
    image = _decode(path)
    assert image.dtype == tf.float32
    assert image.shape == (12, 10, 3)
    values = image.numpy()
    assert values.min() >= 0.0 and values.max() <= 255.0 and values.max() > 1.0


def test_grayscale_is_replicated_and_png_named_jpg_matches_pixels(tmp_path):
    gray = _decode(write_image(tmp_path / "g.png", size=(8, 8), mode="L", fmt="PNG"), size=8).numpy()
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    png = write_image(tmp_path / "x.png", size=(8, 8), fmt="PNG", seed=3)
    fake_jpg = write_image(tmp_path / "x.jpg", size=(8, 8), fmt="PNG", seed=3)
    np.testing.assert_array_equal(_decode(png, 8).numpy(), _decode(fake_jpg, 8).numpy())


def test_decode_works_in_graph_with_tf_data(tmp_path):
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    dataset = tf.data.Dataset.from_tensor_slices(paths).map(lambda p: load_image(p, 16)).batch(3)
    batch = next(iter(dataset))
    assert batch.shape == (3, 16, 16, 3) and batch.dtype == tf.float32


def test_decode_real_flickr_jpeg():
    path = os.path.join(FLICKR, "images", "1000268201_693b08cb0e.jpg")
    if not os.path.exists(path):
        pytest.skip(f"{FLICKR} not available")
    image = _decode(path, (224, 224)).numpy()
    assert image.shape == (224, 224, 3) and 0 <= image.min() and image.max() <= 255 and image.std() > 10


def test_check_images_reports_bad_files_by_path_and_never_raises(tmp_path, caplog):
    good = write_image(tmp_path / "good.jpg", size=(64, 64))
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    missing = str(tmp_path / "missing.jpg")
    ok, problems = check_images([good, str(truncated), str(text), str(empty), missing, good])
    assert ok == [good]
    reasons = dict(problems)
    assert list(reasons) == [str(truncated), str(text), str(empty), missing]
    assert reasons[str(truncated)].startswith("not a decodable image")
    assert reasons[str(text)].startswith("not a decodable image")
    assert reasons[str(empty)] == "empty file"
    assert reasons[missing] == "missing file"
    with caplog.at_level(logging.WARNING):
        assert log_skipped_images(problems) == 4
    assert "skipped 4 unreadable images" in caplog.text and str(truncated) in caplog.text


def test_bad_size_raises():
    with pytest.raises(ValueError):
        decode_image(tf.constant(b""), (0, 3))
