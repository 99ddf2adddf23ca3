"""Translation data: streaming readers (Anki/Tatoeba TSV, line-aligned files, TFDS), cleaning with
counts, deterministic train/validation/test split by source sentence, and downloads.

Every reader is a generator of ``(source, target)`` Python ``str`` pairs that reads one line at a time,
so files larger than memory work. Files ending in ``.gz`` are decompressed transparently.
"""

import dataclasses
import glob
import hashlib
import itertools
import os
import unicodedata
from typing import Iterable, Iterator, Optional, Tuple

from pipelines.data_files import DEFAULT_MAX_LINE_BYTES, numbered_lines
from pipelines.errors import DataError  # noqa: F401  (raised here; importable from this module too)

Pair = Tuple[str, str]
SPLITS = ("train", "validation", "test")
_BOM = "\ufeff"
_ANKI_URLS = {"spa-eng": "http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"}
_ANKI_URL_TEMPLATE = "https://www.manythings.org/anki/{pair}.zip"
_MULTI30K_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/{file}.{language}.gz"
_MULTI30K_FILES = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


@dataclasses.dataclass
class PairStats:
    """Counts filled while streaming pairs (by :func:`read_anki` and :func:`clean_pairs`).

    Attributes (all int, default 0):
      read: pairs seen by :func:`clean_pairs`.
      kept: pairs yielded by :func:`clean_pairs`.
      dropped_empty: pairs dropped because a side is empty or whitespace only.
      dropped_bad_line: lines skipped by ``read_anki(skip_bad_lines=True)`` (no TAB, more than 3
        columns, or not UTF-8) or pairs by ``read_parallel(skip_bad_lines=True)`` (not UTF-8).
    """

    read: int = 0
    kept: int = 0
    dropped_empty: int = 0
    dropped_bad_line: int = 0

    def summary(self) -> str:
        """One log line, e.g. ``read 10, kept 8, dropped 1 empty, 1 bad lines``."""
        return (
            f"read {self.read}, kept {self.kept}, dropped {self.dropped_empty} empty, {self.dropped_bad_line} bad lines"
        )


