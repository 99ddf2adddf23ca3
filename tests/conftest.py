"""Shared pytest fixtures. Keep each group of fixtures under its own banner."""

from __future__ import annotations

import os
import random

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ==================================================================================================
# Trained translation model directories (used by tests/test_export.py and tests/test_inference.py)
#
# Each fixture trains once per test session, in process, through `seq2seq.runner.train` (the
# function behind `seq2seq train`), and returns the model directory (str). Models are tiny: the tests
# check plumbing (export, reload, decoding invariants), not translation quality.
# ==================================================================================================

TRANSLATION_DEMO_CONFIG = os.path.join(ROOT, "configs", "translation", "spa_en_demo.yaml")

# Tiny model and run for real Tatoeba data (~500 pairs, 30 steps).
TINY_TATOEBA = [
    "data.limit=500",
    "train.max_steps=30",
    "train.eval_every=30",
    "train.checkpoint_every=30",
    "train.batch_size=32",
    "train.max_minutes=null",
    "train.mixed_precision=null",
    "train.validation_batches=2",
    "train.learning_rate=0.01",
    "train.lr_schedule=constant",
    "train.warmup_steps=0",
    "train.label_smoothing=0.0",
    "tokenizer.source_vocab_size=400",
    "tokenizer.target_vocab_size=400",
    "model.embedding.dim=16",
    "model.encoder.units=16",
    "model.decoder.units=16",
    "data.validation_fraction=0.05",
    "data.test_fraction=0.05",
    "decode.beam_size=3",
    "decode.n_best=1",
    "decode.batch_size=32",
]

# A toy "language": each source word has one fixed target word; the target keeps the order.
_SYNTHETIC_LEXICON = {
    "el": "the",
    "gato": "cat",
    "perro": "dog",
    "come": "eats",
    "bebe": "drinks",
    "agua": "water",
    "pan": "bread",
    "grande": "big",
    "pequeño": "small",
    "rojo": "red",
    "ve": "sees",
    "la": "the",
    "casa": "house",
    "niña": "girl",
    "niño": "boy",
    "tiene": "has",
    "un": "a",
    "libro": "book",
}


def shared_data_dir(required: str = os.path.join("anki", "spa-eng.txt")) -> str | None:
    """The real-data folder ($SEQ2SEQ_DATA_DIR, else ../shared/data next to the repository) when it holds the
    file `required` (relative to it); None otherwise.
    """
    for candidate in (os.environ.get("SEQ2SEQ_DATA_DIR"), os.path.join(ROOT, "..", "shared", "data")):
        if candidate and os.path.isfile(os.path.join(candidate, required)):
            return os.path.abspath(candidate)
    return None


def write_synthetic_parallel(directory, pairs: int = 600, seed: int = 0) -> tuple[str, str]:
    """Write `pairs` line-aligned toy sentence pairs to `directory`/{train.src,train.tgt}.

    Sources are 2–7 words drawn from a fixed 18-word lexicon (seeded, so the files are identical at
    every call); a target is the word-by-word translation of its source with a final ".".

    Returns:
      (source_path, target_path).
    """
    rng = random.Random(seed)
    words = sorted(_SYNTHETIC_LEXICON)
    sources, targets = [], []
    for _ in range(pairs):
        sentence = [rng.choice(words) for _ in range(rng.randint(2, 7))]
        sources.append(" ".join(sentence) + " .")
        targets.append(" ".join(_SYNTHETIC_LEXICON[w] for w in sentence) + " .")
    paths = (os.path.join(directory, "train.src"), os.path.join(directory, "train.tgt"))
    for path, lines in zip(paths, (sources, targets)):
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return paths


def train_translation_model(model_dir: str, config_values: dict, overrides: list[str]) -> str:
    """Train a translation model with `seq2seq.runner.train` (quietly); returns `model_dir`."""
    from seq2seq import runner
    from seq2seq.config import config_from_dict

    runner.train(config_from_dict(config_values, overrides), model_dir, verbose=0)
    return model_dir


