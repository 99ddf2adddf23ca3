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

Model directory files: see `seq2seq.model_dir` (the tokenizer is `tokenizers/caption.*`; the feature cache
defaults to `MODEL_DIR/feature_cache` unless `data.cache_dir` names a shared folder).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Iterator, Sequence

import keras
import tensorflow as tf

from pipelines import captioning as readers
from pipelines.feature_cache import FeatureCache
from pipelines.images import check_images, decode_image, log_skipped_images
from pipelines.tokenizers import load_tokenizer
from seq2seq import model_dir as md
from seq2seq.config import Config, DecodeConfig, resolve_path
from seq2seq.distribute import chief_first, is_chief, make_strategy
from seq2seq.evaluation import corpus_bleu
from seq2seq.export import export_captioning, load_saved_model
from seq2seq.inference import decode_batch, decode_settings, detokenize_nbest
from seq2seq.models import build_model
from seq2seq.training import BEST_WEIGHTS, atomic_save_model, compile_model, fit, list_checkpoints, trained_weights_path
from seq2seq.vocabularies import train_or_load_tokenizer

log = logging.getLogger(__name__)

CAPTION = "caption"  # tokenizer file stem in MODEL_DIR/tokenizers
FEATURE_CACHE_DIR = "feature_cache"
SPLITS = ("train", "validation", "test")
IMAGE_SIGNATURE = [tf.TensorSpec([None], tf.string, name="image_bytes")]


# --------------------------------------------------------------------------------------------------
# Data


