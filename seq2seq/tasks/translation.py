"""The translation task: parallel text in, translations out.

Data (`data.format`, `READERS`): "anki" (a Tatoeba/Anki TSV, split deterministically by source sentence),
"parallel" (two aligned files, optionally with explicit validation/test files, e.g. Multi30k) and "tfds" (a
TFDS translation dataset). Tokenizers: a source and a target SentencePiece or word vocabulary (one shared
vocabulary with `tokenizer.shared`), trained on the training split only. Serving: `TranslationModule`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil

import tensorflow as tf

from pipelines import translation as readers
from pipelines.atomic import atomic_path
from pipelines.batching import make_translation_dataset
from pipelines.tokenizers import SentencePieceTokenizer
from seq2seq.config import Config, ConfigError, DecodeConfig, TranslationDataConfig, resolve_path
from seq2seq.errors import LiteRTExportError
from seq2seq.evaluation import corpus_bleu, read_reference_streams, translation_metrics
from seq2seq.registry import Registry
from seq2seq.repetition import repetition_rate
from seq2seq.serving.litert import on_device_tokenizer
from seq2seq.serving.modules import TranslationModule
from seq2seq.tasks.base import TASKS, EvaluationSet, Task
from seq2seq.tasks.tokenizers import train_or_load_tokenizer
from seq2seq.word_vectors import apply_pretrained_embeddings

log = logging.getLogger(__name__)

SOURCE, TARGET = "source", "target"
_TFDS_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
READERS = Registry("translation data format")


# --------------------------------------------------------------------------------------------------
# Data


def _reader_options(d, stats: readers.PairStats) -> dict:
    """The keyword arguments every text reader takes from the data section."""
    return dict(limit=d.limit, skip_bad_lines=d.skip_bad_lines, stats=stats, max_line_bytes=d.max_line_bytes)


def _explicit_splits(d) -> bool:
    return bool(d.validation_source_file or d.test_source_file)


@READERS.register("parallel")
def _parallel_pairs(config: Config, split: str, stats: readers.PairStats):
    """Two aligned files; with `data.{validation,test}_{source,target}_file` the standard splits of a corpus
    (e.g. Multi30k train / val / test_2016_flickr), else one pair of files split by source sentence.
    """
    d = config.data
    if _explicit_splits(d):
        explicit = {
            "train": (d.source_file, d.target_file),
            "validation": (d.validation_source_file, d.validation_target_file),
            "test": (d.test_source_file, d.test_target_file),
        }
        source, target = explicit[split]
        if not source or not target:
            raise ValueError(f"data.{split}_source_file and data.{split}_target_file are both needed")
        return readers.clean_pairs(
            readers.read_parallel(
                resolve_path(config, source), resolve_path(config, target), **_reader_options(d, stats)
            ),
            stats,
        )
    pairs = readers.read_parallel(
        resolve_path(config, d.source_file), resolve_path(config, d.target_file), **_reader_options(d, stats)
    )
    return readers.split_pairs(readers.clean_pairs(pairs, stats), split, d.seed, d.validation_fraction, d.test_fraction)


@READERS.register("anki")
def _anki_pairs(config: Config, split: str, stats: readers.PairStats):
    """A Tatoeba/Anki TSV (downloaded with `data.download`), split deterministically by source sentence."""
    d = config.data
    path = resolve_path(config, d.path)
    if not os.path.exists(path) and d.download:
        path = readers.download_anki(os.path.basename(d.path).rsplit(".", 1)[0], cache_dir=d.cache_dir)
    pairs = readers.read_anki(path, reverse=d.reverse, **_reader_options(d, stats))
    return readers.split_pairs(readers.clean_pairs(pairs, stats), split, d.seed, d.validation_fraction, d.test_fraction)


@READERS.register("tfds")
def _tfds_pairs(config: Config, split: str, stats: readers.PairStats):
    """A TFDS translation dataset `data.tfds_name` (its own train / validation / test splits)."""
    d = config.data
    return readers.clean_pairs(
        readers.read_tfds(
            d.tfds_name, _TFDS_SPLITS[split], data_dir=d.tfds_data_dir, limit=d.limit, download=d.download
        ),
        stats,
    )


def pairs(config: Config, split: str, stats: readers.PairStats | None = None):
    """Cleaned (source, target) str pairs of `split`, streamed (a new generator at every call)."""
    stats = stats if stats is not None else readers.PairStats()
    return READERS.get(config.data.format, "data.format")(config, split, stats)


def _check_data_exists(config: Config) -> None:
    d = config.data
    files = {"anki": [d.path], "parallel": [d.source_file, d.target_file]}.get(d.format, [])
    for name in files:
        path = resolve_path(config, name)
        if path and not os.path.exists(path) and not d.download:
            raise FileNotFoundError(
                f"data file {path!r} not found. Set SEQ2SEQ_DATA_DIR (or data.data_dir) to the folder that holds "
                f"{name!r}, or set data.download=true to download it (needs internet)."
            )


def train_tokenizers(config: Config, directory: str):
    """Train (or load, when already saved in `directory`) the source and target tokenizers.

    Trained on the training split only. Returns (source_tokenizer, target_tokenizer).
    """
    t = config.tokenizer
    if t.shared:  # one vocabulary for both sides (model.embedding.share), saved under both names
        tokenizer = train_or_load_tokenizer(
            t,
            directory,
            SOURCE,
            t.source_vocab_size,
            functools.partial(_both_sides, config),
            lowercase=config.data.lowercase,
        )
        for ext in (".model", ".json"):  # the .json last: its presence means the pair is complete
            _copy_atomic(os.path.join(directory, SOURCE + ext), os.path.join(directory, TARGET + ext))
        return tokenizer, tokenizer
    return tuple(
        train_or_load_tokenizer(
            t, directory, name, size, functools.partial(_side, config, side), lowercase=config.data.lowercase
        )
        for side, name, size in ((0, SOURCE, t.source_vocab_size), (1, TARGET, t.target_vocab_size))
    )


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
    common = dict(
        source_tokenizer=source_tok,
        target_tokenizer=target_tok,
        batch_size=tr.batch_size,
        max_source_length=d.max_source_length,
        max_target_length=d.max_target_length,
    )
    stats = readers.PairStats()
    train_ds, train_lengths = make_translation_dataset(
        functools.partial(pairs, config, "train", stats),
        training=True,
        shuffle_buffer=tr.shuffle_buffer,
        seed=tr.seed + seed_offset,
        **common,
    )
    log.info("training pairs: %s; %s", train_lengths.summary(), stats.summary())
    if train_lengths.kept == 0:
        raise ValueError(
            "no training pairs left after cleaning and the length filter; check data.path, "
            "data.limit and data.max_source_length / max_target_length"
        )
    val_ds, val_lengths = make_translation_dataset(
        functools.partial(pairs, config, "validation"), training=False, **common
    )
    log.info("validation pairs: %s", val_lengths.summary())
    return train_ds.repeat(), (val_ds if val_lengths.kept else None)


@TASKS.register("translation")
class TranslationTask(
    Task,
    name="translation",
    data_config=TranslationDataConfig,
    readers=READERS,
    unit="sentences",
    serving_class=TranslationModule,
    encoder="recurrent",
):
    """Translation: source sentences → target sentences (Sutskever et al., 2014; Bahdanau et al., 2015)."""

    @classmethod
    def check_config(cls, config: Config) -> None:
        d = config.data
        if d.max_source_length < 1:
            raise ConfigError(f"data.max_source_length: got {d.max_source_length}; must be a positive integer (>= 1)")
        if d.format == "anki" and not d.path:
            raise ConfigError("data.path: the Anki/TSV file is required when data.format is 'anki'")
        if d.format == "parallel" and not (d.source_file and d.target_file):
            raise ConfigError(
                "data.source_file: data.source_file and data.target_file are required when data.format is 'parallel'"
            )
        if d.format == "tfds" and not d.tfds_name:
            raise ConfigError("data.tfds_name: required when data.format is 'tfds'")

    def check_data(self) -> None:
        _check_data_exists(self.config)
        d = self.config.data
        if d.format != "tfds" and not _explicit_splits(d) and d.test_fraction == 0:
            raise ConfigError(
                "data.test_fraction: 0 leaves the test split empty, and training ends with its "
                "evaluation; set a fraction > 0 or give data.test_source_file / test_target_file"
            )

    def data_files(self) -> list[str]:
        d = self.config.data
        names = (
            [d.path]
            if d.format == "anki"
            else [
                d.source_file,
                d.target_file,
                d.validation_source_file,
                d.validation_target_file,
                d.test_source_file,
                d.test_target_file,
            ]
        )
        return [resolve_path(self.config, n) for n in names if n and os.path.isfile(resolve_path(self.config, n))]

    def tokenizer_names(self):
        return SOURCE, TARGET

    def train_tokenizers(self, directory: str) -> None:
        _tokenizers_or_config_error(self.config, directory)

    def vocab_sizes(self, tokenizers):
        return tokenizers[SOURCE].vocab_size, tokenizers[TARGET].vocab_size

    def target_tokenizer(self, tokenizers):
        return tokenizers[TARGET]

    def prepare_model(self, model, tokenizers) -> None:
        apply_pretrained_embeddings(model, self.config, tokenizers[SOURCE], tokenizers[TARGET])

    def datasets(self, tokenizers, model, model_dir, seed_offset=0):
        return make_datasets(self.config, tokenizers[SOURCE], tokenizers[TARGET], seed_offset=seed_offset)

    def evaluation_set(self, split: str) -> EvaluationSet:
        data = list(pairs(self.config, split))
        if not data:
            raise ValueError(f"the {split} split is empty; check data.* settings")
        sources = [s for s, _ in data]
        # References exactly as they stand in the data (the metrics apply Unicode NFC to both sides only).
        return EvaluationSet(sources, [[t] for _, t in data], sources)

    @classmethod
    def external_evaluation_set(cls, source_file: str, reference_files: list[str]) -> EvaluationSet:
        """A test set given as files: one source sentence per line, one reference stream per file (aligned).

        Raises:
          DataError: a file is not valid UTF-8, or its line count differs from the source's (file and counts named).
        """
        sources = read_reference_streams([source_file])[0]
        streams = read_reference_streams(reference_files, expected_lines=len(sources))
        return EvaluationSet(sources, [list(refs) for refs in zip(*streams)], sources)

    def serving_module(self, model, tokenizers, decode: DecodeConfig) -> TranslationModule:
        return TranslationModule(
            model, tokenizers[SOURCE], tokenizers[TARGET], decode, self.config.data.max_source_length
        )

    def litert_module(self, model, tokenizers, decode: DecodeConfig) -> TranslationModule:
        """`TranslationModule` for one sentence per call on the tokenizers' on-device twins (SentencePiece only:
        a word vocabulary's regex splitting and hash-table lookup have no LiteRT kernels).
        """
        for side in (SOURCE, TARGET):
            if not isinstance(tokenizers[side], SentencePieceTokenizer):
                raise LiteRTExportError(
                    f"LiteRT export of a translation model needs SentencePiece tokenizers; the {side} tokenizer is "
                    f"{type(tokenizers[side]).__name__} (its regex_split and hash-table lookup ops have no LiteRT "
                    f"kernels)"
                )
        return TranslationModule(
            model,
            on_device_tokenizer(tokenizers[SOURCE]),
            on_device_tokenizer(tokenizers[TARGET]),
            decode,
            self.config.data.max_source_length,
            batch_size=1,
        )

    def metrics(self, hypotheses, references, wmt_language: str | None = None) -> dict:
        """Cased BLEU (the headline), lowercased BLEU, chrF and TER by sacreBLEU, each with its signature; with
        `wmt_language` (e.g. "de") also BLEU in the WMT multimodal convention (lc.norm.tok); and nltk's BLEU.
        """
        streams = [list(stream) for stream in zip(*references)]
        scores = translation_metrics(
            hypotheses, streams, wmt_convention=wmt_language is not None, target_language=wmt_language
        )
        nltk = corpus_bleu(hypotheses, references)["nltk_score"]
        return {
            "sacrebleu": scores["bleu"]["score"],
            "sacrebleu_signature": scores["bleu"]["signature"],
            "nltk_bleu": nltk,
            **scores,
            # outputs that repeat a 1-3-gram back to back ("am strand am strand"), and the references' own rate
            "repetition_rate": repetition_rate(hypotheses),
            "reference_repetition_rate": repetition_rate([refs[0] for refs in references]),
        }

    def examples(self, evaluation, hypotheses, count=5):
        return [
            {"source": s, "reference": r[0], "hypothesis": h}
            for s, r, h in list(zip(evaluation.names, evaluation.references, hypotheses))[:count]
        ]

    def plot_attention(self, module, item, path: str) -> str:
        from seq2seq.plots import plot_translation_attention

        out = module.translate_with_attention(tf.constant([item], tf.string))
        plot_translation_attention(out, path)
        log.info("attention map written to %s", path)
        return path