def _decode_line(path, number: int, raw: bytes) -> str:
    """UTF-8 line without its ending (``\\n`` or ``\\r\\n``) and, on line 1, without a BOM.

    Raises:
      DataError: not valid UTF-8 (message ``path:line: ...``).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}:{number}: not valid UTF-8 ({error.reason} at byte {error.start})") from error
    text = text.removesuffix("\n").removesuffix("\r")
    return text.removeprefix(_BOM) if number == 1 else text


def _parse_anki_line(path, number: int, raw: bytes) -> Pair:
    """``english<TAB>other[<TAB>attribution]`` -> (english, other); raises DataError naming path:line."""
    text = _decode_line(path, number, raw)
    if not text.strip():
        return "", ""  # a blank line (often the last one): an empty pair, dropped and counted by clean_pairs
    columns = text.split("\t")
    if not 2 <= len(columns) <= 3:
        problem = "no TAB" if len(columns) == 1 else f"{len(columns)} TAB-separated columns (expected 2 or 3)"
        raise DataError(f"{path}:{number}: {problem} in line {text[:80]!r}")
    return columns[0], columns[1]


def read_anki(
    path,
    reverse: bool = False,
    limit: Optional[int] = None,
    skip_bad_lines: bool = False,
    stats: Optional[PairStats] = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Pair]:
    """Streams (source, target) pairs from a Tatoeba/Anki file (manythings.org/anki format).

    Each line is ``english<TAB>other`` or ``english<TAB>other<TAB>attribution``. UTF-8; a BOM and
    CRLF line endings are handled transparently; ``.gz`` files are decompressed.

    Args:
      path: file path.
      reverse: bool, default False: pairs are (english, other); True gives (other, english), e.g.
        Spanish -> English from ``spa-eng.txt``.
      limit: int or None (default): stop after this many pairs.
      skip_bad_lines: bool, default False: skip malformed lines (counted in
        ``stats.dropped_bad_line``) instead of raising.
      stats: optional :class:`PairStats` to count skipped lines in.
      max_line_bytes: int, longest allowed line in bytes (default 1 MiB, config ``data.max_line_bytes``).

    Yields:
      ``(source, target)`` str pairs, unstripped (see :func:`clean_pairs`).

    Raises:
      DataError: a line has no TAB, more than 3 columns, or is not valid UTF-8 (message:
        ``path:line: ...``, 1-based), unless ``skip_bad_lines``; always: ``path`` is not a regular file
        (a FIFO, device or directory; nothing is read) or a line is longer than ``max_line_bytes``.
    """
    stats = stats if stats is not None else PairStats()
    pairs = _anki_pairs(path, skip_bad_lines, stats, max_line_bytes)
    if reverse:
        pairs = ((target, source) for source, target in pairs)
    yield from itertools.islice(pairs, limit)


def _anki_pairs(path, skip_bad_lines: bool, stats: PairStats, max_line_bytes: int) -> Iterator[Pair]:
    for number, raw in numbered_lines(path, max_line_bytes):
        try:
            yield _parse_anki_line(path, number, raw)
        except DataError:
            if not skip_bad_lines:
                raise
            stats.dropped_bad_line += 1


def read_parallel(
    source_file,
    target_file,
    limit: Optional[int] = None,
    skip_bad_lines: bool = False,
    stats: Optional[PairStats] = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Pair]:
    """Streams (source, target) pairs from two line-aligned files (line i translates line i).

    UTF-8, BOM and CRLF handled, ``.gz`` decompressed. The line counts are compared while streaming:
    when one file ends first the rest of the other is counted and an error raised at the end.

    Args:
      source_file, target_file: file paths.
      limit: int or None (default): stop after this many pairs (the counts are then not checked).
      skip_bad_lines: bool, default False: skip a pair whose source or target line is not valid UTF-8
        (both sides go together; counted in ``stats.dropped_bad_line``) instead of raising.
      stats: optional :class:`PairStats` to count skipped pairs in.
      max_line_bytes: int, longest allowed line in bytes (default 1 MiB, config ``data.max_line_bytes``).

    Yields:
      ``(source, target)`` str pairs.

    Raises:
      DataError: the files have different line counts (message names both files and both counts),
        or a line is not valid UTF-8 (message ``path:line``) unless ``skip_bad_lines``; always: a file
        is not a regular file (FIFO, device, directory) or a line is longer than ``max_line_bytes``.
    """
    stats = stats if stats is not None else PairStats()
    yield from itertools.islice(_aligned_pairs(source_file, target_file, skip_bad_lines, stats, max_line_bytes), limit)


def _aligned_pairs(
    source_file, target_file, skip_bad_lines: bool, stats: PairStats, max_line_bytes: int
) -> Iterator[Pair]:
    counts = [0, 0]
    for source, target in itertools.zip_longest(
        numbered_lines(source_file, max_line_bytes), numbered_lines(target_file, max_line_bytes)
    ):
        counts[0] += source is not None
        counts[1] += target is not None
        if source is not None and target is not None:  # else one file has ended: only count the other
            try:
                pair = _decode_line(source_file, *source), _decode_line(target_file, *target)
            except DataError:
                if not skip_bad_lines:
                    raise
                stats.dropped_bad_line += 1
                continue
            yield pair
    if counts[0] != counts[1]:
        raise DataError(
            f"Parallel files have different line counts: {source_file} has {counts[0]} lines, "
            f"{target_file} has {counts[1]} lines"
        )


def translation_keys(
    supervised_keys, features, source_key: Optional[str] = None, target_key: Optional[str] = None
) -> Tuple[str, str]:
    """Chooses the (source, target) feature keys of a TFDS translation dataset.

    Args:
      supervised_keys: the builder's ``info.supervised_keys`` (e.g. ``('pt', 'en')``) or None.
      features: the feature names available (e.g. ``info.features.keys()``).
      source_key, target_key: explicit keys; each one given overrides the supervised key.

    Returns:
      ``(source_key, target_key)``.

    Raises:
      ValueError: a key is missing (no supervised keys and not given) or is not a feature.
    """
    default_source, default_target = supervised_keys if supervised_keys else (None, None)
    keys = (source_key or default_source, target_key or default_target)
    features = set(features)
    if None in keys or not set(keys) <= features:
        raise ValueError(
            f"Cannot use source/target keys {keys}: features are {sorted(features)}, "
            f"supervised_keys {supervised_keys}; pass source_key= and target_key="
        )
    return keys


def read_tfds(
    name: str,
    split: str,
    data_dir=None,
    limit: Optional[int] = None,
    source_key: Optional[str] = None,
    target_key: Optional[str] = None,
    download: bool = False,
) -> Iterator[Pair]:
    """Streams (source, target) pairs from any TensorFlow Datasets translation dataset.

    Args:
      name: TFDS name with optional config, e.g. ``'ted_hrlr_translate/pt_to_en'`` or ``'wmt14_translate/de-en'``.
      split: TFDS split string, e.g. ``'train'``, ``'validation'``, ``'test[:1000]'``.
      data_dir: TFDS data directory (default: TFDS's, ``~/tensorflow_datasets``).
      limit: int or None (default): stop after this many pairs.
      source_key, target_key: feature names; default from the builder's ``supervised_keys``.
      download: bool, default False; download and prepare the dataset first (needs internet).

    Yields:
      ``(source, target)`` str pairs decoded from UTF-8.

    Raises:
      ValueError: keys cannot be determined (see :func:`translation_keys`).
      tfds / TF errors: dataset unknown or not prepared (and ``download`` False).
    """
    import tensorflow_datasets as tfds  # heavy import, only needed here

    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    source_key, target_key = translation_keys(
        builder.info.supervised_keys, builder.info.features.keys(), source_key, target_key
    )
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    for example in itertools.islice(tfds.as_numpy(dataset), limit):
        yield example[source_key].decode("utf-8"), example[target_key].decode("utf-8")


def _keras_get_file(**kwargs) -> str:
    import keras  # heavy import, only needed for downloads

    return keras.utils.get_file(**kwargs)


def download_anki(pair: str = "spa-eng", cache_dir=None) -> str:
    """Downloads and extracts a Tatoeba/Anki pair file (needs internet unless already cached).

    ``'spa-eng'`` comes from the TensorFlow NMT tutorial zip
    (http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip); other pairs
    (``'fra-eng'``, ``'deu-eng'``, ...) from https://www.manythings.org/anki/<pair>.zip. Downloaded
    with ``keras.utils.get_file`` into ``<cache_dir>/datasets/<pair>.zip`` and extracted to
    ``<cache_dir>/datasets/<pair>_extracted/``. When the extracted ``<lang>.txt`` already exists it is
    returned without any network access.

    Args:
      pair: ``'<lang>-eng'``, default ``'spa-eng'``.
      cache_dir: directory; default Keras's (``~/.keras``).

    Returns:
      Path (str) of the extracted text file (e.g. ``.../spa-eng_extracted/spa-eng/spa.txt``); read it
      with :func:`read_anki` (``reverse=True`` for <lang> -> English).

    Raises:
      FileNotFoundError: the archive did not contain ``<lang>.txt``.
      Exception: network errors from ``keras.utils.get_file``.
    """
    cache_dir = os.path.expanduser(cache_dir or os.path.join("~", ".keras"))
    pattern = os.path.join(cache_dir, "datasets", f"{pair}_extracted", "**", f"{pair.split('-')[0]}.txt")
    found = sorted(glob.glob(pattern, recursive=True))
    if not found:
        url = _ANKI_URLS.get(pair, _ANKI_URL_TEMPLATE.format(pair=pair))
        _keras_get_file(fname=f"{pair}.zip", origin=url, extract=True, cache_dir=cache_dir)
        found = sorted(glob.glob(pattern, recursive=True))
    if not found:
        raise FileNotFoundError(f"No {pattern} after downloading {pair}")
    return found[0]


def download_multi30k(cache_dir=None, languages: Tuple[str, str] = ("en", "de")) -> dict:
    """Downloads Multi30k task 1 (Elliott et al. 2016) train / val / test_2016_flickr files, gzipped,
    from the ``multi30k/dataset`` GitHub repository (``data/task1/raw``), with ``keras.utils.get_file``
    (files already in ``<cache_dir>/datasets/multi30k/`` are not downloaded again).

    Args:
      cache_dir: directory; default Keras's (``~/.keras``).
      languages: two of ``'en', 'de', 'fr', 'cs'``; default ``('en', 'de')``.

    Returns:
      ``{'train' | 'validation' | 'test': {language: path of the .gz file}}``; read a split with
      ``read_parallel(paths['train']['en'], paths['train']['de'])``.

    Raises:
      Exception: network errors from ``keras.utils.get_file``.
    """
    return {
        split: {
            language: _keras_get_file(
                fname=f"{file}.{language}.gz",
                origin=_MULTI30K_URL.format(file=file, language=language),
                cache_dir=cache_dir,
                cache_subdir=os.path.join("datasets", "multi30k"),
            )
            for language in languages
        }
        for split, file in _MULTI30K_FILES.items()
    }


def clean_pairs(pairs: Iterable[Pair], stats: PairStats) -> Iterator[Pair]:
    """Strips both sides and drops pairs where either side is empty (both sides go together).

    Args:
      pairs: iterable of (source, target) str.
      stats: :class:`PairStats` updated in place (``read``, ``kept``, ``dropped_empty``).

    Yields:
      ``(source.strip(), target.strip())`` with both sides non-empty.
    """
    for source, target in pairs:
        stats.read += 1
        source, target = source.strip(), target.strip()
        if not source or not target:
            stats.dropped_empty += 1
            continue
        stats.kept += 1
        yield source, target


def _check_fractions(validation_fraction: float, test_fraction: float):
    if not (0 <= validation_fraction < 1 and 0 <= test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise ValueError(
            "Need 0 <= validation_fraction, test_fraction and validation_fraction + test_fraction < 1, "
            f"got {validation_fraction}, {test_fraction}"
        )


def split_of(source: str, seed: int, validation_fraction: float, test_fraction: float) -> str:
    """Deterministic split of a pair, decided by its source sentence only.

    The key is the source after Unicode NFKC and whitespace collapsing, so the same sentence (in any
    Unicode form or spacing) always lands in the same split and never in two. A seeded BLAKE2b hash
    (``hashlib``; not Python's per-process salted ``hash()``) of the key gives a uniform number u in
    [0, 1): u < test_fraction -> ``'test'``, then the next validation_fraction -> ``'validation'``,
    else ``'train'``.

    Args:
      source: source sentence.
      seed: int; different seeds give independent splits.
      validation_fraction, test_fraction: floats in [0, 1) with sum < 1.

    Returns:
      ``'train'``, ``'validation'`` or ``'test'``.

    Raises:
      ValueError: bad fractions.
    """
    _check_fractions(validation_fraction, test_fraction)
    key = " ".join(unicodedata.normalize("NFKC", source).split())
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=str(int(seed)).encode("ascii")).digest()
    position = int.from_bytes(digest, "big") / 2**64
    if position < test_fraction:
        return "test"
    return "validation" if position < test_fraction + validation_fraction else "train"


def split_pairs(
    pairs: Iterable[Pair], split: str, seed: int, validation_fraction: float, test_fraction: float
) -> Iterator[Pair]:
    """Streams the pairs of ``pairs`` whose :func:`split_of` (by source) is ``split``.

    Args:
      pairs: iterable of (source, target) str.
      split: ``'train'``, ``'validation'`` or ``'test'``.
      seed, validation_fraction, test_fraction: as :func:`split_of`.

    Raises:
      ValueError: unknown split or bad fractions.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    _check_fractions(validation_fraction, test_fraction)
    return (pair for pair in pairs if split_of(pair[0], seed, validation_fraction, test_fraction) == split)
