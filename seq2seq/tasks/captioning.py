"""The image-captioning task: data from config, tokenizer, training, evaluation, captioning and export.

Model: Show, Attend and Tell (Xu et al., 2015, ICML): a CNN grid of region features (the
`seq2seq.image_encoder.ImageEncoder` memory), the decoder's initial state from the mean region feature
through the dense bridge, and Bahdanau (additive) or Luong (multiplicative) attention over the regions at
every word; `train.doubly_stochastic` adds the attention regulariser of Xu et al. (2015, eq. 14).

Training with a frozen backbone (`model.encoder.trainable: false`, `data.feature_cache: true`) reads the
backbone features from `pipelines.feature_cache.FeatureCache` (computed once per image content and
backbone configuration); the model is fed `[batch, regions, channels]` features. With a trainable backbone
the CNN runs on the decoded images at every step. Either way the same weights serve images: the
`CaptioningModule` decodes the image bytes, resizes, applies the backbone preprocessing, runs the CNN, beam
search and detokenisation in one TensorFlow graph, which `export` saves as the SavedModel.

Captions are cleaned with `pipelines.captioning.preprocess_caption` (lowercase, punctuation removed)
before the tokenizer is trained (training split only) and before BLEU, so generated captions and
references are compared in the same form.

Data (`data.format`, `READERS`): "flickr8k", "coco" (COCO captions JSON), "table" (CSV/TSV/JSONL) and
"tfds" (TFDS `coco_captions`). Model directory files: see `seq2seq.model_dir` (the tokenizer is
`tokenizers/caption.*`; the feature cache defaults to `MODEL_DIR/feature_cache` unless `data.cache_dir`
names a shared folder).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Sequence

import tensorflow as tf

from pipelines import captioning as readers
from pipelines.feature_cache import FeatureCache
from pipelines.images import check_images, log_skipped_images
from seq2seq.config import CaptioningDataConfig, Config, ConfigError, DecodeConfig, resolve_path
from seq2seq.evaluation import caption_metrics, corpus_bleu
from seq2seq.registry import Registry
from seq2seq.serving.litert import on_device_tokenizer
from seq2seq.serving.modules import CaptioningModule, PixelCaptioningModule
from seq2seq.tasks.base import TASKS, EvaluationSet, Task
from seq2seq.tasks.tokenizers import train_or_load_tokenizer
from seq2seq.word_vectors import apply_pretrained_embeddings

log = logging.getLogger(__name__)

CAPTION = "caption"  # tokenizer file stem in MODEL_DIR/tokenizers
FEATURE_CACHE_DIR = "feature_cache"
SPLITS = ("train", "validation", "test")
READERS = Registry("captioning data format")
_TFDS_SPLITS = {"train": "train", "validation": "val", "test": "test"}


# --------------------------------------------------------------------------------------------------
# Data


def _needs(config: Config, *keys: str) -> None:
    missing = [k for k in keys if not getattr(config.data, k)]
    if missing:
        raise ValueError(f"data.format {config.data.format!r} needs " + " and ".join(f"data.{k}" for k in missing))


def _split(config: Config, every: readers.CaptionSet, split: str) -> readers.CaptionSet:
    d = config.data
    return dict(zip(SPLITS, readers.split_by_image(every, d.seed, d.validation_fraction, d.test_fraction)))[split]


@READERS.register("flickr8k")
def _flickr8k(config: Config, split: str) -> readers.CaptionSet:
    """`data.captions_file` (Flickr8k.token.txt) and `data.image_dir`; the split from
    `data.{train,validation,test}_split_file` when all three are set, else `split_by_image`.
    """
    d = config.data
    _needs(config, "captions_file", "image_dir")
    captions, image_dir = resolve_path(config, d.captions_file), resolve_path(config, d.image_dir)
    split_files = {"train": d.train_split_file, "validation": d.validation_split_file, "test": d.test_split_file}
    if not any(split_files.values()):
        return _split(config, readers.read_flickr8k(captions, image_dir, max_line_bytes=d.max_line_bytes), split)
    if not all(split_files.values()):
        unset = [f"data.{k}_split_file" for k, v in split_files.items() if not v]
        raise ValueError(f"set all three split files or none; {', '.join(unset)} not set")
    return readers.read_flickr8k(
        captions, image_dir, resolve_path(config, split_files[split]), max_line_bytes=d.max_line_bytes
    )


@READERS.register("coco")
def _coco(config: Config, split: str) -> readers.CaptionSet:
    """`data.captions_file` (COCO captions JSON) and `data.image_dir`, split by image."""
    _needs(config, "captions_file", "image_dir")
    every = readers.read_coco_captions(
        resolve_path(config, config.data.captions_file), resolve_path(config, config.data.image_dir)
    )
    return _split(config, every, split)


@READERS.register("table")
def _table(config: Config, split: str) -> readers.CaptionSet:
    """`data.path`: a CSV/TSV/JSONL with `image` and `caption` columns, split by image."""
    _needs(config, "path")
    return _split(
        config,
        readers.read_caption_table(resolve_path(config, config.data.path), max_line_bytes=config.data.max_line_bytes),
        split,
    )


@READERS.register("tfds")
def _tfds(config: Config, split: str) -> readers.CaptionSet:
    """TFDS `data.tfds_name` (default coco_captions, Karpathy splits train / val / test) from
    `data.tfds_data_dir`; images are written once to `data.image_dir` (default: beside the dataset).
    """
    d = config.data
    return readers.read_tfds_coco_captions(
        _TFDS_SPLITS[split],
        data_dir=d.tfds_data_dir,
        image_dir=resolve_path(config, d.image_dir),
        name=d.tfds_name,
        download=d.download,
    )


def read_split(config: Config, split: str) -> readers.CaptionSet:
    """Images and captions of `split` ('train' | 'validation' | 'test'): `{image_path: [caption, ...]}`.

    `data.format` names the reader (`READERS`). `data.limit` keeps the first N images of the split.
    Relative paths resolve against the data folder (`data.data_dir` or $SEQ2SEQ_DATA_DIR).

    Raises:
      ValueError: unknown split or missing keys (named); the readers raise ValueError naming the file and
        line of a malformed row.
      FileNotFoundError: a caption or split file does not exist.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    items = READERS.get(config.data.format, "data.format")(config, split)
    limit = config.data.limit
    if limit is not None and len(items) > limit:
        limited = readers.CaptionSet(list(items.items())[:limit])
        limited.counts, limited.problems = dict(items.counts), list(items.problems)
        items = limited
    return items


