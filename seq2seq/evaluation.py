"""Corpus BLEU (Papineni et al. 2002) computed two ways: sacreBLEU and NLTK.

* sacreBLEU (Post 2018, "A Call for Clarity in Reporting BLEU Scores") is the number to report:
  it tokenises internally (``tokenize='13a'`` by default, the WMT ``mteval-v13a`` rules) and
  returns a signature describing exactly how the score was computed.
* NLTK ``corpus_bleu`` with ``SmoothingFunction().method1`` (Chen & Cherry 2014: epsilon 0.1
  added to zero n-gram counts) is reported for comparison with older papers/tutorials. It is fed
  the *same* tokens: each sentence is lowercased (if asked) and tokenised by sacreBLEU's tokenizer,
  then split on whitespace. The two agree (up to float rounding) unless an n-gram order has zero
  matches (different smoothing) or a hypothesis is shorter than 4 tokens: NLTK counts the missing
  n-grams of such a hypothesis as ``0/1`` (denominator ``max(1, count)``), sacreBLEU as ``0/0``.

Reference layout (used by every function here): ``references[i]`` is the list of *all*
references of hypothesis ``i`` (multi-reference; e.g. ~5 captions per image, the count may vary
per item). A flat list of strings means one reference per hypothesis. For sacreBLEU, which wants
reference *streams* (``streams[j][i]`` = j-th reference of item i), items with fewer references
are padded with ``None``, which sacreBLEU skips (an empty string would count as a real, empty
reference).

Scores are on the 0..100 scale and rounded to 10 decimals to drop float noise (sacreBLEU returns
``100.00000000000004`` for a perfect match).
"""

from __future__ import annotations

from typing import Sequence, Union

from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from sacrebleu.metrics import BLEU

References = Union[Sequence[str], Sequence[Sequence[str]]]

MAX_ORDER = 4
_DECIMALS = 10


def normalize_references(hypotheses: Sequence[str], references: References) -> list[list[str]]:
    """Returns ``references`` as one list of reference strings per hypothesis.

    Args:
      hypotheses: ``n`` hypothesis strings.
      references: ``n`` items, each a string (single reference) or a non-empty sequence of strings.

    Raises:
      ValueError: ``len(references) != len(hypotheses)`` (both lengths in the message), an empty
        corpus, or an item with no reference.
      TypeError: a hypothesis or reference that is not a string.
    """
    if len(references) != len(hypotheses):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses but {len(references)} reference entries; "
            "references[i] must hold the reference(s) of hypothesis i")
    if not hypotheses:
        raise ValueError("cannot compute BLEU of an empty corpus (0 hypotheses)")
    for i, hypothesis in enumerate(hypotheses):
        if not isinstance(hypothesis, str):
            raise TypeError(f"hypothesis {i} is {type(hypothesis).__name__}, expected str")
    normalized = []
    for i, item in enumerate(references):
        refs = [item] if isinstance(item, str) else list(item)
        if not refs:
            raise ValueError(f"hypothesis {i} has no reference (references[{i}] is empty)")
        for ref in refs:
            if not isinstance(ref, str):
                raise TypeError(f"a reference of hypothesis {i} is {type(ref).__name__}, "
                                "expected str")
        normalized.append(refs)
    return normalized


def reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """Transposes per-item references into sacreBLEU streams, padding missing ones with None."""
    n_streams = max(len(refs) for refs in references)
    return [[refs[j] if j < len(refs) else None for refs in references]
            for j in range(n_streams)]


def _round(score: float) -> float:
    return round(float(score), _DECIMALS)


def _sacrebleu(hypotheses, streams, tokenize, lowercase, max_order=MAX_ORDER):
    metric = BLEU(tokenize=tokenize, lowercase=lowercase, max_ngram_order=max_order)
    return metric, metric.corpus_score(list(hypotheses), streams)


def _nltk_bleu_n(hypotheses, references, tokenizer, lowercase) -> list[float]:
    """Cumulative NLTK BLEU-1..4 (uniform weights), method1 smoothing, on sacreBLEU tokens."""

    def tokens(text):
        text = text.lower() if lowercase else text
        return tokenizer(text.rstrip()).split()

    hyp_tokens = [tokens(h) for h in hypotheses]
    ref_tokens = [[tokens(r) for r in refs] for refs in references]
    weights = [tuple([1.0 / n] * n) for n in range(1, MAX_ORDER + 1)]
    scores = nltk_corpus_bleu(ref_tokens, hyp_tokens, weights=weights,
                              smoothing_function=SmoothingFunction().method1)
    return [_round(100.0 * s) for s in scores]


def corpus_bleu(hypotheses: Sequence[str], references: References, tokenize: str = "13a",
                lowercase: bool = False) -> dict:
    """Corpus BLEU of detokenised ``hypotheses`` against ``references`` (sacreBLEU and NLTK).

    Args:
      hypotheses: list of ``n`` detokenised hypothesis strings (an empty string is allowed).
      references: ``n`` items; ``references[i]`` is the list of all references of hypothesis
        ``i`` (counts may differ per item) or a single string (see the module docstring).
      tokenize: sacreBLEU tokenizer name (``'13a'`` default, ``'intl'``, ``'char'``, ``'none'``...),
        used for both implementations.
      lowercase: case-insensitive BLEU (both implementations).

    Returns:
      dict with (scores on the 0..100 scale):
        ``score`` (sacreBLEU BLEU-4), ``signature`` (sacreBLEU signature string, includes ``nrefs``),
        ``precisions`` (sacreBLEU n-gram precisions, n = 1..4), ``brevity_penalty``,
        ``length_ratio``, ``sys_len``, ``ref_len``, ``nltk_score`` (NLTK BLEU-4, method1),
        ``bleu_n``: ``{'sacrebleu': {1: .., 4: ..}, 'nltk': {1: .., 4: ..}}``, cumulative BLEU-n
        (uniform weights over orders 1..n; sacreBLEU via ``max_ngram_order=n``).

    Raises:
      ValueError: length mismatch (both lengths in the message), empty corpus, an item with no
        reference; TypeError for non-string entries.
    """
    refs = normalize_references(hypotheses, references)
    streams = reference_streams(refs)
    metric, result = _sacrebleu(hypotheses, streams, tokenize, lowercase)
    sacre_n = {n: _round(_sacrebleu(hypotheses, streams, tokenize, lowercase, n)[1].score)
               for n in range(1, MAX_ORDER)}
    sacre_n[MAX_ORDER] = _round(result.score)
    nltk_n = _nltk_bleu_n(hypotheses, refs, metric.tokenizer, lowercase)
    return {
        "score": _round(result.score),
        "signature": str(metric.get_signature()),
        "precisions": [_round(p) for p in result.precisions],
        "brevity_penalty": _round(result.bp),
        "length_ratio": _round(result.ratio),
        "sys_len": int(result.sys_len),
        "ref_len": int(result.ref_len),
        "nltk_score": nltk_n[-1],
        "bleu_n": {"sacrebleu": sacre_n, "nltk": dict(enumerate(nltk_n, start=1))},
    }
