"""The translation task: data from config, tokenizers, training, evaluation and translation of new text."""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import time

import keras
import tensorflow as tf
from tqdm import tqdm

from pipelines import translation as readers
from pipelines.atomic import atomic_path
from pipelines.batching import make_translation_dataset
from pipelines.text import normalize
from pipelines.tokenizers import load_tokenizer
from seq2seq import model_dir as md
from seq2seq.config import Config, ConfigError, resolve_path
from seq2seq.distribute import chief_first, is_chief, make_strategy
from seq2seq.evaluation import corpus_bleu
from seq2seq.export import export_translation
from seq2seq.inference import TranslationModule, decode_settings
from seq2seq.models import build_model
from seq2seq.pretrained_embeddings import apply_pretrained_embeddings
from seq2seq.training import BEST_WEIGHTS, atomic_save_model, compile_model, fit, list_checkpoints, trained_weights_path
from seq2seq.vocabularies import train_or_load_tokenizer

log = logging.getLogger(__name__)

SOURCE, TARGET = "source", "target"
_TFDS_SPLITS = {"train": "train", "validation": "validation", "test": "test"}


# --------------------------------------------------------------------------------------------------
# Data


def _raw_pairs(config: Config, split: str, stats: readers.PairStats):
    """Uncleaned (source, target) pairs of `split` ('train' | 'validation' | 'test')."""
    d = config.data
    explicit = {"validation": (d.validation_source_file, d.validation_target_file),
                "test": (d.test_source_file, d.test_target_file)}
    if d.format == "parallel" and (d.validation_source_file or d.test_source_file):
        # Standard splits given as files (e.g. Multi30k train / val / test_2016_flickr).
        source, target = (d.source_file, d.target_file) if split == "train" else explicit[split]
        if not source or not target:
            raise ValueError(f"data.{split}_source_file and data.{split}_target_file are both needed")
        return readers.read_parallel(resolve_path(config, source), resolve_path(config, target), limit=d.limit,
                                     skip_bad_lines=d.skip_bad_lines, stats=stats)
    if d.format == "tfds":
        return readers.read_tfds(d.tfds_name, _TFDS_SPLITS[split], data_dir=d.tfds_data_dir, limit=d.limit,
                                 download=d.download)
    if d.format == "parallel":
        pairs = readers.read_parallel(resolve_path(config, d.source_file), resolve_path(config, d.target_file),
                                      limit=d.limit, skip_bad_lines=d.skip_bad_lines, stats=stats)
    else:
        path = resolve_path(config, d.path)
        if not os.path.exists(path) and d.download:
            path = readers.download_anki(os.path.basename(d.path).rsplit(".", 1)[0], cache_dir=d.cache_dir)
        pairs = readers.read_anki(path, reverse=d.reverse, limit=d.limit, skip_bad_lines=d.skip_bad_lines,
                                  stats=stats)
    return readers.split_pairs(readers.clean_pairs(pairs, stats), split, d.seed, d.validation_fraction,
                               d.test_fraction)


def pairs(config: Config, split: str, stats: readers.PairStats | None = None):
    """Cleaned (source, target) str pairs of `split`, streamed (a new generator at every call)."""
    stats = stats if stats is not None else readers.PairStats()
    raw = _raw_pairs(config, split, stats)
    d = config.data
    if d.format == "anki" or (d.format == "parallel" and not (d.validation_source_file or d.test_source_file)):
        return raw  # already cleaned before splitting (cleaning twice would count every pair twice)
    return readers.clean_pairs(raw, stats)


def _check_data_exists(config: Config) -> None:
    d = config.data
    files = {"anki": [d.path], "parallel": [d.source_file, d.target_file]}.get(d.format, [])
    for name in files:
        path = resolve_path(config, name)
        if path and not os.path.exists(path) and not d.download:
            raise FileNotFoundError(
                f"data file {path!r} not found. Set SEQ2SEQ_DATA_DIR (or data.data_dir) to the folder that holds "
                f"{name!r}, or set data.download=true to download it (needs internet).")


def train_tokenizers(config: Config, directory: str):
    """Train (or load, when already saved in `directory`) the source and target tokenizers.

    Trained on the training split only. Returns (source_tokenizer, target_tokenizer).
    """
    t = config.tokenizer
    if t.shared:  # one vocabulary for both sides (model.embedding.share), saved under both names
        tokenizer = train_or_load_tokenizer(t, directory, SOURCE, t.source_vocab_size,
                                            functools.partial(_both_sides, config),
                                            lowercase=config.data.lowercase)
        for ext in (".model", ".json"):  # the .json last: its presence means the pair is complete
            _copy_atomic(os.path.join(directory, SOURCE + ext), os.path.join(directory, TARGET + ext))
        return tokenizer, tokenizer
    return tuple(
        train_or_load_tokenizer(t, directory, name, size,
                                functools.partial(_side, config, side), lowercase=config.data.lowercase)
        for side, name, size in ((0, SOURCE, t.source_vocab_size), (1, TARGET, t.target_vocab_size)))


