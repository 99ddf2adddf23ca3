"""LiteRT (TensorFlow Lite) export of translation models: `seq2seq export --format litert`, `translate --litert`.

A tiny SentencePiece model is trained once on the synthetic toy language (tests/conftest.py), long enough to
translate most toy sentences, then written as a LiteRT file and run in the ai-edge-litert interpreter; its
outputs must equal the SavedModel's (the same graph of `TranslationModule.best`), for greedy and beam search.
"""

import os
import subprocess
import sys

import pytest
from conftest import ROOT, synthetic_config, train_translation_model, write_synthetic_parallel

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (requirements.txt pins it)")

SENTENCES = [
    "el gato come pan .",
    "la niña tiene un libro rojo .",
    "el perro grande ve la casa .",
    "el niño bebe agua .",
    "un gato pequeño .",
    "  el   gato\tcome  pan . ",  # whitespace runs: normalised like the SavedModel does
    "",  # empty: "" and score 0, as the SavedModel gives
    "el perro grande ve la casa y el niño bebe agua " * 6,  # cut to data.max_source_length pieces
]


@pytest.fixture(scope="module")
def sentencepiece_model_dir(tmp_path_factory):
    """A tiny SentencePiece (unigram) model on the synthetic pairs, 200 steps."""
    data = tmp_path_factory.mktemp("litert_data")
    source, target = write_synthetic_parallel(str(data))
    values = synthetic_config(source, target)
    values["data"].pop("lowercase")
    values["data"].update(max_source_length=16, max_target_length=16)
    values["tokenizer"] = {"kind": "sentencepiece", "source_vocab_size": 32, "target_vocab_size": 32}
    values["tokenizer"]["byte_fallback"] = False  # the LiteRT kernels have none; keeps pieces word-sized
    values["model"] = {"embedding": {"dim": 32}, "encoder": {"units": 32}, "decoder": {"units": 32}}
    values["train"].update(max_steps=200, eval_every=200, checkpoint_every=200, validation_batches=1)
    values["train"].update(lr_schedule="constant", warmup_steps=0, label_smoothing=0.0)
    return train_translation_model(str(data / "model"), values, [])


def _saved_model_outputs(model_dir, **decode):
    from seq2seq import runner

    module = runner.serving_module(runner.load(model_dir), **decode)
    return runner.predict(module, SENTENCES)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_litert_translations_equal_the_saved_model(sentencepiece_model_dir, tmp_path, strategy):
    from seq2seq import runner
    from seq2seq.serving.litert import TF_TEXT_OPS, LiteRTModel, custom_ops

    path = runner.export_litert(sentencepiece_model_dir, str(tmp_path / "model.tflite"), strategy=strategy)
    with open(path, "rb") as f:
        assert set(custom_ops(f.read())) <= set(TF_TEXT_OPS)  # nothing beyond tensorflow-text's kernels
    texts, scores = LiteRTModel(path).predict(SENTENCES)
    expected_texts, expected_scores = _saved_model_outputs(sentencepiece_model_dir, strategy=strategy)
    assert texts == expected_texts
    assert scores == pytest.approx(expected_scores, abs=1e-4)
    assert texts[0].startswith("the cat eats bread")  # the model learnt the toy language: outputs are real text
    assert texts[SENTENCES.index("")] == "" and scores[SENTENCES.index("")] == 0.0


def test_on_device_tokenizer_matches_the_training_tokenizer(sentencepiece_model_dir):
    import tensorflow as tf

    from pipelines.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(os.path.join(sentencepiece_model_dir, "tokenizers"), "source")
    on_device = tokenizer.on_device()
    texts = tf.constant(SENTENCES + ["la nin\u0303a", "ｅｌ　gato"])  # NFD and full-width forms: NFKC on both sides
    assert on_device.tokenize(texts).to_list() == tokenizer.tokenize(texts).to_list()
    ids = tokenizer.tokenize(texts).to_tensor()
    assert on_device.detokenize(ids).numpy().tolist() == tokenizer.detokenize(ids).numpy().tolist()
    assert on_device.id_to_piece(ids).numpy().tolist() == tokenizer.id_to_piece(ids).numpy().tolist()


