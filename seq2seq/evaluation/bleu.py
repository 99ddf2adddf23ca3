"""BLEU (Papineni et al. 2002) at corpus and sentence level, computed by sacreBLEU (Post 2018).

* ``corpus_bleu`` is the headline number of an evaluation. sacreBLEU tokenises internally (``tokenize='13a'`` by
  default, the WMT ``mteval-v13a`` rules) and returns a signature describing exactly how the score was computed.
  It runs with sacreBLEU's *effective order*: an n-gram order that no hypothesis of the corpus is long enough to
  have (total count 0) is left out of the geometric mean instead of making the score 0. So
  ``corpus_bleu(["left right"], [["left right"]])`` is 100.0 (BLEU over orders 1-2), where sacreBLEU's default,
  and its command line, give 0.0. As soon as one hypothesis has 4 or more tokens every order has n-grams and the
  score is *exactly* sacreBLEU's default (``BLEU()``, the command line's); only the signature says ``eff:yes``.
  An order that has n-grams but no match is smoothed by sacreBLEU's default ``exp`` method (mteval-v13a's: the
  k-th such order gets precision ``1 / (2**k * total)``), as in sacreBLEU's default.
  For translation figures to be re-checked with the ``sacrebleu`` command line, use
  ``seq2seq.evaluation.translation_metrics`` (sacreBLEU's defaults exactly, ``eff:no``).
* NLTK ``corpus_bleu`` with ``SmoothingFunction().method1`` (Chen & Cherry 2014: epsilon 0.1 added to zero n-gram
  counts) is reported beside it (``nltk_score``) for comparison with older papers and tutorials. It is fed the
  *same* tokens: each sentence is lowercased (if asked) and tokenised by sacreBLEU's tokenizer, then split on
  whitespace. The two agree (up to float rounding) unless an n-gram order has zero matches (different smoothing)
  or a hypothesis is shorter than 4 tokens: NLTK counts the missing n-grams of such a hypothesis as ``0/1``
  (denominator ``max(1, count)``), sacreBLEU as ``0/0``.
* ``sentence_bleu`` is sacreBLEU's sentence BLEU with effective order (what sacreBLEU recommends for single
  sentences); ``per_sentence_scores`` gives sentence BLEU and chrF for every line of a test set. Sentence scores are
  for inspection (``evaluate --per-sentence``); their mean is not corpus BLEU and is never reported as such.

Reference layouts and the only text change made (Unicode NFC): see ``seq2seq.evaluation.references``.
Scores are on the 0..100 scale and rounded to 10 decimals to drop float noise (sacreBLEU returns
``100.00000000000004`` for a perfect match).
"""

from __future__ import annotations

import warnings
from typing import Sequence, Union

from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from sacrebleu.metrics import BLEU, CHRF

from seq2seq.evaluation.references import References, check_streams, nfc, normalize_references, reference_streams

MAX_ORDER = 4
_DECIMALS = 10
_SMOOTH_METHODS = ("exp", "floor", "add-k", "none")


def _round(score: float) -> float:
    return round(float(score), _DECIMALS)


def _nltk_bleu_n(hypotheses, references, tokenizer, lowercase) -> list[float]:
    """Cumulative NLTK BLEU-1..4 (uniform weights), method1 smoothing, on sacreBLEU tokens."""

    def tokens(text):
        text = text.lower() if lowercase else text
        return tokenizer(text.rstrip()).split()

    hyp_tokens = [tokens(h) for h in hypotheses]
    ref_tokens = [[tokens(r) for r in refs] for refs in references]
    weights = [tuple([1.0 / n] * n) for n in range(1, MAX_ORDER + 1)]
    scores = nltk_corpus_bleu(ref_tokens, hyp_tokens, weights=weights, smoothing_function=SmoothingFunction().method1)
    return [_round(100.0 * s) for s in scores]


def _score_fields(result) -> dict:
    """The statistics of a sacreBLEU ``BLEUScore`` as plain Python values."""
    return {
        "score": _round(result.score),
        "precisions": [_round(p) for p in result.precisions],
        "brevity_penalty": _round(result.bp),
        "length_ratio": _round(result.ratio),
        "sys_len": int(result.sys_len),
        "ref_len": int(result.ref_len),
    }