def _tokenizers_or_config_error(config: Config, directory: str):
    """`train_tokenizers`, with a vocabulary size the data cannot give reported as a ConfigError naming the key."""
    try:
        return train_tokenizers(config, directory)
    except ValueError as err:
        match = re.search(r"vocab_size=\d+ is too (?:large|small) for the training data of '(source|target)'", str(err))
        if not match:
            raise
        raise ConfigError(f"tokenizer.{match.group(1)}_vocab_size: {err}") from err


def _copy_atomic(source: str, destination: str) -> None:
    """Copy `source` (if it exists) to `destination` through a temporary file and a rename."""
    if os.path.exists(source):
        with atomic_path(destination) as tmp:
            shutil.copyfile(source, tmp)


def _side(config: Config, side: int):
    """Sentences of one side (0 source, 1 target) of the training split, streamed."""
    return (pair[side] for pair in pairs(config, "train"))


def _both_sides(config: Config):
    """Source and target sentences of the training split (for a shared vocabulary), streamed."""
    return (sentence for pair in pairs(config, "train") for sentence in pair)


def make_datasets(config: Config, source_tok, target_tok, seed_offset: int = 0):
    """(train dataset (repeated), validation dataset) of ((source_ids, target_in_ids), target_out_ids)."""
    d, tr = config.data, config.train
    common = dict(source_tokenizer=source_tok, target_tokenizer=target_tok, batch_size=tr.batch_size,
                  max_source_length=d.max_source_length, max_target_length=d.max_target_length)
    stats = readers.PairStats()
    train_ds, train_lengths = make_translation_dataset(
        functools.partial(pairs, config, "train", stats), training=True, shuffle_buffer=tr.shuffle_buffer,
        seed=tr.seed + seed_offset, **common)
    log.info("training pairs: %s; %s", train_lengths.summary(), stats.summary())
    if train_lengths.kept == 0:
        raise ValueError("no training pairs left after cleaning and the length filter; check data.path, "
                         "data.limit and data.max_source_length / max_target_length")
    val_ds, val_lengths = make_translation_dataset(functools.partial(pairs, config, "validation"), training=False,
                                                   **common)
    log.info("validation pairs: %s", val_lengths.summary())
    return train_ds.repeat(), (val_ds if val_lengths.kept else None)


# --------------------------------------------------------------------------------------------------
# Train / load / evaluate / translate


def train(config: Config, model_dir: str, verbose: int = 1) -> dict:
    """Train (or resume) a translation model in `model_dir`, then evaluate it on the test split.

    The model is built and compiled inside the `train.strategy` scope (`seq2seq.distribute`);
    `train.batch_size` is the global batch, split across replicas by Keras `fit`.

    Returns:
      the metrics of the test split (see `evaluate`), plus `train_seconds` and `steps`. A non-chief worker
      of a multi-worker run returns only `train_seconds` and `steps` (the chief evaluates).
    """
    _check_data_exists(config)
    strategy = make_strategy(config.train.strategy)  # first: multi-worker set-up must precede other TF ops
    tok_dir = os.path.join(model_dir, md.TOKENIZER_DIR)
    chief_first(strategy, lambda: (md.prepare(model_dir, config), _tokenizers_or_config_error(config, tok_dir)),
                [os.path.join(tok_dir, f"{name}.json") for name in (SOURCE, TARGET)])
    keras.utils.set_random_seed(config.train.seed)
    source_tok, target_tok = load_tokenizer(tok_dir, SOURCE), load_tokenizer(tok_dir, TARGET)
    start_step = list_checkpoints(model_dir)[-1][0] if list_checkpoints(model_dir) else 0
    train_ds, val_ds = make_datasets(config, source_tok, target_tok, seed_offset=start_step)
    with strategy.scope():  # variables, optimizer state and the compiled step are created per replica
        model = build_model(config, source_tok.vocab_size, target_tok.vocab_size)
        apply_pretrained_embeddings(model, config, source_tok, target_tok)
        compile_model(model, config.train)
    log.info("model: %d parameters", model.count_params())
    started = time.time()
    result = fit(model, train_ds, val_ds, config.train, model_dir, verbose=verbose)
    seconds = time.time() - started
    if not is_chief(strategy):  # multi-worker: the chief alone saves the model and evaluates it
        return {"train_seconds": round(seconds, 1), "steps": result["final_step"]}
    model.load_weights(os.path.join(model_dir, BEST_WEIGHTS))
    atomic_save_model(model, os.path.join(model_dir, md.MODEL_FILE))
    metrics = evaluate(model_dir, "test", loaded=(config, model, source_tok, target_tok))
    metrics.update({"train_seconds": round(seconds, 1), "steps": result["final_step"]})
    md.update_metrics(model_dir, "test", metrics)
    return metrics


