"""Image-captioning data: readers, split by image, caption preprocessing and the tf.data pipeline.

Every reader returns a ``CaptionSet``: a ``dict[image_path, list[caption]]`` (all captions of one
image together, image paths absolute or as given, insertion order = file order) that also carries
``counts`` (what was dropped and why) and ``problems`` (``(path, reason)`` pairs). Malformed rows
raise ``ValueError`` naming the file and the 1-based line number.

Sources:
  Flickr8k: Hodosh, Young & Hockenmaier (2013), JAIR 47:853-899 (``<image>.jpg#<n><TAB>caption``).
  COCO captions: Chen et al. (2015), "Microsoft COCO Captions"; the TFDS ``coco_captions`` builder
  uses the Karpathy & Li (2015) splits.
  One example per (image, caption) pair with teacher forcing, as in Vinyals et al. (2015),
  "Show and Tell", and Xu et al. (2015), "Show, Attend and Tell".
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from typing import Iterable

import numpy as np
import tensorflow as tf

from pipelines.atomic import write_atomically
from pipelines.data_files import DEFAULT_MAX_LINE_BYTES, open_regular, regular_file_problem, text_lines
from pipelines.images import _size_pair, check_images, load_image, log_skipped_images
from pipelines.vocab import BOS_ID, EOS_ID, PAD_ID

logger = logging.getLogger(__name__)

__all__ = [
    "CaptionSet",
    "read_flickr8k",
    "read_coco_captions",
    "read_caption_table",
    "read_tfds_coco_captions",
    "tfds_example_to_item",
    "split_by_image",
    "preprocess_caption",
    "caption_texts",
    "make_captioning_dataset",
]


class CaptionSet(dict):
    """``dict[image_path, list[caption]]`` plus ``counts: dict[str, int]`` and ``problems: list[(path, reason)]``.

    Counts used by the readers: ``images``, ``captions`` (kept), ``missing_images`` and
    ``captions_of_missing_images`` (captions naming an image not on disk), ``images_without_captions``
    (listed in a split file / annotation file / on disk, but with no caption; dropped).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts: dict[str, int] = {}
        self.problems: list[tuple[str, str]] = []

    def _finish(self, source: str) -> "CaptionSet":
        self.counts["images"] = len(self)
        self.counts["captions"] = sum(len(v) for v in self.values())
        for key in ("missing_images", "captions_of_missing_images", "images_without_captions"):
            self.counts.setdefault(key, 0)
        if self.counts["missing_images"]:
            shown = "; ".join(f"{p}: {r}" for p, r in self.problems[:10])
            logger.warning(
                "%s: %d captions name %d images missing on disk (dropped): %s%s",
                source,
                self.counts["captions_of_missing_images"],
                self.counts["missing_images"],
                shown,
                " ..." if len(self.problems) > 10 else "",
            )
        if self.counts["images_without_captions"]:
            logger.warning("%s: dropped %d images without captions", source, self.counts["images_without_captions"])
        logger.info("%s: %d images, %d captions", source, self.counts["images"], self.counts["captions"])
        return self


def _collect(
    pairs: Iterable[tuple[str, str]], source: str, listed: Iterable[str] | None = None, limit: int | None = None
) -> CaptionSet:
    """Group (image_path, caption) pairs by image; drop (report, count) images missing on disk.

    ``listed``: image paths that should be present (split file, annotation list); those with no
    caption are counted as ``images_without_captions``.
    """
    grouped: dict[str, list[str]] = {}
    for path, caption in pairs:
        grouped.setdefault(path, []).append(caption)
    result = CaptionSet()
    missing: dict[str, int] = {}
    for path, captions in grouped.items():
        problem = regular_file_problem(path)
        if problem:
            missing[path] = len(captions)
            result.problems.append((path, problem))
            continue
        if limit is not None and len(result) >= limit:
            continue
        result[path] = captions
    without = 0
    if listed is not None:
        without = sum(1 for path in dict.fromkeys(listed) if path not in grouped)
    result.counts.update(
        missing_images=len(missing),
        captions_of_missing_images=sum(missing.values()),
        images_without_captions=without,
    )
    return result._finish(source)


