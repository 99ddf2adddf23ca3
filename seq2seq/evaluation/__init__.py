"""Evaluation metrics: what the field reports, computed by the reference implementations.

* Translation (``translation_metrics``): cased sacreBLEU (the headline), lowercased sacreBLEU, chrF and TER, each
  with its sacreBLEU signature, and on request BLEU in the WMT multimodal convention (lc.norm.tok). Reference files:
  ``read_reference_streams``.
* Captioning (``caption_metrics``): BLEU-1..4, METEOR, ROUGE-L and CIDEr-D by pycocoevalcap (coco-caption).
* BLEU as a function: ``corpus_bleu`` (corpus level, effective order, with NLTK's value beside it),
  ``sentence_bleu`` and ``per_sentence_scores`` (sentence level, effective order).

Hypotheses and references are scored as given, with Unicode NFC as the only change (``references``). Modules:
``references`` (layouts, NFC, reading files), ``bleu``, ``translation_scores``, ``wmt_convention``,
``caption_scores``.
"""

from seq2seq.evaluation.bleu import corpus_bleu, per_sentence_scores, per_sentence_signatures, sentence_bleu
from seq2seq.evaluation.caption_scores import caption_metrics
from seq2seq.evaluation.references import (
    LAYOUTS,
    check_streams,
    nfc,
    normalize_references,
    read_reference_streams,
    reference_streams,
    streams_to_items,
)
from seq2seq.evaluation.translation_scores import translation_metrics

__all__ = [
    "LAYOUTS",
    "caption_metrics",
    "check_streams",
    "corpus_bleu",
    "nfc",
    "normalize_references",
    "per_sentence_scores",
    "per_sentence_signatures",
    "read_reference_streams",
    "reference_streams",
    "sentence_bleu",
    "streams_to_items",
    "translation_metrics",
]