def test_cli_export_and_translate_litert(sentencepiece_model_dir, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    output = str(tmp_path / "cli.tflite")
    cli = [sys.executable, "-m", "seq2seq.cli"]
    export = subprocess.run(
        cli + ["export", "--model-dir", sentencepiece_model_dir, "--format", "litert", "--output", output],
        capture_output=True,
        text=True,
        env=env,
    )
    assert export.returncode == 0, export.stderr
    assert export.stdout.strip().splitlines()[-1] == output
    translate = subprocess.run(
        cli + ["translate", "--litert", output, SENTENCES[0], SENTENCES[1]], capture_output=True, text=True, env=env
    )
    assert translate.returncode == 0, translate.stderr
    assert translate.stdout.splitlines() == _saved_model_outputs(sentencepiece_model_dir)[0][:2]
    refused = subprocess.run(
        cli + ["translate", "--litert", output, "--beam-size", "2", "x"], capture_output=True, text=True, env=env
    )
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and len(errors) == 1 and "--model-dir" in errors[0]


def test_word_tokenizer_model_is_refused_with_one_error_line(synthetic_model_dir, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    output = tmp_path / "word.tflite"
    result = subprocess.run(
        [sys.executable, "-m", "seq2seq.cli", "export", "--model-dir", synthetic_model_dir, "--format", "litert"]
        + ["--output", str(output)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "WordTokenizer" in errors[0] and "SentencePiece" in errors[0]
    assert not output.exists()


def test_refusals_name_what_blocks(sentencepiece_model_dir, tmp_path):
    import dataclasses

    from pipelines.tokenizers import train_sentencepiece
    from seq2seq import runner
    from seq2seq.serving.litert import LiteRTExportError, litert_module

    loaded = runner.load(sentencepiece_model_dir)
    sampling = dataclasses.replace(loaded.config.decode, strategy="sample")
    with pytest.raises(LiteRTExportError, match="greedy or beam"):
        litert_module(loaded.task, loaded.model, loaded.tokenizers, sampling)
    source, _ = write_synthetic_parallel(str(tmp_path))
    with open(source, encoding="utf-8") as f:
        bpe = train_sentencepiece(f.read().splitlines(), str(tmp_path), "bpe", vocab_size=288, model_type="bpe")
    with pytest.raises(LiteRTExportError, match="'bpe' is a SentencePiece bpe model.*unigram"):
        litert_module(loaded.task, loaded.model, {"source": bpe, "target": bpe}, loaded.config.decode)


def test_word_vocabulary_detokenises_on_device_as_it_does_in_tensorflow():
    import tensorflow as tf

    from pipelines.tokenizers import WordTokenizer
    from pipelines.vocab import SPECIAL_PIECES

    words = WordTokenizer(list(SPECIAL_PIECES) + ["a", "dog", "runs", ".", "grüne", "wiese"])
    ids = tf.constant([[4, 5, 6, 7, 3, 0], [8, 9, 3, 0, 0, 0], [2, 4, 5, 3, 6, 0], [3, 0, 0, 0, 0, 0]])
    twin = words.on_device()
    assert twin.detokenize(ids).numpy().tolist() == words.detokenize(ids).numpy().tolist()
    assert twin.id_to_piece(ids).numpy().tolist() == words.id_to_piece(ids).numpy().tolist()
    with pytest.raises(NotImplementedError, match="only detokenises"):
        twin.tokenize(tf.constant(["a dog"]))


@pytest.fixture(scope="module", params=["scratch", "mobilenet"])
def captioning_model_dir(request, tmp_path_factory):
    """A tiny captioning model: frozen random SmallCNN at 32x32, or the ImageNet MobileNetV2 at 224x224."""
    from test_captioning_task import MOBILENET_CONFIG, SCRATCH_CONFIG, TINY, flickr_data_dir

    from seq2seq import runner
    from seq2seq.config import load_config

    data_dir = flickr_data_dir()
    if data_dir is None:
        pytest.skip("Flickr8k subset not found (set SEQ2SEQ_DATA_DIR or put it in ../shared/data)")
    overrides = TINY + [f"data.data_dir={data_dir}"]
    if request.param == "mobilenet":
        weights = os.path.join(data_dir, load_config(MOBILENET_CONFIG).model.encoder.weights)
        if not os.path.isfile(weights):
            pytest.skip("MobileNetV2 weights not found in ../weights next to the data folder")
        overrides = [o for o in overrides if not o.startswith(("model.encoder.image_size", "data.limit"))]
        overrides += ["data.limit=8", "train.max_steps=4", "train.eval_every=2", "train.checkpoint_every=2"]
    config = load_config(MOBILENET_CONFIG if request.param == "mobilenet" else SCRATCH_CONFIG, overrides)
    model_dir = str(tmp_path_factory.mktemp(f"caption_{request.param}") / "model")
    runner.train(config, model_dir, verbose=0)
    return model_dir, config


def test_litert_captions_equal_the_saved_model(captioning_model_dir, tmp_path):
    from seq2seq import runner
    from seq2seq.serving.litert import TF_TEXT_OPS, LiteRTModel, custom_ops
    from seq2seq.tasks import captioning

    model_dir, config = captioning_model_dir
    images = list(captioning.read_split(config, "test"))[:4]
    path = runner.export_litert(model_dir, str(tmp_path / "caption.tflite"))
    with open(path, "rb") as f:
        assert set(custom_ops(f.read())) <= set(TF_TEXT_OPS)
    model = LiteRTModel(path)
    assert model.task == "captioning"
    expected = list(runner.predict_items("captioning", images, model_dir=model_dir))
    assert list(runner.predict_items("captioning", images, litert=path)) == expected
    with open(images[0], "rb") as f:
        caption, score = model.caption_one(f.read())
    module = runner.serving_module(runner.load(model_dir))
    _, scores = runner.predict(module, [open(images[0], "rb").read()])
    assert caption == expected[0][1] and score == pytest.approx(scores[0], abs=1e-3)
    with pytest.raises(ValueError, match="holds a captioning model"):
        list(runner.predict_items("translation", ["x"], litert=path))


def test_export_never_overwrites_what_is_not_a_litert_file(sentencepiece_model_dir, tmp_path):
    from seq2seq import runner
    from seq2seq.serving.litert import LiteRTExportError

    keras_file = os.path.join(sentencepiece_model_dir, "model.keras")
    with open(keras_file, "rb") as f:
        before = f.read()
    with pytest.raises(LiteRTExportError, match="refusing to overwrite"):
        runner.export_litert(sentencepiece_model_dir, keras_file)
    with open(keras_file, "rb") as f:
        assert f.read() == before
    os.mkfifo(tmp_path / "fifo.tflite")
    with pytest.raises(LiteRTExportError, match="refusing to overwrite"):
        runner.export_litert(sentencepiece_model_dir, str(tmp_path / "fifo.tflite"))
    with pytest.raises(LiteRTExportError, match="is a folder"):
        runner.export_litert(sentencepiece_model_dir, str(tmp_path))
    with pytest.raises(LiteRTExportError, match="one --model-dir"):
        runner.export_litert([sentencepiece_model_dir, sentencepiece_model_dir], str(tmp_path / "e.tflite"))
    assert not (tmp_path / "e.tflite").exists()


def test_block_repeats_is_bounded():
    from seq2seq.config import MAX_BLOCK_REPEATS, DecodeConfig
    from seq2seq.decoding import decode_settings
    from seq2seq.errors import ConfigError

    assert decode_settings(DecodeConfig(), block_repeats=MAX_BLOCK_REPEATS).block_repeats == MAX_BLOCK_REPEATS
    with pytest.raises(ConfigError, match="decode.block_repeats"):
        decode_settings(DecodeConfig(), block_repeats=MAX_BLOCK_REPEATS + 1)