def reference_captions(items: dict) -> list[list[str]]:
    """References for BLEU: per image (in `items` order), all its captions cleaned by `preprocess_caption`."""
    flat = readers.caption_texts(items)
    references, start = [], 0
    for captions in items.values():
        references.append(flat[start : start + len(captions)])
        start += len(captions)
    return references


def _build_config(config: Config, for_training: bool) -> Config:
    """`config` with `model.encoder.weights` ready for `build_model`.

    Training resolves a relative weights path against the data folder. Loading a trained model uses no
    pretrained file (None): every weight, the backbone's included, comes from the model directory.
    """
    encoder = config.model.encoder
    weights = encoder.weights
    if not for_training:
        weights = None
    elif weights not in (None, "imagenet"):
        weights = resolve_path(config, weights)
    model = dataclasses.replace(config.model, encoder=dataclasses.replace(encoder, weights=weights))
    return dataclasses.replace(config, model=model)


def uses_feature_cache(config: Config) -> bool:
    """True when training reads cached backbone features: `data.feature_cache` and a frozen backbone."""
    trainable = config.model.encoder.trainable
    return bool(config.data.feature_cache) and (trainable is False or trainable == 0)


def feature_cache_dir(config: Config, model_dir: str) -> str:
    """`data.cache_dir` (~ expanded; shared between runs) or `MODEL_DIR/feature_cache`."""
    if config.data.cache_dir:
        return os.path.expanduser(config.data.cache_dir)
    return os.path.join(model_dir, FEATURE_CACHE_DIR)