def read_split(config: Config, split: str) -> readers.CaptionSet:
    """Images and captions of `split` ('train' | 'validation' | 'test'): `{image_path: [caption, ...]}`.

    `data.format`:
      - "flickr8k": `data.captions_file` (Flickr8k.token.txt format) and `data.image_dir`; the split is
        `data.{train,validation,test}_split_file` (one image name per line) when all three are set, else
        the deterministic `split_by_image` with `data.seed`, `data.validation_fraction`, `data.test_fraction`.
      - "coco": `data.captions_file` (COCO captions JSON) and `data.image_dir`, split by image.
      - "table": `data.path` (CSV/TSV/JSONL with `image` and `caption` columns), split by image.
    `data.limit` keeps the first N images of the split. Relative paths resolve against the data folder
    (`data.data_dir` or $SEQ2SEQ_DATA_DIR).

    Raises:
      ValueError: unknown split, unsupported format ("tfds" is not wired for captioning), or missing keys
        (named); the readers raise ValueError naming the file and line of a malformed row.
      FileNotFoundError: a caption or split file does not exist.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    d = config.data
    split_files = {"train": d.train_split_file, "validation": d.validation_split_file, "test": d.test_split_file}
    if d.format in ("flickr8k", "coco"):
        missing = [k for k in ("captions_file", "image_dir") if not getattr(d, k)]
        if missing:
            raise ValueError(f"data.format {d.format!r} needs " + " and ".join(f"data.{k}" for k in missing))
        captions, image_dir = resolve_path(config, d.captions_file), resolve_path(config, d.image_dir)
    if d.format == "flickr8k" and any(split_files.values()):
        if not all(split_files.values()):
            unset = [f"data.{k}_split_file" for k, v in split_files.items() if not v]
            raise ValueError(f"set all three split files or none; {', '.join(unset)} not set")
        items = readers.read_flickr8k(captions, image_dir, resolve_path(config, split_files[split]))
    else:
        if d.format == "flickr8k":
            every = readers.read_flickr8k(captions, image_dir)
        elif d.format == "coco":
            every = readers.read_coco_captions(captions, image_dir)
        elif d.format == "table":
            if not d.path:
                raise ValueError("data.format 'table' needs data.path (a CSV/TSV/JSONL of image, caption rows)")
            every = readers.read_caption_table(resolve_path(config, d.path))
        else:
            raise ValueError(f"data.format {d.format!r} is not supported for captioning; use 'flickr8k', "
                             f"'coco' or 'table'")
        items = dict(zip(SPLITS, readers.split_by_image(every, d.seed, d.validation_fraction,
                                                         d.test_fraction)))[split]
    if d.limit is not None and len(items) > d.limit:
        limited = readers.CaptionSet(list(items.items())[:d.limit])
        limited.counts, limited.problems = dict(items.counts), list(items.problems)
        items = limited
    return items


def reference_captions(items: dict) -> list[list[str]]:
    """References for BLEU: per image (in `items` order), all its captions cleaned by `preprocess_caption`."""
    flat = readers.caption_texts(items)
    references, start = [], 0
    for captions in items.values():
        references.append(flat[start:start + len(captions)])
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
    cache = FeatureCache(feature_cache_dir(config, model_dir), encoder.backbone_key) if uses_feature_cache(config) else None
    common = dict(tokenizer=tokenizer, batch_size=tr.batch_size, max_caption_length=d.max_target_length,
                  image_size=encoder.image_size, features=cache, feature_fn=encoder.feature_fn)
    stats: dict = {}
    train_ds = readers.make_captioning_dataset(read_split(config, "train"), training=True, seed=tr.seed + seed_offset,
                                               shuffle_buffer=tr.shuffle_buffer, stats=stats, **common)
    log.info("training captions: %s", stats)
    validation = read_split(config, "validation")
    val_ds = readers.make_captioning_dataset(validation, training=False, **common) if validation else None
    return train_ds.repeat(), val_ds


# --------------------------------------------------------------------------------------------------
# In-graph captioning


class CaptioningModule(tf.Module):
    """Encoded image bytes → captions, entirely in TensorFlow ops (exportable as a SavedModel).

    `caption(image_bytes tf.string [batch])` → {"caption": tf.string [batch], "score": float32 [batch]}:
    decode by content (`pipelines.images.decode_image`: JPEG/PNG/GIF/BMP, grayscale → RGB, alpha dropped),
    bilinear resize to the backbone's input size, the backbone's `preprocess_input` and CNN, the image
    encoder, `decode_batch` (beam search by default; score = length-normalised log-probability for beam
    search, summed log-probability otherwise) and detokenisation. Bytes that are not a decodable image make
    the call fail with `tf.errors.InvalidArgumentError` (`caption_images` checks files first and skips
    those).

    Args:
      model: a built captioning `Seq2Seq` (its encoder an `ImageEncoder`; fed images here).
      tokenizer: the caption tokenizer (`pipelines.tokenizers`).
      decode: DecodeConfig; `max_length` is capped at `max_caption_length + 1` (EOS) and the relative
        length limit is unused (an image has no source length).
      max_caption_length: int, `data.max_target_length`, the longest caption trained on (pieces).
    """

    def __init__(self, model, tokenizer, decode: DecodeConfig, max_caption_length: int):
        super().__init__(name="captioner")
        self.model = model
        self.tokenizer = tokenizer
        self.image_size = tuple(model.encoder.image_size)
        self.grid_shape = model.encoder.grid_shape
        self._decode = dataclasses.replace(decode, max_length=min(decode.max_length, int(max_caption_length) + 1),
                                           max_length_ratio=None)
        self.decode_config = dataclasses.asdict(self._decode)

    def _run(self, image_bytes, return_attention=False):
        images = tf.map_fn(lambda data: decode_image(data, self.image_size), image_bytes,
                           fn_output_signature=tf.TensorSpec([*self.image_size, 3], tf.float32))
        return decode_batch(self.model, images, None, self._decode, return_attention=return_attention)

    @tf.function(input_signature=IMAGE_SIGNATURE)
    def caption(self, image_bytes):
        """image_bytes: tf.string [batch] → {"caption": tf.string [batch], "score": float32 [batch]}."""
        result = self._run(image_bytes)
        return {"caption": detokenize_nbest(self.tokenizer, result.ids[:, :1])[:, 0], "score": result.scores[:, 0]}

    @tf.function(input_signature=IMAGE_SIGNATURE)
    def caption_with_attention(self, image_bytes):
        """Best caption with its pieces and attention over the regions (for plots).

        Returns: {"caption": tf.string [batch], "score": float32 [batch], "pieces": tf.string [batch, time]
        (EOS included, "<pad>" after it), "lengths": int32 [batch] (pieces up to and including EOS),
        "attention": float32 [batch, time, regions] (regions in row-major order of `grid_shape`)}.
        """
        result = self._run(image_bytes, return_attention=True)
        return {"caption": detokenize_nbest(self.tokenizer, result.ids[:, :1])[:, 0], "score": result.scores[:, 0],
                "pieces": self.tokenizer.id_to_piece(result.ids[:, 0]), "lengths": result.lengths[:, 0],
                "attention": result.attention[:, 0]}


def captioner(config: Config, model, tokenizer, **decode_overrides) -> CaptioningModule:
    """A `CaptioningModule` with `config.decode` (fields overridable, e.g. beam_size=1)."""
    return CaptioningModule(model, tokenizer, decode_settings(config.decode, **decode_overrides),
                            config.data.max_target_length)


def caption_bytes(caption_fn, images: Sequence[bytes], batch_size: int = 32) -> tuple[list[str], list[float]]:
    """Run `caption_fn(image_bytes=tf.string [b])` (a module's `caption` or an export's signature) in batches.

    Returns:
      (captions: list[str], scores: list[float]) aligned with `images`.
    """
    captions, scores = [], []
    for start in range(0, len(images), batch_size):
        out = caption_fn(image_bytes=tf.constant(list(images[start:start + batch_size]), tf.string))
        captions += [c.decode("utf-8") for c in out["caption"].numpy()]
        scores += [float(s) for s in out["score"].numpy()]
    return captions, scores


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


# --------------------------------------------------------------------------------------------------
# Train / load / evaluate / caption / export


def train(config: Config, model_dir: str, verbose: int = 1) -> dict:
    """Train (or resume) a captioning model in `model_dir`, then evaluate it on the test split.

    As for translation, the model is built and compiled inside the `train.strategy` scope and
    `train.batch_size` is the global batch.

    Returns:
      the test metrics (see `evaluate`) plus `train_seconds` (wall time of `fit`), `steps` and
      `feature_cache` (whether cached features were used). A non-chief worker of a multi-worker run
      returns only `train_seconds` and `steps` (the chief evaluates).
    """
    strategy = make_strategy(config.train.strategy)  # first: multi-worker set-up must precede other TF ops
    train_items = read_split(config, "train")
    if not train_items:
        raise ValueError(f"no training image has both a readable file and a caption: check data.image_dir "
                         f"({config.data.image_dir!r}), data.captions_file and data.train_split_file")
    tok_dir = os.path.join(model_dir, md.TOKENIZER_DIR)
    chief_first(strategy, lambda: (md.prepare(model_dir, config), train_or_load_tokenizer(
        config.tokenizer, tok_dir, CAPTION, config.tokenizer.target_vocab_size,
        lambda: readers.caption_texts(train_items), lowercase=True)), [os.path.join(tok_dir, f"{CAPTION}.json")])
    keras.utils.set_random_seed(config.train.seed)
    tokenizer = load_tokenizer(tok_dir, CAPTION)
    use_cache = uses_feature_cache(config)
    with strategy.scope():  # variables, optimizer state and the compiled step are created per replica
        model = build_model(_build_config(config, for_training=True), None, tokenizer.vocab_size,
                            inputs_are_features=use_cache)
        compile_model(model, config.train)
    log.info("model: %d parameters (%d trainable); feature cache: %s", model.count_params(),
             sum(int(tf.size(v)) for v in model.trainable_variables), use_cache)
    start_step = list_checkpoints(model_dir)[-1][0] if list_checkpoints(model_dir) else 0
    train_ds, val_ds = make_datasets(config, tokenizer, model.encoder, model_dir, seed_offset=start_step)
    started = time.time()
    result = fit(model, train_ds, val_ds, config.train, model_dir, verbose=verbose)
    seconds = time.time() - started
    if not is_chief(strategy):  # multi-worker: the chief alone saves the model and evaluates it
        return {"train_seconds": round(seconds, 1), "steps": result["final_step"]}
    model.load_weights(os.path.join(model_dir, BEST_WEIGHTS))
    atomic_save_model(model, os.path.join(model_dir, md.MODEL_FILE))
    metrics = evaluate(model_dir, "test", loaded=(config, model, tokenizer))
    metrics.update({"train_seconds": round(seconds, 1), "steps": result["final_step"], "feature_cache": use_cache})
    md.update_metrics(model_dir, "test", metrics)
    return metrics


def load(model_dir: str):
    """(config, model, tokenizer) of a trained captioning model directory; the model takes images.

    Weights: best.weights.h5, else the newest checkpoint (no pretrained backbone file is needed).

    Raises:
      ModelDirError: not a model directory, not a captioning model, or not trained yet.
    """
    config = md.read_config(model_dir)
    if config.task != "captioning":
        raise md.ModelDirError(f"{model_dir!r} holds a {config.task} model, not a captioning model")
    try:
        tokenizer = load_tokenizer(os.path.join(model_dir, md.TOKENIZER_DIR), CAPTION)
    except (FileNotFoundError, OSError) as err:
        raise md.ModelDirError(f"{model_dir!r} has no caption tokenizer yet ({err}); was training started?") from None
    weights = trained_weights_path(model_dir)
    model = build_model(_build_config(config, for_training=False), None, tokenizer.vocab_size)
    compile_model(model, config.train)  # checkpoints hold optimizer state too
    model.load_weights(weights)
    return config, model, tokenizer


def evaluate(model_dir: str, split: str = "test", loaded=None, **decode_overrides) -> dict:
    """Corpus BLEU-1..4 of the captions generated for the images of `split`, written into metrics.json.

    Each image is captioned once from its file bytes by the `CaptioningModule` (the exported graph) and
    scored against all of its reference captions: `references[i]` = the list of every caption of image i
    (5 for Flickr8k), cleaned like the training captions (`preprocess_caption`), passed to
    `seq2seq.evaluation.corpus_bleu` (multi-reference). Unreadable images are skipped and counted.

    Returns:
      dict: split, images, skipped_images, decode_seconds, decode, bleu_1..bleu_4 (sacreBLEU, cumulative,
      0..100), sacrebleu, nltk_bleu, the full `corpus_bleu` result, and examples (five image / hypothesis /
      references triples).
    """
    config, model, tokenizer = loaded or load(model_dir)
    module = captioner(config, model, tokenizer, **decode_overrides)
    items = read_split(config, split)
    if not items:
        raise ValueError(f"the {split} split has no images; check the data.* settings")
    paths = _readable(list(items))
    readable = {p: items[p] for p in paths}
    started = time.time()
    hypotheses, _ = caption_bytes(module.caption, _read_bytes(paths), config.decode.batch_size)
    seconds = time.time() - started
    references = reference_captions(readable)
    bleu = corpus_bleu(hypotheses, references)
    metrics = {
        "split": split, "images": len(paths), "skipped_images": len(items) - len(paths),
        "decode_seconds": round(seconds, 2), "decode": dict(module.decode_config),
        **{f"bleu_{n}": bleu["bleu_n"]["sacrebleu"][n] for n in range(1, 5)},
        "sacrebleu": bleu["score"], "nltk_bleu": bleu["nltk_score"], **bleu,
        "examples": [{"image": os.path.basename(p), "hypothesis": h, "references": r}
                     for p, h, r in list(zip(paths, hypotheses, references))[:5]],
    }
    md.update_metrics(model_dir, split, metrics)
    return metrics


def caption_images(model_dir: str | None, saved_model: str | None, images: Sequence[str],
                   attention_plot: str | None = None, beam_size: int | None = None, strategy: str | None = None,
                   length_penalty: float | None = None, batch_size: int = 16) -> Iterator[tuple[str, str]]:
    """Caption image files with a model directory or an export; yields (path, caption) in input order.

    Unreadable files (missing, empty, truncated, not an image) are skipped with a warning; PNGs named .jpg,
    grayscale and RGBA images are decoded by content. With `attention_plot` (model directory only) the
    attention of every generated word over the first image is drawn to that PNG
    (`seq2seq.plots.plot_caption_attention`).

    Raises:
      ValueError: neither or both sources given, no readable image, or decoding options / attention plot
        with a SavedModel (its decoding is fixed when it is exported).
    """
    if (model_dir is None) == (saved_model is None):
        raise ValueError("give exactly one of model_dir or saved_model")
    overrides = {"beam_size": beam_size, "strategy": strategy, "length_penalty": length_penalty}
    paths = _readable([os.fspath(p) for p in images])
    if saved_model is not None:
        if attention_plot or any(v is not None for v in overrides.values()):
            raise ValueError("--attention-plot and decoding options need --model-dir; an export decodes with the "
                             "settings it was exported with")
        caption_fn = load_saved_model(saved_model).signatures["serving_default"]
        if "image_bytes" not in caption_fn.structured_input_signature[1]:
            raise ValueError(f"{saved_model!r} is not a captioning export (its inputs: "
                             f"{', '.join(caption_fn.structured_input_signature[1])}); use `seq2seq translate`")
        module = None
    else:
        config, model, tokenizer = load(model_dir)
        module = captioner(config, model, tokenizer, **overrides)
        caption_fn = module.caption
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        captions, _ = caption_bytes(caption_fn, _read_bytes(chunk), batch_size)
        yield from zip(chunk, captions)
    if attention_plot and module is not None:
        write_attention_plot(module, paths[0], attention_plot)


def write_attention_plot(module: CaptioningModule, image_path: str, path: str) -> str:
    """Plot each generated word's attention over `image_path` (its best caption) into the PNG `path`."""
    from seq2seq.plots import plot_caption_attention

    data = _read_bytes([image_path])[0]
    out = module.caption_with_attention(tf.constant([data], tf.string))
    length = int(out["lengths"][0])
    words = [p.decode("utf-8") for p in out["pieces"][0, :length].numpy()]
    image = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    plot_caption_attention(image, words, out["attention"][0, :length].numpy(), module.grid_shape, path)
    log.info("attention plot written to %s", path)
    return path


def export(model_dir: str, output_dir: str, **decode_overrides) -> str:
    """Export the model in `model_dir` as an image-bytes-in / captions-out SavedModel at `output_dir` (atomic)."""
    config, model, tokenizer = load(model_dir)
    return export_captioning(captioner(config, model, tokenizer, **decode_overrides), output_dir)