def read_flickr8k(
    token_file: str,
    image_dir: str,
    split_file: str | None = None,
    limit: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> CaptionSet:
    """Read Flickr8k captions (``Flickr8k.token.txt`` format) grouped by image.

    Each non-blank line is ``<image name>#<n><TAB><caption>``. Captions naming an image missing
    from ``image_dir`` are dropped, reported in ``.problems`` and counted; with ``split_file`` (one
    image name per line, e.g. ``Flickr_8k.trainImages.txt``) only those images are kept, and listed
    images with no caption are dropped and counted (``counts["images_without_captions"]``).

    Args:
      token_file: caption file path.
      image_dir: folder holding the ``.jpg`` files; keys are ``os.path.join(image_dir, name)``.
      split_file: optional image-name list restricting the images.
      limit: keep at most this many images (first ones in caption-file order; default all).
      max_line_bytes: longest allowed line in bytes (default 1 MiB, config ``data.max_line_bytes``).

    Returns:
      ``CaptionSet`` (dict image path -> captions in file order).

    Raises:
      ValueError: a line without a TAB, without ``#<n>`` after the image name, or with an empty
        caption (message names the file and line).
      pipelines.data_files.DataError (a ValueError): a file is not a regular file (FIFO, device,
        directory), a line is longer than ``max_line_bytes`` or not UTF-8 (names file and line).
      FileNotFoundError: ``token_file`` or ``split_file`` does not exist.
    """
    wanted = None
    if split_file is not None:
        wanted = [line.strip() for _, line in text_lines(split_file, max_line_bytes) if line.strip()]
    wanted_set = set(wanted) if wanted is not None else None
    pairs = []
    for number, line in text_lines(token_file, max_line_bytes):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        name_part, tab, caption = line.partition("\t")
        name, hash_sign, index = name_part.rpartition("#")
        caption = caption.strip()
        if not tab or not hash_sign or not name or not index.strip().isdigit() or not caption:
            raise ValueError(f"{token_file}:{number}: expected '<image>#<n><TAB><caption>', got {line[:80]!r}")
        if wanted_set is not None and name not in wanted_set:
            continue
        pairs.append((os.path.join(image_dir, name), caption))
    listed = [os.path.join(image_dir, name) for name in wanted] if wanted is not None else None
    return _collect(pairs, f"flickr8k {token_file}", listed=listed, limit=limit)


def read_coco_captions(annotations_json: str, image_dir: str) -> CaptionSet:
    """Read a COCO captions annotation file (``captions_train2014.json`` format) grouped by image.

    Uses ``images[*].{id, file_name}`` and ``annotations[*].{image_id, caption}``. Images listed in
    ``images`` without any caption are dropped and counted; images missing from ``image_dir`` are
    dropped, reported and counted.

    Raises:
      ValueError: the JSON lacks ``images``/``annotations``, an entry lacks a required key or has
        an empty caption, or a caption names an unknown ``image_id`` (message names the file and
        the entry index, since JSON has no meaningful line numbers here).
    """
    with open_regular(annotations_json) as handle:
        data = json.load(io.TextIOWrapper(handle, encoding="utf-8"))
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise ValueError(f"{annotations_json}: expected a COCO captions JSON with 'images' and 'annotations'")
    files = {}
    for index, image in enumerate(data["images"]):
        try:
            files[image["id"]] = os.path.join(image_dir, image["file_name"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"{annotations_json}: images[{index}] needs 'id' and 'file_name'") from err
    pairs = []
    for index, annotation in enumerate(data["annotations"]):
        try:
            image_id, caption = annotation["image_id"], annotation["caption"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{annotations_json}: annotations[{index}] needs 'image_id' and 'caption'") from err
        if image_id not in files:
            raise ValueError(f"{annotations_json}: annotations[{index}] names unknown image_id {image_id!r}")
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(f"{annotations_json}: annotations[{index}] has an empty caption")
        pairs.append((files[image_id], caption.strip()))
    return _collect(pairs, f"coco {annotations_json}", listed=list(files.values()))


def read_caption_table(path: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> CaptionSet:
    """Read ``image,caption`` rows from a CSV (with header) or JSONL (one object per line) file.

    The format is chosen by extension: ``.csv`` (comma), ``.tsv`` (tab), ``.jsonl``/``.ndjson``/``.json``
    (JSON lines with keys ``image`` and ``caption``). Relative image paths resolve against the
    table's folder. Rows naming a missing image are dropped, reported and counted.

    Raises:
      ValueError: unknown extension, CSV header without ``image`` and ``caption`` columns, a row
        with a missing/empty field, or a line that is not a JSON object (names file and line).
      pipelines.data_files.DataError (a ValueError): ``path`` is not a regular file (FIFO, device,
        directory), or a line is longer than ``max_line_bytes`` (default 1 MiB) or not UTF-8.
    """
    base = os.path.dirname(os.path.abspath(path))
    extension = os.path.splitext(path)[1].lower()

    def resolve(image: str) -> str:
        image = os.path.expanduser(image.strip())
        return image if os.path.isabs(image) else os.path.normpath(os.path.join(base, image))

    pairs = []
    if extension in (".csv", ".tsv"):
        lines = (line for _, line in text_lines(path, max_line_bytes))
        reader = csv.DictReader(lines, delimiter="\t" if extension == ".tsv" else ",")
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        if "image" not in fields or "caption" not in fields:
            raise ValueError(f"{path}:1: header must name the columns 'image' and 'caption', got {reader.fieldnames}")
        reader.fieldnames = fields
        for row in reader:
            image, caption = row.get("image"), row.get("caption")
            if not image or not image.strip() or not caption or not caption.strip():
                raise ValueError(f"{path}:{reader.line_num}: row needs a non-empty image and caption, got {row}")
            pairs.append((resolve(image), caption.strip()))
    elif extension in (".jsonl", ".ndjson", ".json"):
        for number, line in text_lines(path, max_line_bytes):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from err
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object with 'image' and 'caption'")
            image, caption = row.get("image"), row.get("caption")
            if not isinstance(image, str) or not image.strip() or not isinstance(caption, str) or not caption.strip():
                raise ValueError(f"{path}:{number}: row needs non-empty string 'image' and 'caption', got {row}")
            pairs.append((resolve(image), caption.strip()))
    else:
        raise ValueError(f"{path}: unknown caption table extension {extension!r} (use .csv, .tsv or .jsonl)")
    return _collect(pairs, f"table {path}")


def tfds_example_to_item(example: dict) -> tuple[str, bytes, list[str]]:
    """Map one TFDS ``coco_captions`` example (numpy values, image not decoded) to
    ``(file_name, encoded_image_bytes, captions)``.

    Uses the features ``image/filename`` (bytes or str), ``image`` (encoded bytes, via
    ``tfds.decode.SkipDecoding``) and ``captions/text`` (array of bytes).
    """
    name = example["image/filename"]
    name = name.decode("utf-8") if isinstance(name, bytes) else str(name)
    texts = example["captions"]["text"]
    captions = [
        t.decode("utf-8").strip() if isinstance(t, bytes) else str(t).strip() for t in np.asarray(texts).tolist()
    ]
    return os.path.basename(name), bytes(example["image"]), [c for c in captions if c]


def read_tfds_coco_captions(
    split: str,
    data_dir: str | None = None,
    image_dir: str | None = None,
    name: str | None = None,
    download: bool = False,
) -> CaptionSet:
    """Read TFDS ``coco_captions`` (COCO 2014, Karpathy splits ``train``/``val``/``test``/``restval``).

    ``name`` is the TFDS dataset name (default ``coco_captions``; another dataset with the same features
    works too); ``download`` lets TFDS download and prepare it (needs internet), else it must be prepared in
    ``data_dir`` already.

    TFDS stores the encoded images inside its records, so this writes each image once (atomically)
    to ``image_dir`` (default ``<data_dir or ~/tensorflow_datasets>/coco_captions_images/<split>``)
    and returns paths there, which the rest of the pipeline (``make_captioning_dataset``, the
    feature cache) reads like any other image folder. Needs the dataset prepared already (or
    network access for ``tfds`` to download it).
    """
    import tensorflow_datasets as tfds  # heavy import, only when used

    if image_dir is None:
        root = data_dir or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")
        image_dir = os.path.join(
            root, "coco_captions_images", split.replace("/", "_").replace("[", "_").replace("]", "_").replace(":", "_")
        )
    os.makedirs(image_dir, exist_ok=True)
    name = name or "coco_captions"
    dataset = tfds.load(
        name, split=split, data_dir=data_dir, download=download, decoders={"image": tfds.decode.SkipDecoding()}
    )
    pairs = []
    for example in tfds.as_numpy(dataset):
        name, data, captions = tfds_example_to_item(example)
        path = os.path.join(image_dir, name)
        if not os.path.exists(path):
            write_atomically(path, data)
        pairs.extend((path, caption) for caption in captions)
    return _collect(pairs, f"tfds {name}[{split}]")


def _unit_hash(name: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\x00{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def image_content_key(path: str, chunk_bytes: int = 1 << 20) -> str:
    """``"sha256:<hex>"`` of the file's bytes (read in chunks), or ``"name:<base name>"`` when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open_regular(path) as handle:
            for block in iter(lambda: handle.read(chunk_bytes), b""):
                digest.update(block)
    except (OSError, ValueError):
        return f"name:{os.path.basename(path)}"
    return f"sha256:{digest.hexdigest()}"


def split_by_image(images: dict, seed: int = 0, validation_fraction: float = 0.1, test_fraction: float = 0.1):
    """Deterministic train/validation/test split by image content (all captions of an image stay together).

    Byte-identical images (same sha256 of the file, under any names) form one group, and a group goes
    to one split, so a copy of a test image under another name can never land in training. The split
    of a group is decided by the sha256 of ``"<seed>\\0<base name>"`` of its alphabetically first base
    name: an image without copies keeps the split its name gave before content grouping, moving the
    folder does not change the split, and adding images never moves existing ones. Images that cannot
    be read are grouped by their name alone. Each group of copies is logged as a warning with its
    names. Use the official split files instead when a dataset has them
    (``read_flickr8k(split_file=...)``).

    Args:
      images: ``dict[image_path, list[caption]]``.
      seed: int salt; a different seed gives a different split.
      validation_fraction, test_fraction: expected fractions in [0, 1), sum < 1.

    Returns:
      ``(train, validation, test)``: three ``CaptionSet`` dicts, insertion order kept; each has
      ``counts["duplicate_images"]``: images of its own that are byte-identical copies of another one.

    Raises:
      ValueError: fractions outside [0, 1) or summing to 1 or more.
    """
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError("validation_fraction + test_fraction must be < 1")
    groups: dict[str, list[str]] = {}
    for path in images:
        groups.setdefault(image_content_key(path), []).append(path)
    split_of: dict[str, CaptionSet] = {}
    train, validation, test = CaptionSet(), CaptionSet(), CaptionSet()
    duplicates = {id(train): 0, id(validation): 0, id(test): 0}
    for paths in groups.values():
        u = _unit_hash(min(os.path.basename(p) for p in paths), seed)
        target = test if u < test_fraction else validation if u < test_fraction + validation_fraction else train
        split_of.update(dict.fromkeys(paths, target))
        if len(paths) > 1:
            duplicates[id(target)] += len(paths) - 1
            logger.warning("%d byte-identical images kept together in one split: %s", len(paths), ", ".join(paths))
    for path, captions in images.items():
        split_of[path][path] = captions
    for part in (train, validation, test):
        part.counts.update(
            images=len(part), captions=sum(len(v) for v in part.values()), duplicate_images=duplicates[id(part)]
        )
    return train, validation, test


def preprocess_caption(captions: tf.Tensor) -> tf.Tensor:
    """In-graph caption cleaning: Unicode lowercase, strip punctuation, collapse whitespace.

    Apostrophes are removed (``"don't" -> "dont"``); every other Unicode punctuation character
    (``\\pP``: ``. , ; - " ( )`` ...) becomes a space, so ``"black-and-white"`` gives three words;
    runs of whitespace become one space and both ends are trimmed.

    Args:
      captions: ``tf.string`` of any shape (scalar or ``[batch]``).

    Returns:
      ``tf.string`` of the same shape.
    """
    captions = tf.strings.lower(captions, encoding="utf-8")
    captions = tf.strings.regex_replace(captions, "['\u2019]", "")
    captions = tf.strings.regex_replace(captions, r"\pP", " ")
    captions = tf.strings.regex_replace(captions, r"\s+", " ")
    return tf.strings.strip(captions)


def caption_texts(items: dict, preprocess: bool = True) -> list[str]:
    """All captions as Python strings (preprocessed like the dataset does), e.g. to train a tokenizer."""
    texts = [c for captions in items.values() for c in captions]
    if preprocess and texts:
        texts = [t.decode("utf-8") for t in preprocess_caption(tf.constant(texts)).numpy().tolist()]
    return texts


def _tokenize_all(tokenizer, texts: list[str], chunk: int = 8192) -> tf.RaggedTensor:
    parts = []
    for start in range(0, len(texts), chunk):
        ids = tokenizer.tokenize(tf.constant(texts[start : start + chunk]))
        if not isinstance(ids, tf.RaggedTensor):
            raise TypeError("tokenizer.tokenize must return a tf.RaggedTensor of ids [batch, (pieces)]")
        parts.append(tf.cast(ids, tf.int32))
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def make_captioning_dataset(
    items: dict,
    tokenizer,
    batch_size: int,
    max_caption_length: int,
    training: bool,
    image_size=None,
    features=None,
    shuffle_buffer: int = 10_000,
    seed: int = 0,
    feature_fn=None,
    preprocess: bool = True,
    validate_images: bool = True,
    drop_remainder: bool = False,
    stats: dict | None = None,
) -> tf.data.Dataset:
    """Build the teacher-forcing captioning dataset, one example per (image, caption) pair.

    Yields ``((inputs, target_in_ids), target_out_ids)`` where ``inputs`` is either images
    float32 ``[batch, H, W, 3]`` in [0, 255] (decoded with ``pipelines.images.decode_image``) or,
    when ``features`` is given, cached backbone features float32 ``[batch, regions, channels]``;
    ``target_in_ids`` = BOS + pieces and ``target_out_ids`` = pieces + EOS, int32 ``[batch, time]``
    right-padded with ``PAD_ID`` (0), ``time`` = longest caption in the batch + 1.

    Captions are preprocessed (``preprocess_caption``) and tokenised once, up front, with
    ``tokenizer.tokenize(tf.string [n]) -> tf.RaggedTensor int32 [n, (pieces)]``. Captions with
    more than ``max_caption_length`` pieces (BOS/EOS not counted) or with none are dropped and
    counted. With ``validate_images`` every image is decoded once first (``check_images``);
    unreadable ones are skipped, logged and counted. Training data is shuffled (reshuffled each
    epoch, seeded); evaluation data keeps the input order. The pipeline ends with ``prefetch``.

    Args:
      items: ``dict[image_path, list[caption]]`` (e.g. a reader's ``CaptionSet``).
      tokenizer: object with the in-graph ``tokenize`` method above (``pipelines.tokenizers``).
      batch_size: examples per batch.
      max_caption_length: maximum caption length in pieces (without BOS/EOS).
      training: shuffle and reshuffle each iteration when True.
      image_size: int or (height, width), the backbone input size; required without ``features``
        (and with ``features`` when entries must be computed).
      features: optional ``pipelines.feature_cache.FeatureCache``; examples then read cached
        features (missing entries are computed first with ``feature_fn``).
      shuffle_buffer: shuffle buffer in examples (default 10,000).
      seed: shuffle seed (default 0).
      feature_fn: ``images -> [b, regions, channels]`` for missing cache entries
        (``ImageEncoder.feature_fn``); only needed with ``features``.
      preprocess: apply ``preprocess_caption`` before tokenising (default True; train the tokenizer
        on ``caption_texts(items)`` so both see the same text).
      validate_images: run ``check_images`` first (default True; costs one decode per image).
      drop_remainder: drop the last partial batch (default False).
      stats: optional dict filled with counts: ``images``, ``skipped_images``, ``captions``,
        ``dropped_too_long``, ``dropped_empty``, ``examples``.

    Raises:
      ValueError: no examples left, bad sizes, or ``image_size`` missing when needed.
      TypeError: ``tokenizer.tokenize`` does not return a RaggedTensor.
    """
    if batch_size <= 0 or max_caption_length <= 0:
        raise ValueError("batch_size and max_caption_length must be positive")
    if features is None and image_size is None:
        raise ValueError("image_size is required when images are decoded (no feature cache given)")
    size = _size_pair(image_size) if image_size is not None else None

    paths = [os.fspath(p) for p in items]
    skipped: list[tuple[str, str]] = []
    if validate_images:
        ok, skipped = check_images(paths)
        log_skipped_images(skipped, logger)
        ok_set = set(ok)
        paths = [p for p in paths if p in ok_set]

    pair_paths, texts = [], []
    for path in paths:
        for caption in items[path]:
            pair_paths.append(path)
            texts.append(caption)
    counts = {
        "images": len(paths),
        "skipped_images": len(skipped),
        "captions": len(texts),
        "dropped_too_long": 0,
        "dropped_empty": 0,
        "examples": 0,
    }
    if texts:
        tensor = tf.constant(texts)
        ids = _tokenize_all(
            tokenizer, [t.decode("utf-8") for t in preprocess_caption(tensor).numpy().tolist()] if preprocess else texts
        )
        lengths = ids.row_lengths().numpy()
        keep = (lengths > 0) & (lengths <= max_caption_length)
        counts["dropped_too_long"] = int(np.sum(lengths > max_caption_length))
        counts["dropped_empty"] = int(np.sum(lengths == 0))
        keep_index = np.flatnonzero(keep)
        ids = tf.gather(ids, keep_index)
        pair_paths = [pair_paths[i] for i in keep_index]
    counts["examples"] = len(pair_paths)
    if counts["dropped_too_long"] or counts["dropped_empty"]:
        logger.info(
            "dropped %d captions longer than %d pieces and %d empty captions",
            counts["dropped_too_long"],
            max_caption_length,
            counts["dropped_empty"],
        )
    if stats is not None:
        stats.update(counts)
    if not pair_paths:
        raise ValueError("no captioning examples left (no readable images or every caption was dropped)")

    if features is not None:
        unique = list(dict.fromkeys(pair_paths))
        entries = features.features_for(unique, feature_fn, image_size=size)
        entry_of = dict(zip(unique, entries))
        sources = [entry_of[p] for p in pair_paths]
        feature_shape = features.feature_shape(sources[0])

        def load_input(source):
            value = tf.numpy_function(features.load, [source], tf.float32, stateful=False)
            value.set_shape(feature_shape)
            return value
    else:
        sources = pair_paths

        def load_input(source):
            return load_image(source, size)

    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(sources), ids))
    if training:
        dataset = dataset.shuffle(
            min(shuffle_buffer, len(sources)) if shuffle_buffer else len(sources),
            seed=seed,
            reshuffle_each_iteration=True,
        )

    def to_example(source, pieces):
        pieces = tf.cast(pieces, tf.int32)
        target_in = tf.concat([tf.constant([BOS_ID], tf.int32), pieces], axis=0)
        target_out = tf.concat([pieces, tf.constant([EOS_ID], tf.int32)], axis=0)
        return (load_input(source), target_in), target_out

    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.padded_batch(batch_size, padding_values=((0.0, PAD_ID), PAD_ID), drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