def corpus_bleu(
    hypotheses: Sequence[str],
    references: References,
    tokenize: str = "13a",
    lowercase: bool = False,
    effective_order: bool = True,
) -> dict:
    """Corpus BLEU of detokenised ``hypotheses`` against ``references`` (sacreBLEU, and NLTK for comparison).

    Args:
      hypotheses: list of ``n`` detokenised hypothesis strings (an empty string is allowed).
      references: per-hypothesis layout: ``n`` items; ``references[i]`` is the list of all reference strings of
        hypothesis ``i`` (counts may differ per item) or a single string. Not sacreBLEU streams (see
        ``seq2seq.evaluation.references``).
      tokenize: sacreBLEU tokenizer name (``'13a'`` default, ``'intl'``, ``'char'``, ``'none'``...), used for both
        implementations.
      lowercase: case-insensitive BLEU through sacreBLEU's ``lowercase`` (signature ``case:lc``), both
        implementations. Default False (cased).
      effective_order: default True: orders that no hypothesis has (all hypotheses shorter than n tokens) are left
        out instead of scoring 0 (module docstring); False is sacreBLEU's default exactly.

    Returns:
      dict with (scores on the 0..100 scale):
        ``score`` (sacreBLEU BLEU-4), ``signature`` (sacreBLEU signature string, includes ``nrefs``),
        ``precisions`` (sacreBLEU n-gram precisions, n = 1..4), ``brevity_penalty``, ``length_ratio``,
        ``sys_len``, ``ref_len`` (13a tokens), ``nltk_score`` (NLTK BLEU-4, method1),
        ``bleu_n``: ``{'sacrebleu': {1: .., 4: ..}, 'nltk': {1: .., 4: ..}}``, cumulative BLEU-n (uniform weights
        over orders 1..n; sacreBLEU via ``max_ngram_order=n``).

    Raises:
      ValueError: length mismatch (both lengths in the message), empty corpus, an item with no reference, token
        lists where sentences are expected (the message shows the accepted layouts); TypeError for other
        non-string entries.
    """
    refs = normalize_references(hypotheses, references)  # also checks the hypotheses
    hyps = [nfc(h) for h in hypotheses]
    streams = reference_streams(refs)

    def sacre(order):
        metric = BLEU(tokenize=tokenize, lowercase=lowercase, max_ngram_order=order, effective_order=effective_order)
        return metric, metric.corpus_score(hyps, streams)

    metric, result = sacre(MAX_ORDER)
    sacre_n = {n: _round(sacre(n)[1].score) for n in range(1, MAX_ORDER)}
    sacre_n[MAX_ORDER] = _round(result.score)
    nltk_n = _nltk_bleu_n(hyps, refs, metric.tokenizer, lowercase)
    fields = _score_fields(result)
    return {
        "score": fields.pop("score"),
        "signature": str(metric.get_signature()),
        **fields,
        "nltk_score": nltk_n[-1],
        "bleu_n": {"sacrebleu": sacre_n, "nltk": dict(enumerate(nltk_n, start=1))},
    }


def _smoothing(smooth: Union[bool, str]) -> tuple[str, bool]:
    """``smooth`` argument -> (sacreBLEU ``smooth_method``, ``effective_order``)."""
    if smooth is True:
        return "exp", True
    if smooth is False or smooth == "none":
        return "none", False
    if smooth in _SMOOTH_METHODS:
        return smooth, True
    raise ValueError(f"smooth must be True, False or one of {', '.join(_SMOOTH_METHODS)}; got {smooth!r}")


def _warn_if_zero_for_want_of_ngrams(result) -> None:
    """One warning when unsmoothed BLEU is 0 because some n-gram orders are absent or unmatched."""
    if result.score > 0 or not any(result.counts):
        return  # a positive score, or no match at all (0 under any smoothing): nothing to explain
    absent = [n for n, total in enumerate(result.totals, start=1) if total == 0]
    unmatched = [
        n for n, (count, total) in enumerate(zip(result.counts, result.totals), start=1) if total > 0 and count == 0
    ]
    reasons = []
    if absent:
        reasons.append(f"the hypothesis ({result.sys_len} tokens) has no {', '.join(f'{n}-grams' for n in absent)}")
    if unmatched:
        reasons.append(f"no {', '.join(f'{n}-gram' for n in unmatched)} of the hypothesis matches a reference")
    warnings.warn(
        f"unsmoothed sentence BLEU-{len(result.totals)} is 0.0: {'; '.join(reasons)} (n-gram orders "
        f"{', '.join(map(str, absent + unmatched))} missing); smooth=True uses sacreBLEU's effective order",
        UserWarning,
        stacklevel=3,
    )