@pytest.fixture(scope="session")
def tatoeba_model_dir(tmp_path_factory):
    """A tiny SentencePiece model trained for 30 steps on 500 real Tatoeba spa→eng pairs.

    Skips when the shared data folder is absent.
    """
    import yaml

    data_dir = shared_data_dir()
    if data_dir is None:
        pytest.skip("real data not found: set SEQ2SEQ_DATA_DIR or place ../shared/data next to the repo")
    with open(TRANSLATION_DEMO_CONFIG, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    model_dir = str(tmp_path_factory.mktemp("tatoeba") / "model")
    return train_translation_model(model_dir, values, TINY_TATOEBA + [f"data.data_dir={data_dir}"])


@pytest.fixture(scope="session")
def synthetic_model_dir(tmp_path_factory):
    """A tiny word-vocabulary model trained for 30 steps on 600 synthetic pairs written to a temp folder
    (needs no shared data).
    """
    data = tmp_path_factory.mktemp("synthetic_data")
    source, target = write_synthetic_parallel(str(data))
    return train_translation_model(str(data / "model"), synthetic_config(source, target), [])


def synthetic_config(source: str, target: str) -> dict:
    """Config values of the tiny word-vocabulary model of `synthetic_model_dir` on the files of
    `write_synthetic_parallel` (a fresh dict: callers may change sections).
    """
    return {
        "task": "translation",
        "data": {
            "format": "parallel",
            "source_file": source,
            "target_file": target,
            "lowercase": True,
            "validation_fraction": 0.05,
            "test_fraction": 0.05,
            "max_source_length": 12,
            "max_target_length": 12,
        },
        "tokenizer": {"kind": "word", "source_vocab_size": 64, "target_vocab_size": 64},
        "model": {"embedding": {"dim": 16}, "encoder": {"units": 16}, "decoder": {"units": 16}},
        "train": {
            "batch_size": 32,
            "max_steps": 30,
            "eval_every": 30,
            "checkpoint_every": 30,
            "validation_batches": 2,
            "learning_rate": 0.01,
        },
        "decode": {"beam_size": 3, "batch_size": 32, "max_length": 20},
    }


@pytest.fixture(scope="session", params=["synthetic", "tatoeba"])
def translation_model_dir(request):
    """Each trained translation model directory in turn (the Tatoeba one skips without shared data)."""
    return request.getfixturevalue(f"{request.param}_model_dir")


@pytest.fixture(scope="session")
def edge_case_texts():
    """Inputs every translation entry point must handle: ordinary sentences (toy and Spanish), an empty
    string, whitespace only, emoji / characters never seen in training, and a sentence far longer than
    data.max_source_length (list of str).
    """
    return [
        "el gato come pan .",
        "la niña tiene un libro rojo .",
        "¿Dónde está el gato?",
        "",
        "  \t  ",
        "🦜🚀 ∰ ǅ 漢字",
        "el perro grande ve la casa y el niño bebe agua " * 30,
    ]


# ==================================================================================================
# Exports served by `seq2seq serve` (used by tests/test_serve_*.py)
#
# Session-scoped: each is written once, through the CLI entry point (`seq2seq export`), from a tiny model
# trained once (the synthetic translation model above; the tiny Flickr8k model of tests/test_captioning_task.py
# at 64x64 pixels, i.e. a 4x4 region grid). Returns the export folder (str).
# ==================================================================================================


@pytest.fixture(scope="session")
def translation_export(synthetic_model_dir, tmp_path_factory):
    """Export of `synthetic_model_dir` with n_best 2 in `translate_nbest` (beam 3)."""
    from seq2seq import runner

    return runner.export(synthetic_model_dir, str(tmp_path_factory.mktemp("serve") / "translate"), n_best=2)


@pytest.fixture(scope="session")
def captioning_export(tmp_path_factory):
    """Export of a tiny captioning model (frozen random SmallCNN, 64x64 input, 4x4 regions, 10 steps on 20
    Flickr8k images per split). Skips when the Flickr8k subset is absent.
    """
    from test_captioning_task import TINY, flickr_data_dir

    from seq2seq.cli import main

    data_dir = flickr_data_dir()
    if data_dir is None:
        pytest.skip("Flickr8k subset not found (set SEQ2SEQ_DATA_DIR or put it in ../shared/data)")
    model_dir = str(tmp_path_factory.mktemp("serve") / "caption_model")
    config = os.path.join(ROOT, "configs", "captioning", "flickr8k_scratch.yaml")
    settings = TINY + ["model.encoder.image_size=64", f"data.data_dir={data_dir}"]
    assert (
        main(
            [
                "--quiet",
                "train",
                config,
                "--model-dir",
                model_dir,
                *[arg for value in settings for arg in ("--set", value)],
            ]
        )
        == 0
    )
    export_dir = os.path.join(model_dir, "caption")
    assert main(["--quiet", "export", "--model-dir", model_dir, "--output", export_dir]) == 0
    return export_dir
