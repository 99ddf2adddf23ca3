"""split_by_image groups byte-identical images into one split (issue 17, item 9, second bullet)."""

import hashlib
import logging
import os
import shutil

import pytest
from captioning_helpers import write_image

from pipelines.captioning import _unit_hash, image_content_key, split_by_image

pytestmark = pytest.mark.reliability


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def first_name(prefix, seed, wanted):
    """The first `<prefix><i>.jpg` whose name alone sends it to split `wanted` (test fraction 0.3, validation 0.2)."""
    for i in range(1000):
        u = _unit_hash(f"{prefix}{i}.jpg", seed)
        split = "test" if u < 0.3 else "validation" if u < 0.5 else "train"
        if split == wanted:
            return f"{prefix}{i}.jpg"
    raise AssertionError("no name found")


def test_a_copy_of_a_test_image_under_another_name_stays_in_test(tmp_path, caplog):
    images = {}
    for i in range(30):
        path = write_image(tmp_path / f"img_{i}.jpg", seed=i)
        images[path] = [f"caption {i}"]
    original = write_image(tmp_path / first_name("a_", 1, "test"), seed=100)  # alphabetically first: decides
    copy = str(tmp_path / first_name("copy_", 1, "train"))  # by its name alone it would go to train
    shutil.copyfile(original, copy)
    images[original] = ["a red dog"]
    images[copy] = ["a red dog"]
    with caplog.at_level(logging.WARNING, logger="pipelines.captioning"):
        train, validation, test = split_by_image(images, seed=1, validation_fraction=0.2, test_fraction=0.3)
    assert original in test and copy in test
    assert test.counts["duplicate_images"] == 1 and train.counts["duplicate_images"] == 0
    assert len(train) + len(validation) + len(test) == 32
    hashes = [{sha256(p) for p in part} for part in (train, validation, test)]
    assert not hashes[0] & hashes[2] and not hashes[0] & hashes[1] and not hashes[1] & hashes[2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"2 byte-identical images kept together in one split: {original}, {copy}"]


def test_images_without_copies_keep_their_name_based_split(tmp_path):
    images = {write_image(tmp_path / f"img_{i}.jpg", seed=i): ["c"] for i in range(40)}
    train, validation, test = split_by_image(images, seed=3, validation_fraction=0.2, test_fraction=0.3)
    for part, name in ((train, "train"), (validation, "validation"), (test, "test")):
        for path in part:
            u = _unit_hash(os.path.basename(path), 3)
            assert ("test" if u < 0.3 else "validation" if u < 0.5 else "train") == name
        assert part.counts["duplicate_images"] == 0


def test_content_key_is_the_sha256_of_the_bytes_or_the_name_when_unreadable(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"abc")
    assert image_content_key(str(path)) == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert image_content_key(str(tmp_path / "missing.jpg")) == "name:missing.jpg"
    os.mkfifo(tmp_path / "pipe.jpg")
    assert image_content_key(str(tmp_path / "pipe.jpg")) == "name:pipe.jpg"
