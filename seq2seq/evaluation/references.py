"""Reference layouts for the metrics: checking them, converting between them, reading reference files.

Two layouts are accepted, each by the functions documented to take it:

* **per hypothesis** (captions, multi-reference; ``corpus_bleu``, ``caption_metrics``): ``references[i]`` is the
  list of *all* reference strings of hypothesis ``i`` (the count may differ per item, e.g. ~5 captions per image);
  a flat list of strings means one reference per hypothesis.
* **reference streams** (sacreBLEU's layout; ``translation_metrics``, ``per_sentence_scores``): ``references[j]`` is
  the j-th reference *file*, one string per hypothesis (``references[j][i]`` = j-th reference of hypothesis ``i``).

Both layouts hold sentences (strings). A tokenised sentence (a list of tokens) where a sentence is expected is
refused with a ``ValueError`` that shows the layouts: such a list is otherwise read as several one-word references
and the score silently collapses (issue 17, from a user's report: with NLTK the same mistake went unnoticed).

Text is compared exactly as given except for Unicode NFC (``unicodedata.normalize('NFC', s)``), applied to
hypotheses and references alike, so composed and decomposed spellings of the same letters match (``"ñ"`` as one code
point or as ``"n"`` + combining tilde). No case folding or other training normalisation touches references.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Optional, Sequence, Union

from pipelines.errors import DataError

References = Union[Sequence[str], Sequence[Sequence[str]]]

LAYOUTS = (
    "accepted reference layouts (sentences as strings, never token lists):\n"
    "  per hypothesis (corpus_bleu, sentence_bleu, caption_metrics): references[i] = list of all reference strings "
    "of hypothesis i,\n"
    "    e.g. corpus_bleu(['this is a cat'], [['this is a cat', 'a cat is here']]); "
    "a flat list of strings = one reference each\n"
    "  sacreBLEU reference streams (translation_metrics, per_sentence_scores): references[j] = j-th reference file, "
    "one string per hypothesis,\n"
    "    e.g. translation_metrics(['a cat', 'a dog'], [['the cat', 'the dog']])"
)


def nfc(text: str) -> str:
    """``text`` in Unicode normal form C (canonical composition), the only change made to scored text."""
    return unicodedata.normalize("NFC", text)


def _check_hypotheses(hypotheses: Sequence[str]) -> list[str]:
    if isinstance(hypotheses, str):
        raise ValueError(f"hypotheses must be a list of strings, got one string {hypotheses[:40]!r}")
    if not hypotheses:
        raise ValueError("cannot score an empty corpus (0 hypotheses)")
    for i, hypothesis in enumerate(hypotheses):
        if not isinstance(hypothesis, str):
            if isinstance(hypothesis, (list, tuple)):
                raise ValueError(
                    f"hypothesis {i} is a {type(hypothesis).__name__} (a token list?); hypotheses are "
                    f"detokenised strings.\n{LAYOUTS}"
                )
            raise TypeError(f"hypothesis {i} is {type(hypothesis).__name__}, expected str")
    return [nfc(h) for h in hypotheses]


def _check_reference(ref, where: str) -> str:
    if isinstance(ref, str):
        return nfc(ref)
    if isinstance(ref, (list, tuple)):
        raise ValueError(f"{where} is a {type(ref).__name__}, not a string: a tokenised sentence?\n{LAYOUTS}")
    raise TypeError(f"{where} is {type(ref).__name__}, expected str")


def _refuse_token_lists(hypotheses: list[str], references: list[list[str]]) -> None:
    """Raises ValueError when every item's references look like the tokens of one sentence.

    The signature of the mistake ``corpus_bleu(["This is cat"], [["This", "is", "a", "cat"]])``: every hypothesis
    has two or more references, none of which contains a space, while some hypothesis has several words. A corpus
    of genuine one-word multi-references with one-word hypotheses (``"hi"`` vs ``["hello", "hi"]``) is accepted.
    """
    all_single_tokens = all(len(refs) >= 2 and all(len(r.split()) <= 1 for r in refs) for refs in references)
    if all_single_tokens and any(len(h.split()) > 1 for h in hypotheses):
        example = references[0][:6]
        raise ValueError(
            f"every hypothesis has several one-word references (references[0] = {example!r}) while "
            f"hypotheses have several words: token lists where sentences are expected? Join the tokens "
            f"of each reference into one string.\n{LAYOUTS}"
        )


def normalize_references(hypotheses: Sequence[str], references: References) -> list[list[str]]:
    """Checks the per-hypothesis layout; returns one list of NFC reference strings per hypothesis.

    "Normalize" is about the layout only: the text is changed by Unicode NFC and nothing else.

    Args:
      hypotheses: ``n`` hypothesis strings.
      references: ``n`` items, each a string (single reference) or a non-empty sequence of strings.

    Returns:
      ``n`` lists of reference strings (NFC).

    Raises:
      ValueError: ``len(references) != len(hypotheses)`` (both lengths in the message), an empty corpus, an item
        with no reference, or token lists where sentences are expected (the message shows ``LAYOUTS``).
      TypeError: a hypothesis or reference that is neither a string nor a list.
    """
    checked_hypotheses = _check_hypotheses(hypotheses)
    if isinstance(references, str):
        raise ValueError(f"references must be a list, got one string {references[:40]!r}\n{LAYOUTS}")
    if len(references) != len(hypotheses):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses but {len(references)} reference entries; "
            f"references[i] must hold the reference(s) of hypothesis i\n{LAYOUTS}"
        )
    normalized = []
    for i, item in enumerate(references):
        refs = [item] if isinstance(item, str) else list(item)
        if not refs:
            raise ValueError(f"hypothesis {i} has no reference (references[{i}] is empty)")
        normalized.append([_check_reference(ref, f"a reference of hypothesis {i}") for ref in refs])
    _refuse_token_lists(checked_hypotheses, normalized)
    return normalized


def check_streams(hypotheses: Sequence[str], streams: Sequence[Sequence[str]]) -> list[list[str]]:
    """Checks sacreBLEU's stream layout; returns the streams with every string in NFC.

    Args:
      hypotheses: ``n`` hypothesis strings.
      streams: ``k >= 1`` reference streams, each a sequence of ``n`` strings (``streams[j][i]`` = j-th reference
        of hypothesis ``i``).

    Returns:
      ``k`` lists of ``n`` NFC strings.

    Raises:
      ValueError: no stream, a stream whose length is not ``n`` (stream index and both lengths in the message), a
        flat list of strings given as streams, an empty corpus, token lists (message shows ``LAYOUTS``).
      TypeError: an entry that is neither a string nor a list.
    """
    checked_hypotheses = _check_hypotheses(hypotheses)
    if isinstance(streams, str) or not streams:
        raise ValueError(f"references must be a non-empty list of reference streams\n{LAYOUTS}")
    if all(isinstance(stream, str) for stream in streams):
        raise ValueError(
            f"references is a flat list of strings; reference streams are lists of strings: wrap it, "
            f"[references], for one reference per hypothesis\n{LAYOUTS}"
        )
    checked = []
    for j, stream in enumerate(streams):
        if isinstance(stream, str) or len(stream) != len(hypotheses):
            length = "a string" if isinstance(stream, str) else f"{len(stream)} entries"
            raise ValueError(
                f"reference stream {j} has {length} but there are {len(hypotheses)} hypotheses; "
                f"each stream holds one reference per hypothesis\n{LAYOUTS}"
            )
        checked.append([_check_reference(ref, f"reference {i} of stream {j}") for i, ref in enumerate(stream)])
    _refuse_token_lists(checked_hypotheses, streams_to_items(checked))
    return checked


def reference_streams(references: list[list[str]]) -> list[list[Optional[str]]]:
    """Per-hypothesis references -> sacreBLEU streams, padding items with fewer references with ``None``.

    sacreBLEU skips ``None`` (an empty string would count as a real, empty reference).
    """
    n_streams = max(len(refs) for refs in references)
    return [[refs[j] if j < len(refs) else None for refs in references] for j in range(n_streams)]


def streams_to_items(streams: Sequence[Sequence[Optional[str]]]) -> list[list[str]]:
    """sacreBLEU streams -> per-hypothesis reference lists (``None`` padding dropped)."""
    return [[ref for ref in column if ref is not None] for column in zip(*streams)]


def _read_lines(path: str) -> list[str]:
    """Lines of a UTF-8 file read as the sacreBLEU command line reads them: split on ``\\n``, trailing space cut."""
    with open(path, "rb") as file:
        raw_lines = file.read().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the final newline ends the last line; it does not start an empty one
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{path}:{number}: not valid UTF-8 ({error.reason} at byte {error.start})") from error
        lines.append(nfc(text.removeprefix("\ufeff") if number == 1 else text).rstrip())
    return lines


def read_reference_streams(
    paths: Sequence[Union[str, os.PathLike]], expected_lines: Optional[int] = None
) -> list[list[str]]:
    """Reads reference files, one sacreBLEU stream per file, as the sacreBLEU command line does, then NFC.

    Each line is one reference; lines are split on ``\\n`` only and lose their trailing whitespace (the
    ``sacrebleu`` command line's ``line.rstrip()``, which also removes a ``\\r``), and a UTF-8 BOM on line 1 is
    dropped. Scoring the streams with ``translation_metrics`` then gives the same numbers as
    ``sacrebleu REF1 [REF2 ...] -i HYPOTHESES -m bleu chrf ter``.

    Args:
      paths: one or more reference files (str or path-like; a single path is one stream).
      expected_lines: the number of hypotheses (or source lines) each file must match; ``None`` (default): the
        files must agree with the first one.

    Returns:
      ``len(paths)`` lists of NFC strings, all of the same length.

    Raises:
      ValueError: no path given; DataError (a ValueError): a file whose line count differs (the message names the
        file, its count and the expected count), or a line that is not UTF-8 (``path:line``).
      OSError: a file cannot be read.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("no reference file given")
    streams = []
    expected_from = None if expected_lines is None else f"there are {expected_lines} hypotheses"
    for path in map(os.fspath, paths):
        lines = _read_lines(path)
        if expected_lines is None:
            expected_lines, expected_from = len(lines), f"{path} has {len(lines)}"
        elif len(lines) != expected_lines:
            raise DataError(
                f"{path}: {len(lines)} lines, but {expected_from}; every reference file needs one line per hypothesis"
            )
        streams.append(lines)
    return streams
