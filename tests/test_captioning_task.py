"""The captioning task end to end: train → evaluate → caption CLI → export → fresh-process reload.

The module fixture trains one tiny model (frozen random SmallCNN at 32x32 → 2x2 regions, 16 units) for
10 steps on the first 20 images of each Flickr8k subset split, in process, through
`seq2seq.runner.train` (the function behind `seq2seq train`). The tests check plumbing and exact
agreement between the in-process graph and the SavedModel, not caption quality.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from captioning_helpers import write_image
from conftest import shared_data_dir

from seq2seq import cli, runner
from seq2seq.config import config_from_dict, load_config
from seq2seq.plots import plot_caption_attention, plot_translation_attention
from seq2seq.serving.export import export_module
from seq2seq.tasks import captioning

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH_CONFIG = os.path.join(ROOT, "configs", "captioning", "flickr8k_scratch.yaml")
MOBILENET_CONFIG = os.path.join(ROOT, "configs", "captioning", "flickr8k_mobilenet.yaml")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TINY = [
    "data.limit=20",
    "data.feature_cache=true",
    "model.encoder.trainable=false",
    "model.encoder.image_size=32",
    "model.encoder.units=16",
    "model.decoder.units=16",
    "model.embedding.dim=16",
    "model.encoder.dropout=0.0",
    "model.decoder.dropout=0.0",
    "tokenizer.min_count=1",
    "train.batch_size=16",
    "train.max_steps=10",
    "train.eval_every=5",
    "train.checkpoint_every=5",
    "train.max_minutes=null",
    "train.learning_rate=0.01",
    "train.lr_schedule=constant",
    "train.warmup_steps=0",
    "train.early_stopping_patience=null",
    "decode.beam_size=2",
    "decode.max_length=8",
]


def flickr_data_dir() -> str | None:
    """The real-data folder when it holds the Flickr8k subset, else None."""
    return shared_data_dir(os.path.join("flickr8k", "subset_captions.tsv"))


@pytest.fixture(scope="module")
def data_dir():
    path = flickr_data_dir()
    if path is None:
        pytest.skip("Flickr8k subset not found (set SEQ2SEQ_DATA_DIR or put it in ../shared/data)")
    return path


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """(model_dir, metrics) of the tiny model."""
    model_dir = str(tmp_path_factory.mktemp("caption") / "model")
    config = load_config(SCRATCH_CONFIG, TINY + [f"data.data_dir={data_dir}"])
    metrics = runner.train(config, model_dir, verbose=0)
    return model_dir, metrics


@pytest.fixture(scope="module")
def module(trained):
    """The CaptioningModule of the tiny model (loaded once; its graphs are traced once)."""
    return runner.serving_module(runner.load(trained[0]))


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """Images that must caption fine (decoded by content) and one that must be skipped."""
    folder = tmp_path_factory.mktemp("odd")
    good = {
        "png_named.jpg": write_image(folder / "png_named.jpg", fmt="PNG", seed=1),
        "gray.jpg": write_image(folder / "gray.jpg", mode="L", seed=2),
        "rgba.png": write_image(folder / "rgba.png", mode="RGBA", fmt="PNG", seed=3),
    }
    whole = open(write_image(folder / "whole.jpg", size=(64, 48), seed=4), "rb").read()
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    return good, str(truncated)


def _flickr_images(data_dir, n):
    folder = os.path.join(data_dir, "flickr8k", "images")
    with open(os.path.join(data_dir, "flickr8k", "subset_testImages.txt")) as handle:
        return [os.path.join(folder, line.strip()) for line in handle if line.strip()][:n]


# --------------------------------------------------------------------------------------------------


def test_train_writes_metrics_cache_and_loss_decreases(trained):
    model_dir, metrics = trained
    with open(os.path.join(model_dir, "metrics.json")) as handle:
        saved = json.load(handle)["test"]
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "sacrebleu", "nltk_bleu", "signature"):
        assert key in saved
    assert saved["images"] == 20 and saved["skipped_images"] == 0
    assert "nrefs:5" in saved["signature"]  # every Flickr8k image scored against its 5 references
    assert len(saved["examples"][0]["references"]) == 5
    assert 0.0 <= saved["bleu_4"] <= saved["bleu_1"] <= 100.0
    assert metrics["inputs_are_features"] is True and metrics["steps"] == 10
    # Frozen backbone: features were cached once per train + validation image (20 + 20).
    entries = [
        f for _, _, files in os.walk(os.path.join(model_dir, "feature_cache")) for f in files if f.endswith(".npy")
    ]
    assert len(entries) == 40
    with open(os.path.join(model_dir, "train_log.csv")) as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 2 and losses[1] < losses[0]


def test_caption_cli_and_attention_plot(trained, module, data_dir, tmp_path, capsys):
    model_dir, _ = trained
    images = _flickr_images(data_dir, 2)
    plot = str(tmp_path / "plots" / "attention.png")
    assert cli.main(["--quiet", "caption", "--model-dir", model_dir, *images, "--attention-plot", plot]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == images
    assert all(line.split("\t")[1].strip() for line in lines)
    with open(plot, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
    # Same captions as evaluation's module on the same bytes.
    expected, _ = runner.predict(module, [open(p, "rb").read() for p in images])
    assert [line.split("\t")[1] for line in lines] == expected


def test_caption_cli_skips_unreadable_images_and_exits_1(trained, data_dir, tmp_path, capsys):
    model_dir, _ = trained
    good = _flickr_images(data_dir, 1)
    bad = tmp_path / "not_an_image.jpg"
    bad.write_bytes(b"this is text, not a JPEG")
    assert cli.main(["--quiet", "caption", "--model-dir", model_dir, str(bad), *good]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == good  # the readable image is still captioned


def test_export_matches_in_process_in_fresh_subprocess(module, data_dir, odd_images, tmp_path):
    good, _ = odd_images
    paths = _flickr_images(data_dir, 2) + list(good.values())
    blobs = [open(p, "rb").read() for p in paths]
    export_dir = export_module(module, str(tmp_path / "export"))
    out = module.caption(tf.constant(blobs))
    expected = {"caption": [c.decode() for c in out["caption"].numpy()], "score": out["score"].numpy().tolist()}

    script = textwrap.dedent("""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        paths = json.loads(sys.argv[2])
        serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        out = serve(image_bytes=tf.constant([open(p, "rb").read() for p in paths]))
        print(json.dumps({"caption": [c.decode() for c in out["caption"].numpy()],
                          "score": out["score"].numpy().tolist(),
                          "modules": sorted(m for m in sys.modules
                                            if m.split(".")[0] in ("seq2seq", "pipelines", "keras"))}))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH="")
    done = subprocess.run(
        [sys.executable, "-c", script, export_dir, json.dumps(paths)],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert [m for m in served.pop("modules") if not m.startswith("keras")] == []
    assert served["caption"] == expected["caption"]
    np.testing.assert_array_equal(np.float32(served["score"]), np.float32(expected["score"]))
    assert len(served["caption"]) == len(paths)


def test_bad_images_skipped_odd_images_captioned(trained, module, odd_images, caplog):
    model_dir, _ = trained
    good, truncated = odd_images
    with caplog.at_level(logging.WARNING):
        results = list(runner.predict_items("captioning", [truncated, *good.values()], model_dir=model_dir))
    assert [p for p, _ in results] == list(good.values())
    expected, _ = runner.predict(module, [open(p, "rb").read() for p in good.values()])
    assert [c for _, c in results] == expected
    assert "truncated.jpg" in caplog.text and "skipped 1 unreadable" in caplog.text
    with pytest.raises(ValueError, match="none of the images can be read"):
        list(runner.predict_items("captioning", [truncated], model_dir=model_dir))
    with pytest.raises(tf.errors.InvalidArgumentError):
        module.caption(tf.constant([open(truncated, "rb").read()]))


def test_saved_model_rejects_decode_options(trained, tmp_path, odd_images):
    good, _ = odd_images
    with pytest.raises(ValueError, match="need --model-dir"):
        list(runner.predict_items("captioning", list(good.values()), saved_model=str(tmp_path), beam_size=2))
    with pytest.raises(ValueError, match="exactly one"):
        list(runner.predict_items("captioning", list(good.values())))


# --------------------------------------------------------------------------------------------------
# Data reading, config errors (no training)


def test_read_split_table_and_missing_keys(tmp_path):
    rows = [("img%d.png" % i, "a caption number %d" % i) for i in range(30)]
    for name, _ in rows:
        write_image(tmp_path / name, fmt="PNG", seed=len(name))
    with open(tmp_path / "captions.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("image", "caption"), *rows])
    config = config_from_dict(
        {
            "task": "captioning",
            "data": {
                "format": "table",
                "path": str(tmp_path / "captions.csv"),
                "validation_fraction": 0.2,
                "test_fraction": 0.2,
            },
            "model": {"encoder": {"type": "image"}},
        }
    )
    splits = {s: captioning.read_split(config, s) for s in captioning.SPLITS}
    assert sum(len(v) for v in splits.values()) == 30
    assert not set(splits["train"]) & set(splits["test"])
    config = config_from_dict(
        {
            "task": "captioning",
            "data": {"format": "flickr8k", "image_dir": str(tmp_path)},
            "model": {"encoder": {"type": "image"}},
        }
    )
    with pytest.raises(ValueError, match="data.captions_file"):
        captioning.read_split(config, "train")
    config = config_from_dict(
        {
            "task": "captioning",
            "data": {
                "format": "flickr8k",
                "image_dir": str(tmp_path),
                "captions_file": "x.tsv",
                "train_split_file": "t.txt",
            },
            "model": {"encoder": {"type": "image"}},
        }
    )
    with pytest.raises(ValueError, match="data.validation_split_file"):
        captioning.read_split(config, "train")


def test_reference_captions_layout():
    items = {"a.jpg": ["A dog runs .", "The dog, running!"], "b.jpg": ["Two cats ."]}
    assert captioning.reference_captions(items) == [["a dog runs", "the dog running"], ["two cats"]]


def test_configs_load(data_dir):
    for path in (SCRATCH_CONFIG, MOBILENET_CONFIG):
        config = load_config(path, [f"data.data_dir={data_dir}"])
        assert config.task == "captioning"
        assert len(captioning.read_split(config, "test")) == 125
    weights = captioning._build_config(load_config(MOBILENET_CONFIG, [f"data.data_dir={data_dir}"]), True)
    assert os.path.isfile(weights.model.encoder.weights)


# --------------------------------------------------------------------------------------------------
# Plots


def test_plot_caption_attention_png_and_shape_errors(tmp_path):
    image = np.zeros((40, 60, 3), np.uint8)
    attention = np.eye(4, dtype=np.float32)
    path = plot_caption_attention(image, ["a", "dog", "runs", "</s>"], attention, (2, 2), str(tmp_path / "a.png"))
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp")] == []
    with pytest.raises(ValueError, match="regions=4"):
        plot_caption_attention(image, ["a", "dog"], attention, (2, 2), str(tmp_path / "b.png"))


def test_plot_translation_attention_png(tmp_path):
    out = {
        "source_pieces": tf.constant([["▁hola", "</s>", "<pad>"]]),
        "target_pieces": tf.constant([["▁hello", "</s>", "<pad>"]]),
        "attention": tf.constant([[[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 0.0]]]),
        "translation": tf.constant(["hello"]),
    }
    path = plot_translation_attention(out, str(tmp_path / "t.png"))
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC


# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pretrained_mobilenet_tiny_train(data_dir, tmp_path):
    """The pretrained-backbone config path: the config's ImageNet MobileNetV2 from the offline file, cached features."""
    weights = os.path.join(data_dir, load_config(MOBILENET_CONFIG).model.encoder.weights)
    if not os.path.isfile(weights):
        pytest.skip("MobileNetV2 weights not found in ../weights next to the data folder")
    overrides = [o for o in TINY if not o.startswith(("model.encoder.image_size", "data.limit"))] + [
        "data.limit=8",
        "train.max_steps=4",
        "train.eval_every=2",
        "train.checkpoint_every=2",
    ]
    config = load_config(MOBILENET_CONFIG, overrides + [f"data.data_dir={data_dir}"])
    model_dir = str(tmp_path / "model")
    metrics = runner.train(config, model_dir, verbose=0)
    assert metrics["inputs_are_features"] is True and metrics["images"] == 8
    images = list(captioning.read_split(config, "test"))[:2]
    results = list(runner.predict_items("captioning", images, model_dir=model_dir))
    # `seq2seq export` (pretrained backbone inside the graph) serves the same captions.
    assert cli.main(["--quiet", "export", "--model-dir", model_dir]) == 0
    exported = list(runner.predict_items("captioning", images, saved_model=os.path.join(model_dir, "export")))
    assert exported == results
