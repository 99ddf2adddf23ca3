"""The metrics of a translation evaluation: cased and lowercased BLEU, chrF and TER by sacreBLEU, WMT's lc.norm.tok.

Every number here is what the ``sacrebleu`` command line prints for the same hypothesis and reference files
(``sacrebleu REF [REF ...] -i HYP -m bleu chrf ter``, plus ``-lc`` for the lowercased BLEU), signature included:
sacreBLEU's default settings, no effective order. The only change made to the text is Unicode NFC on both sides
(see ``seq2seq.evaluation.references``); references are never passed through the training normalisation.

Metrics (Post 2018, "A Call for Clarity in Reporting BLEU Scores"):
  bleu: cased BLEU-4, tokenizer 13a, ``exp`` smoothing: the headline.
  bleu_lc: the same with sacreBLEU's ``lowercase=True`` (signature ``case:lc``), the only case-insensitive BLEU.
  chrf: chrF2 (Popovic 2015): character 6-grams, beta 2, cased.
  ter: TER (Snover et al. 2006), sacreBLEU's tercom port; case-insensitive by sacreBLEU's default (``case:lc``).
  bleu_wmt_lc_norm_tok (only with ``wmt_convention=True``): the WMT multimodal convention, see
    ``seq2seq.evaluation.wmt_convention``.
"""

from __future__ import annotations

from typing import Optional, Sequence

from sacrebleu.metrics import BLEU, CHRF, TER

from seq2seq.evaluation.references import check_streams, nfc
from seq2seq.evaluation.wmt_convention import describe, lc_norm_tok

_DECIMALS = 10


def _entry(metric, hypotheses, streams, prefix: str = "") -> dict:
    result = metric.corpus_score(hypotheses, streams)
    entry = {"score": round(float(result.score), _DECIMALS), "signature": prefix + str(metric.get_signature())}
    if isinstance(metric, BLEU):
        entry.update(
            {
                "precisions": [round(float(p), _DECIMALS) for p in result.precisions],
                "brevity_penalty": round(float(result.bp), _DECIMALS),
                "sys_len": int(result.sys_len),
                "ref_len": int(result.ref_len),
            }
        )
    return entry


def translation_metrics(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    wmt_convention: bool = False,
    target_language: Optional[str] = None,
) -> dict:
    """Scores detokenised translations against reference streams, one entry per metric with its signature.

    Args:
      hypotheses: ``n`` detokenised output strings, as written to the hypotheses file.
      references: sacreBLEU reference streams: ``k >= 1`` lists of ``n`` strings, one list per reference file
        (``seq2seq.evaluation.references.read_reference_streams`` reads them from files).
      wmt_convention: default False; True adds ``bleu_wmt_lc_norm_tok`` (lowercase -> Moses normalize-punctuation
        -> Moses tokenizer on both sides, BLEU on those tokens with ``tokenize='none'``), the convention of the WMT
        multimodal task and Multi30k papers.
      target_language: ISO 639-1 code of the hypotheses' language (``'de'`` for Multi30k en->de); required by
        ``wmt_convention`` (the Moses rules are language-specific), otherwise unused.

    Returns:
      dict ``{"bleu": {...}, "bleu_lc": {...}, "chrf": {...}, "ter": {...}[, "bleu_wmt_lc_norm_tok": {...}]}``;
      each entry has ``score`` (0..100; TER is an error rate, lower is better) and ``signature`` (sacreBLEU's, e.g.
      ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``; the WMT entry's starts with
      ``lc.norm.tok:sacremoses-0.2.0|lang:de|``). BLEU entries add ``precisions`` (n = 1..4), ``brevity_penalty``,
      ``sys_len`` and ``ref_len`` (tokens).

    Raises:
      ValueError: a layout problem (``check_streams``: stream length != ``n``, token lists, empty corpus), or
        ``wmt_convention`` without ``target_language``.
      TypeError: non-string entries.
    """
    if wmt_convention and not target_language:
        raise ValueError(
            "wmt_convention=True needs target_language (the hypotheses' language, e.g. 'de'): Moses "
            "normalisation and tokenisation are language-specific"
        )
    streams = check_streams(hypotheses, references)  # checks both sides, NFC
    hyps = [nfc(h) for h in hypotheses]
    metrics = {
        "bleu": _entry(BLEU(), hyps, streams),
        "bleu_lc": _entry(BLEU(lowercase=True), hyps, streams),
        "chrf": _entry(CHRF(), hyps, streams),
        "ter": _entry(TER(), hyps, streams),
    }
    if wmt_convention:
        metrics["bleu_wmt_lc_norm_tok"] = _entry(
            BLEU(tokenize="none", force=True),
            lc_norm_tok(hyps, target_language),  # tokenised on purpose
            [lc_norm_tok(stream, target_language) for stream in streams],
            prefix=describe(target_language) + "|",
        )
    return metrics