def make_datasets(config: Config, tokenizer, encoder, model_dir: str, seed_offset: int = 0):
    """(train dataset (repeated), validation dataset or None) of ((images or features, target_in), target_out).

    With `uses_feature_cache(config)` the inputs are cached features float32 [batch, regions, channels]
    (missing entries computed with `encoder.feature_fn`), else images float32 [batch, H, W, 3] in [0, 255].
    """
    d, tr = config.data, config.train
    cache = (
        FeatureCache(feature_cache_dir(config, model_dir), encoder.backbone_key) if uses_feature_cache(config) else None
    )
    common = dict(
        tokenizer=tokenizer,
        batch_size=tr.batch_size,
        max_caption_length=d.max_target_length,
        image_size=encoder.image_size,
        features=cache,
        feature_fn=encoder.feature_fn,
    )
    stats: dict = {}
    train_ds = readers.make_captioning_dataset(
        read_split(config, "train"),
        training=True,
        seed=tr.seed + seed_offset,
        shuffle_buffer=tr.shuffle_buffer,
        stats=stats,
        **common,
    )
    log.info("training captions: %s", stats)
    validation = read_split(config, "validation")
    val_ds = readers.make_captioning_dataset(validation, training=False, **common) if validation else None
    return train_ds.repeat(), val_ds


def _read_bytes(paths: Sequence[str]) -> list[bytes]:
    result = []
    for path in paths:
        with open(path, "rb") as handle:
            result.append(handle.read())
    return result


def _readable(paths: Sequence[str]) -> list[str]:
    """The decodable images among `paths` (bad ones logged); raises ValueError when none is left."""
    ok, problems = check_images(paths)
    log_skipped_images(problems, log)
    if not ok:
        raise ValueError("none of the images can be read: " + "; ".join(f"{p}: {r}" for p, r in problems[:5]))
    return ok


def write_attention_plot(module: CaptioningModule, image_path: str, path: str) -> str:
    """Plot each generated word's attention over `image_path` (its best caption) into the PNG `path`."""
    from seq2seq.plots import plot_caption_attention

    data = _read_bytes([image_path])[0]
    out = module.caption_with_attention(tf.constant([data], tf.string))
    length = int(out["lengths"][0])
    words = [p.decode("utf-8") for p in out["target_pieces"][0, :length].numpy()]
    image = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    plot_caption_attention(image, words, out["attention"][0, :length].numpy(), module.grid_shape, path)
    log.info("attention plot written to %s", path)
    return path