def load(model_dir: str):
    """(config, model, source_tokenizer, target_tokenizer) of a trained model directory.

    Weights: best.weights.h5, else the newest checkpoint.

    Raises:
      ModelDirError: not a model directory, or no trained weights in it yet.
    """
    config = md.read_config(model_dir)
    if config.task != "translation":
        raise md.ModelDirError(f"{model_dir!r} holds a {config.task} model, not a translation model")
    tok_dir = os.path.join(model_dir, md.TOKENIZER_DIR)
    try:
        source_tok, target_tok = load_tokenizer(tok_dir, SOURCE), load_tokenizer(tok_dir, TARGET)
    except (FileNotFoundError, OSError) as err:
        raise md.ModelDirError(f"{model_dir!r} has no tokenizers yet ({err}); was training started?") from None
    weights = trained_weights_path(model_dir)
    model = build_model(config, source_tok.vocab_size, target_tok.vocab_size)
    compile_model(model, config.train)  # checkpoints hold optimizer state too
    model.load_weights(weights)
    return config, model, source_tok, target_tok


def translator(config: Config, model, source_tok, target_tok, **decode_overrides) -> TranslationModule:
    """A `TranslationModule` for `model` with `config.decode` (fields overridable, e.g. beam_size=1)."""
    decode = decode_settings(config.decode, **decode_overrides)
    return TranslationModule(model, source_tok, target_tok, decode, config.data.max_source_length)


def translate_lines(module: TranslationModule, texts, batch_size: int = 64, progress: bool = False):
    """Translate a list of str in batches; returns (translations: list[str], scores: list[float])."""
    translations, scores = [], []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="translating", unit="batch", disable=not progress):
        out = module.translate(tf.constant(texts[start:start + batch_size], tf.string))
        translations += [t.decode("utf-8") for t in out["translation"].numpy()]
        scores += [float(s) for s in out["score"].numpy()]
    return translations, scores


def evaluate(model_dir: str, split: str = "test", loaded=None, progress: bool = True, **decode_overrides) -> dict:
    """BLEU of the model in `model_dir` on `split`, written into metrics.json.

    References are normalised like the model's inputs (Unicode NFKC, and lowercased when data.lowercase).

    Returns:
      dict: sacrebleu (score), sacrebleu_signature, nltk_bleu, bleu_1..4, sentences, decode settings,
      and examples (five source / reference / hypothesis triples).
    """
    config, model, source_tok, target_tok = loaded or load(model_dir)
    module = translator(config, model, source_tok, target_tok, **decode_overrides)
    data = list(pairs(config, split))
    if not data:
        raise ValueError(f"the {split} split is empty; check data.* settings")
    sources = [s for s, _ in data]
    references = [r.decode("utf-8") for r in
                  normalize(tf.constant([t for _, t in data]), lowercase=config.data.lowercase).numpy()]
    started = time.time()
    hypotheses, _ = translate_lines(module, sources, config.decode.batch_size, progress=progress)
    seconds = time.time() - started
    bleu = corpus_bleu(hypotheses, references)
    metrics = {
        "split": split, "sentences": len(data), "decode_seconds": round(seconds, 2),
        "decode": {k: v for k, v in module.decode_config.items()},
        "sacrebleu": bleu["score"], "nltk_bleu": bleu["nltk_score"],
        **bleu,
        "examples": [{"source": s, "reference": r, "hypothesis": h}
                     for s, r, h in list(zip(sources, references, hypotheses))[:5]],
    }
    md.update_metrics(model_dir, split, metrics)
    return metrics


def export(model_dir: str, output_dir: str, **decode_overrides) -> str:
    """Export the model in `model_dir` as a strings-in/strings-out SavedModel at `output_dir` (atomic)."""
    config, model, source_tok, target_tok = load(model_dir)
    return export_translation(translator(config, model, source_tok, target_tok, **decode_overrides), output_dir)
