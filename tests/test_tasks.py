"""The task interface and the runner: one recipe for both tasks, weights-only loading, per-task config.

A tiny captioning model is trained end to end from a TFDS dataset built here (the `coco_captions` feature
layout, 20 generated images), through `data.format: tfds`; the translation checks reuse the session's
synthetic model directory (tests/conftest.py).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import seq2seq
from seq2seq import compat, runner
from seq2seq.config import config_from_dict
from seq2seq.errors import ConfigError
from seq2seq.registry import registry_for
from seq2seq.tasks.base import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ["red", "green", "blue", "square", "circle", "on", "a", "black", "white", "background"]


class TinyCocoCaptions(tfds.core.GeneratorBasedBuilder):
    """20 coloured images with 2 captions each, in the feature layout of TFDS `coco_captions`."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(encoding_format="png"),
                    "image/filename": tfds.features.Text(),
                    "captions": tfds.features.Sequence({"text": tfds.features.Text()}),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(0, 12),
            "val": self._generate_examples(12, 16),
            "test": self._generate_examples(16, 20),
        }

    def _generate_examples(self, start, stop):
        colours = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}
        for index in range(start, stop):
            name = list(colours)[index % 3]
            image = np.zeros((32, 32, 3), np.uint8)
            image[8:24, 8:24] = colours[name]
            yield (
                index,
                {
                    "image": image,
                    "image/filename": f"img{index:03d}.png",
                    "captions": {"text": [f"a {name} square", f"a {name} square on a black background"]},
                },
            )


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tfds"))
    TinyCocoCaptions(data_dir=directory).download_and_prepare()
    return directory


def _captioning_values(tfds_dir, image_dir, **embedding):
    return {
        "task": "captioning",
        "data": {
            "format": "tfds",
            "tfds_name": "tiny_coco_captions",
            "tfds_data_dir": tfds_dir,
            "image_dir": image_dir,
            "feature_cache": True,
            "max_target_length": 10,
        },
        "tokenizer": {"kind": "word", "target_vocab_size": 40},
        "model": {
            "embedding": {"dim": 8, **embedding},
            "encoder": {
                "type": "image",
                "backbone": "SmallCNN",
                "weights": None,
                "trainable": False,
                "image_size": 32,
                "units": 8,
            },
            "decoder": {"units": 8},
        },
        "train": {
            "batch_size": 4,
            "max_steps": 4,
            "eval_every": 2,
            "checkpoint_every": 2,
            "early_stopping_patience": None,
        },
        "decode": {"beam_size": 2, "max_length": 8},
    }