@TASKS.register("captioning")
class CaptioningTask(
    Task,
    name="captioning",
    data_config=CaptioningDataConfig,
    readers=READERS,
    unit="images",
    serving_class=CaptioningModule,
    encoder="image",
):
    """Image captioning: images → captions (Show, Attend and Tell; Xu et al., 2015)."""

    @classmethod
    def check_config(cls, config: Config) -> None:
        m = config.model
        if m.encoder.alpha <= 0:
            raise ConfigError(f"model.encoder.alpha: got {m.encoder.alpha}; must be > 0")
        if m.encoder.image_size is not None and m.encoder.image_size < 16:
            raise ConfigError(
                f"model.encoder.image_size: got {m.encoder.image_size}; must be >= 16 pixels or null "
                f"(the backbone's native size)"
            )
        if m.embedding.source_pretrained:
            raise ConfigError(
                "model.embedding.source_pretrained: a captioning model has no source text embedding "
                "(image encoder); remove the key"
            )

    def model_config(self, for_training: bool) -> Config:
        return _build_config(self.config, for_training)

    def inputs_are_features(self, for_training: bool) -> bool:
        return for_training and uses_feature_cache(self.config)

    def check_data(self) -> None:
        d = self.config.data
        if d.format != "tfds" and not d.test_split_file and d.test_fraction == 0:
            raise ConfigError(
                "data.test_fraction: 0 leaves the test split empty, and training ends with its "
                "evaluation; set a fraction > 0 or give data.test_split_file"
            )
        if not read_split(self.config, "train"):
            raise ValueError(
                f"no training image has both a readable file and a caption: check data.image_dir "
                f"({d.image_dir!r}), data.captions_file and data.train_split_file"
            )

    def data_files(self) -> list[str]:
        d = self.config.data
        names = [d.captions_file, d.path, d.train_split_file, d.validation_split_file, d.test_split_file]
        return [resolve_path(self.config, n) for n in names if n and os.path.isfile(resolve_path(self.config, n))]

    def tokenizer_names(self):
        return (CAPTION,)

    def train_tokenizers(self, directory: str) -> None:
        items = read_split(self.config, "train")
        train_or_load_tokenizer(
            self.config.tokenizer,
            directory,
            CAPTION,
            self.config.tokenizer.target_vocab_size,
            lambda: readers.caption_texts(items),
            lowercase=True,
        )

    def vocab_sizes(self, tokenizers):
        return None, tokenizers[CAPTION].vocab_size

    def target_tokenizer(self, tokenizers):
        return tokenizers[CAPTION]

    def prepare_model(self, model, tokenizers) -> None:
        apply_pretrained_embeddings(model, self.config, None, tokenizers[CAPTION])

    def datasets(self, tokenizers, model, model_dir, seed_offset=0):
        return make_datasets(self.config, tokenizers[CAPTION], model.encoder, model_dir, seed_offset=seed_offset)

    def evaluation_set(self, split: str) -> EvaluationSet:
        items = read_split(self.config, split)
        if not items:
            raise ValueError(f"the {split} split has no images; check the data.* settings")
        paths = _readable(list(items))
        # References cleaned like the training captions (`preprocess_caption`), all captions of each image.
        return EvaluationSet(
            _read_bytes(paths),
            reference_captions({p: items[p] for p in paths}),
            [os.path.basename(p) for p in paths],
            skipped=len(items) - len(paths),
        )

    @classmethod
    def prediction_inputs(cls, items):
        paths = _readable([os.fspath(p) for p in items])
        return _read_bytes(paths), paths

    def serving_module(self, model, tokenizers, decode: DecodeConfig) -> CaptioningModule:
        return CaptioningModule(model, tokenizers[CAPTION], decode, self.config.data.max_target_length)

    def litert_module(self, model, tokenizers, decode: DecodeConfig) -> PixelCaptioningModule:
        """`PixelCaptioningModule` for one decoded image per call (LiteRT has no image-decoding kernels) on the
        caption tokenizer's on-device twin.
        """
        tokenizer = on_device_tokenizer(tokenizers[CAPTION])
        return PixelCaptioningModule(model, tokenizer, decode, self.config.data.max_target_length, batch_size=1)

    def metrics(self, hypotheses, references, wmt_language: str | None = None) -> dict:
        """sacreBLEU BLEU-1..4 (multi-reference) and the coco-caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D
        by pycocoevalcap, on its PTB tokenisation; each {"score", "signature"} or {"skipped": reason}).
        """
        if wmt_language is not None:
            raise ValueError("--wmt-language is for translation evaluations")
        bleu = corpus_bleu(hypotheses, references)
        return {
            **{f"bleu_{n}": bleu["bleu_n"]["sacrebleu"][n] for n in range(1, 5)},
            "sacrebleu": bleu["score"],
            "nltk_bleu": bleu["nltk_score"],
            **bleu,
            "coco": caption_metrics(hypotheses, references),
        }

    def examples(self, evaluation, hypotheses, count=5):
        return [
            {"image": name, "hypothesis": h, "references": r}
            for name, r, h in list(zip(evaluation.names, evaluation.references, hypotheses))[:count]
        ]

    def plot_attention(self, module, item, path: str) -> str:
        return write_attention_plot(module, item, path)
