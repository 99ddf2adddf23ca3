"""pipelines.captioning readers, split_by_image and preprocess_caption."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from captioning_helpers import FLICKR, write_image

from pipelines.captioning import (
    caption_texts,
    preprocess_caption,
    read_caption_table,
    read_coco_captions,
    read_flickr8k,
    split_by_image,
    tfds_example_to_item,
)

needs_flickr = pytest.mark.skipif(not os.path.isdir(FLICKR), reason=f"{FLICKR} (Flickr8k subset) not available")


@needs_flickr
def test_flickr8k_real_subset_and_official_splits():
    tokens = os.path.join(FLICKR, "subset_captions.tsv")
    images = os.path.join(FLICKR, "images")
    data = read_flickr8k(tokens, images)
    assert len(data) == 1000 and sum(len(c) for c in data.values()) == 5000
    assert data.counts["missing_images"] == 0
    first = os.path.join(images, "1000268201_693b08cb0e.jpg")
    assert data[first][0].startswith("A child in a pink dress")
    sizes = {}
    for split in ("train", "dev", "test"):
        part = read_flickr8k(tokens, images, split_file=os.path.join(FLICKR, f"subset_{split}Images.txt"))
        sizes[split] = len(part)
        assert part.counts["images_without_captions"] == 0
        assert all(len(c) == 5 for c in part.values())
    assert sizes == {"train": 753, "dev": 113, "test": 125}
    assert len(read_flickr8k(tokens, images, limit=7)) == 7


@needs_flickr
def test_flickr8k_full_token_file_reports_images_missing_on_disk():
    data = read_flickr8k(
        os.path.join(FLICKR, "Flickr8k_text", "Flickr8k.token.txt"),
        os.path.join(FLICKR, "images"),
        split_file=os.path.join(FLICKR, "subset_devImages.txt"),
    )
    assert len(data) == 113


def _write_tokens(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_flickr8k_missing_image_and_uncaptioned_image_are_counted(tmp_path):
    write_image(tmp_path / "a.jpg")
    write_image(tmp_path / "b.jpg")
    tokens = _write_tokens(
        tmp_path / "tokens.txt",
        [
            "a.jpg#0\tA dog runs .",
            "a.jpg#1\tA brown dog .",
            "gone.jpg#0\tNobody .",
            "gone.jpg#1\tStill nobody .",
            "",
        ],
    )
    split = _write_tokens(tmp_path / "split.txt", ["a.jpg", "b.jpg", "gone.jpg"])
    data = read_flickr8k(tokens, str(tmp_path), split_file=split)
    assert dict(data) == {str(tmp_path / "a.jpg"): ["A dog runs .", "A brown dog ."]}
    assert data.counts["missing_images"] == 1 and data.counts["captions_of_missing_images"] == 2
    assert data.problems == [(str(tmp_path / "gone.jpg"), "missing file")]
    assert data.counts["images_without_captions"] == 1  # b.jpg


@pytest.mark.parametrize("bad", ["a.jpg A dog without tab", "a.jpg\tno index", "a.jpg#x\tbad index", "a.jpg#0\t   "])
def test_flickr8k_bad_row_names_file_and_line(tmp_path, bad):
    tokens = _write_tokens(tmp_path / "tokens.txt", ["a.jpg#0\tfine .", bad])
    with pytest.raises(ValueError, match=r"tokens\.txt:2"):
        read_flickr8k(tokens, str(tmp_path))


def test_csv_and_jsonl_tables_resolve_relative_paths(tmp_path):
    (tmp_path / "imgs").mkdir()
    a = write_image(tmp_path / "imgs" / "a.jpg")
    b = write_image(tmp_path / "b.png", fmt="PNG")
    (tmp_path / "t.csv").write_text(
        f'image,caption\nimgs/a.jpg,"A cat, sitting."\n{b},A bird\nimgs/a.jpg,Another cat\n'
    )
    csv_data = read_caption_table(str(tmp_path / "t.csv"))
    assert dict(csv_data) == {a: ["A cat, sitting.", "Another cat"], b: ["A bird"]}
    rows = [{"image": "imgs/a.jpg", "caption": "A cat"}, {"image": "nope.jpg", "caption": "lost"}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    jsonl = read_caption_table(str(tmp_path / "t.jsonl"))
    assert dict(jsonl) == {a: ["A cat"]} and jsonl.counts["missing_images"] == 1


def test_table_bad_rows_raise_with_line(tmp_path):
    (tmp_path / "bad.csv").write_text("image,caption\na.jpg,ok\nb.jpg,\n")
    with pytest.raises(ValueError, match=r"bad\.csv:3"):
        read_caption_table(str(tmp_path / "bad.csv"))
    (tmp_path / "hdr.csv").write_text("file,text\na.jpg,ok\n")
    with pytest.raises(ValueError, match=r"hdr\.csv:1"):
        read_caption_table(str(tmp_path / "hdr.csv"))
    (tmp_path / "bad.jsonl").write_text('{"image": "a.jpg", "caption": "x"}\n{not json}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        read_caption_table(str(tmp_path / "bad.jsonl"))


def test_coco_json_reader(tmp_path):
    a = write_image(tmp_path / "COCO_1.jpg")
    ann = {
        "images": [
            {"id": 1, "file_name": "COCO_1.jpg"},
            {"id": 2, "file_name": "COCO_2.jpg"},
            {"id": 3, "file_name": "COCO_3.jpg"},
        ],
        "annotations": [
            {"image_id": 1, "id": 10, "caption": "A man riding a horse. "},
            {"image_id": 1, "id": 11, "caption": "A rider."},
            {"image_id": 2, "id": 12, "caption": "Missing on disk."},
        ],
    }
    (tmp_path / "captions.json").write_text(json.dumps(ann))
    data = read_coco_captions(str(tmp_path / "captions.json"), str(tmp_path))
    assert dict(data) == {a: ["A man riding a horse.", "A rider."]}
    assert data.counts["missing_images"] == 1 and data.counts["images_without_captions"] == 1
    ann["annotations"].append({"image_id": 99, "caption": "x"})
    (tmp_path / "bad.json").write_text(json.dumps(ann))
    with pytest.raises(ValueError, match=r"bad\.json: annotations\[3\]"):
        read_coco_captions(str(tmp_path / "bad.json"), str(tmp_path))


def test_tfds_coco_example_mapping():
    example = {
        "image": b"\xff\xd8jpegbytes",
        "image/filename": b"COCO_val2014_000000000042.jpg",
        "image/id": 42,
        "captions": {"id": np.array([1, 2]), "text": np.array([b"A dog. ", b"Two dogs"], dtype=object)},
    }
    assert tfds_example_to_item(example) == (
        "COCO_val2014_000000000042.jpg",
        b"\xff\xd8jpegbytes",
        ["A dog.", "Two dogs"],
    )


def test_split_by_image_is_deterministic_and_disjoint():
    images = {f"/data/img_{i}.jpg": [f"caption {i}"] for i in range(400)}
    train, val, test = split_by_image(images, seed=1, validation_fraction=0.2, test_fraction=0.1)
    assert len(train) + len(val) + len(test) == 400
    assert not (set(train) & set(val)) and not (set(train) & set(test)) and not (set(val) & set(test))
    assert 50 <= len(val) <= 110 and 20 <= len(test) <= 70
    moved = {p.replace("/data/", "/elsewhere/"): c for p, c in reversed(list(images.items()))}
    _, val2, test2 = split_by_image(moved, seed=1, validation_fraction=0.2, test_fraction=0.1)
    assert {os.path.basename(p) for p in val2} == {os.path.basename(p) for p in val}
    assert {os.path.basename(p) for p in test2} == {os.path.basename(p) for p in test}
    _, other_val, _ = split_by_image(images, seed=2, validation_fraction=0.2, test_fraction=0.1)
    assert set(other_val) != set(val)
    with pytest.raises(ValueError):
        split_by_image(images, validation_fraction=0.6, test_fraction=0.5)


def test_preprocess_caption_in_graph():
    texts = tf.constant(["A  Black-and-white DOG , running .", "The child's toy!", "  Ünïcode CAFÉ\t\tdone  "])
    out = tf.function(preprocess_caption)(texts).numpy().tolist()
    assert out == [b"a black and white dog running", b"the childs toy", "ünïcode café done".encode("utf-8")]
    assert caption_texts({"x.jpg": ["Hello, World ."]}) == ["hello world"]