@pytest.fixture(scope="module")
def captioning_run(tfds_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("captioning")
    config = config_from_dict(_captioning_values(tfds_dir, str(work / "images")))
    model_dir = str(work / "model")
    return model_dir, runner.train(config, model_dir, verbose=0)


def test_tfds_captioning_trains_evaluates_and_exports(captioning_run, tmp_path):
    model_dir, metrics = captioning_run
    assert metrics["images"] == 4 and metrics["steps"] == 4 and metrics["inputs_are_features"] is True
    assert sorted(os.listdir(os.path.join(os.path.dirname(model_dir), "images")))[:2] == ["img000.png", "img001.png"]
    assert {e["image"] for e in metrics["examples"]} == {f"img{i:03d}.png" for i in range(16, 20)}
    # All references of an image, cleaned as the training captions.
    assert metrics["examples"][0]["references"][1].endswith("square on a black background")
    images = [os.path.join(os.path.dirname(model_dir), "images", f"img{i:03d}.png") for i in (16, 17)]
    in_process = list(runner.predict_items("captioning", images, model_dir=model_dir))
    export = runner.export(model_dir, str(tmp_path / "export"))
    assert list(runner.predict_items("captioning", images, saved_model=export)) == in_process


def test_loading_serving_and_export_create_no_optimizer(captioning_run, synthetic_model_dir, tmp_path, monkeypatch):
    created = []
    original = keras.optimizers.Optimizer.__init__

    def counting(self, *args, **kwargs):
        created.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(keras.optimizers.Optimizer, "__init__", counting)
    for model_dir in (synthetic_model_dir, captioning_run[0]):
        loaded = runner.load(model_dir)
        assert type(loaded.model) is seq2seq.Seq2Seq and not getattr(loaded.model, "optimizer", None)
        runner.export(model_dir, str(tmp_path / os.path.basename(os.path.dirname(model_dir)) / "export"))
    translations, _ = runner.predict(runner.serving_module(runner.load(synthetic_model_dir)), ["a b"])
    assert len(translations) == 1
    assert created == []


def test_model_keras_loads_after_import_seq2seq_alone(synthetic_model_dir, tmp_path):
    script = textwrap.dedent("""
        import sys, keras, numpy as np
        import seq2seq
        model = keras.saving.load_model(sys.argv[1])
        print(type(model).__name__, model.count_params(), getattr(model, "optimizer", None) is None)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script, os.path.join(synthetic_model_dir, "model.keras")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    name, params, no_optimizer = done.stdout.split()[-3:]
    assert name == "Seq2Seq" and no_optimizer == "True"
    assert int(params) == runner.load(synthetic_model_dir).model.count_params()


def test_pretrained_vectors_fill_the_caption_embedding_frozen(tfds_dir, tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text(
        "".join(
            f"{word} " + " ".join(str(0.1 * (i + 1) + 0.01 * d) for d in range(8)) + "\n"
            for i, word in enumerate(WORDS)
        ),
        encoding="utf-8",
    )
    values = _captioning_values(tfds_dir, str(tmp_path / "images"), pretrained=str(vectors), trainable=False)
    model_dir = str(tmp_path / "model")
    runner.train(config_from_dict(values), model_dir, verbose=0)
    loaded = runner.load(model_dir)
    tokenizer = loaded.tokenizers["caption"]
    matrix = loaded.model.decoder.embedding.embeddings.numpy()
    for word in ["red", "square", "black"]:
        row = int(tokenizer.tokenize(tf.constant([word])).to_list()[0][0])
        expected = [0.1 * (WORDS.index(word) + 1) + 0.01 * d for d in range(8)]
        np.testing.assert_allclose(matrix[row], expected, rtol=1e-6)  # loaded, and unchanged by training


def test_a_key_of_the_other_task_is_named():
    with pytest.raises(ConfigError, match=r"data.source_file is a translation key; a captioning config's data keys"):
        config_from_dict(
            {
                "task": "captioning",
                "model": {"encoder": {"type": "image"}},
                "data": {"format": "flickr8k", "source_file": "x"},
            }
        )
    with pytest.raises(ConfigError, match=r"data.image_dir is a captioning key; a translation config's data keys"):
        config_from_dict({"data": {"path": "x.tsv", "image_dir": "images"}})
    with pytest.raises(ConfigError, match=r"task: got 'speech'; allowed values: 'translation', 'captioning'"):
        config_from_dict({"task": "speech"})
    with pytest.raises(
        ConfigError, match=r"data.format: got 'tfds_coco'; allowed values: 'flickr8k', 'coco', 'table', 'tfds'"
    ):
        config_from_dict(
            {"task": "captioning", "model": {"encoder": {"type": "image"}}, "data": {"format": "tfds_coco"}}
        )


def test_every_kind_is_named_once_in_its_registry():
    expected = {
        "model.encoder.cell": ("simple", "gru", "lstm", "peephole_lstm"),
        "model.decoder.cell": ("simple", "gru", "lstm", "peephole_lstm"),
        "model.decoder.attention": ("bahdanau", "luong", "none"),
        "model.encoder.type": ("recurrent", "image"),
        "decode.strategy": ("beam", "greedy", "sample"),
        "task": ("translation", "captioning"),
    }
    assert {key: registry_for(key).names() for key in expected} == expected
    assert TASKS.get("translation").readers.names() == ("parallel", "anki", "tfds")


def test_keras_private_hooks_are_all_present():
    """Fails on a Keras release that moved one of the hooks seq2seq/compat.py lists."""
    assert compat.hooks() == {name: True for name in compat.hooks()}
    assert len(compat.hooks()) == 9


def test_public_api():
    for name in seq2seq.__all__:
        assert getattr(seq2seq, name) is not None
    assert seq2seq.load_config.__module__ == "seq2seq.config"
    assert json.loads(json.dumps(seq2seq.config_from_dict({"data": {"path": "x"}}).to_dict()))["task"] == "translation"


def test_over_long_inputs_are_named_in_a_warning(synthetic_model_dir, caplog):
    long = " ".join(["a"] * 40)  # 40 pieces + EOS, above the synthetic config's max_source_length of 12
    with caplog.at_level(logging.WARNING, logger="seq2seq.runner"):
        out = list(runner.predict_items("translation", ["a b .", long], model_dir=synthetic_model_dir))
    assert [name for name, _ in out] == ["a b .", long]
    warnings = [r.getMessage() for r in caplog.records if "max_source_length" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("input 2 has 41 source pieces") and "first 11 pieces" in warnings[0]