def sentence_bleu(
    hypothesis: str,
    references: Union[str, Sequence[str]],
    smooth: Union[bool, str] = True,
    lowercase: bool = False,
    tokenize: str = "13a",
) -> dict:
    """Sentence-level BLEU of one hypothesis, sacreBLEU's with effective order (Post 2018; sacreBLEU ``-sl``).

    With ``smooth=True`` (default) this is ``BLEU(effective_order=True).sentence_score``: n-gram orders longer than
    the hypothesis are left out of the geometric mean and an order without a match gets mteval-v13a's ``exp``
    smoothing, so an identical short hypothesis (``"left right"`` vs ``"left right"``) scores 100.0.
    ``smooth=False`` (or ``"none"``) asks for textbook BLEU-4 without smoothing or effective order: 0.0 whenever an
    order is absent or unmatched, reported with one ``UserWarning`` naming the missing orders.

    Args:
      hypothesis: one detokenised hypothesis string.
      references: its reference string, or a list of all its reference strings.
      smooth: True (default; ``exp`` smoothing + effective order), False / ``"none"`` (unsmoothed BLEU-4, no
        effective order), or a sacreBLEU method ``"exp"``, ``"floor"`` (0.1), ``"add-k"`` (1) with effective order.
      lowercase: case-insensitive (sacreBLEU ``lowercase``, signature ``case:lc``). Default False.
      tokenize: sacreBLEU tokenizer, default ``'13a'``.

    Returns:
      dict: ``score`` (0..100), ``signature`` (sacreBLEU, e.g. ``nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|
      version:2.6.0``), ``precisions``, ``counts`` and ``totals`` (matched and hypothesis n-grams, n = 1..4),
      ``brevity_penalty``, ``length_ratio``, ``sys_len``, ``ref_len``.

    Raises:
      ValueError: no reference, an unknown ``smooth``, token lists where sentences are expected.
      TypeError: a non-string hypothesis or reference.

    Warns:
      UserWarning: once, when unsmoothed BLEU is 0.0 because n-gram orders are missing.
    """
    if not isinstance(hypothesis, str):
        raise TypeError(f"sentence_bleu takes one hypothesis string, got {type(hypothesis).__name__}")
    refs = normalize_references([hypothesis], [references])[0]
    smooth_method, effective_order = _smoothing(smooth)
    metric = BLEU(tokenize=tokenize, lowercase=lowercase, smooth_method=smooth_method, effective_order=effective_order)
    # corpus_score of a one-line corpus is sentence_score's computation without its log warning for eff:no.
    result = metric.corpus_score([nfc(hypothesis)], [[ref] for ref in refs])
    if smooth_method == "none":
        _warn_if_zero_for_want_of_ngrams(result)
    fields = _score_fields(result)
    return {
        "score": fields.pop("score"),
        "signature": str(metric.get_signature()),
        "counts": list(result.counts),
        "totals": list(result.totals),
        **fields,
    }


def _sentence_metrics(lowercase: bool) -> dict:
    return {"bleu": BLEU(lowercase=lowercase, effective_order=True), "chrf": CHRF(lowercase=lowercase)}


def per_sentence_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], lowercase: bool = False
) -> list[dict]:
    """Sentence BLEU (effective order, ``exp`` smoothing) and sentence chrF of every hypothesis.

    The per-line view for ``evaluate --per-sentence``: sacreBLEU's ``--sentence-level`` scores. Their mean is not
    corpus BLEU; report corpus BLEU as the headline.

    Args:
      hypotheses: ``n`` detokenised hypothesis strings.
      references: sacreBLEU reference streams: ``k`` lists of ``n`` strings (one per reference file).
      lowercase: case-insensitive scores (signature ``case:lc``). Default False.

    Returns:
      ``n`` dicts ``{"bleu": float, "chrf": float}`` (0..100, 10 decimals); their signatures are
      ``per_sentence_signatures(len(references), lowercase)``.

    Raises:
      ValueError / TypeError: as ``seq2seq.evaluation.references.check_streams``.
    """
    streams = check_streams(hypotheses, references)
    hyps = [nfc(h) for h in hypotheses]
    metrics = _sentence_metrics(lowercase)
    scores = []
    for i, hypothesis in enumerate(hyps):
        refs = [stream[i] for stream in streams]
        scores.append({name: _round(metric.sentence_score(hypothesis, refs).score) for name, metric in metrics.items()})
    return scores


def per_sentence_signatures(n_references: int = 1, lowercase: bool = False) -> dict:
    """sacreBLEU signatures of ``per_sentence_scores``: ``{"bleu": str, "chrf": str}``.

    Args:
      n_references: number of reference streams (the signature's ``nrefs``), default 1.
      lowercase: as passed to ``per_sentence_scores``.
    """
    signatures = {}
    for name, metric in _sentence_metrics(lowercase).items():
        metric.sentence_score("x", ["x"] * n_references)  # sacreBLEU learns nrefs from the references it scores
        signatures[name] = str(metric.get_signature())
    return signatures
