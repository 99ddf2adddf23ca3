"""Captioning metrics in the coco-caption convention: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D by ``pycocoevalcap``.

``pycocoevalcap`` is the Python 3 package of the MS COCO caption evaluation code (Chen et al. 2015, "Microsoft COCO
Captions: Data Collection and Evaluation Server"), the reference implementation behind the figures of captioning
papers. The convention, applied here exactly as ``pycocoevalcap.eval.COCOEvalCap.evaluate`` does:

1. Every caption, generated and reference, goes through the same tokenisation: Stanford CoreNLP 3.4.1's
   ``PTBTokenizer -preserveLines -lowerCase`` (Java), then the punctuation tokens ``'' ' `` ` -LRB- -RRB- -LCB-
   -RCB- . ? ! , : - -- ... ;`` are removed. Before that, Unicode NFC (``seq2seq.evaluation.references``) and line
   breaks inside a caption become spaces.
2. On those tokens, image by image (image-major: ``references[i]`` = all captions of image ``i``):
   * BLEU-1..4 (Papineni et al. 2002), cumulative, corpus-level, with the reference length *closest* to each
     hypothesis length for the brevity penalty (coco-caption's ``Bleu(4)``, ``option='closest'``);
   * METEOR 1.5 (Denkowski & Lavie 2014), ``-l en -norm``, Java, with its English paraphrase table;
   * ROUGE-L (Lin 2004), longest common subsequence F-measure with beta 1.2, the mean over images;
   * CIDEr-D (Vedantam et al. 2015): TF-IDF weighted n-gram (1-4) cosine similarity with clipped counts and a
     Gaussian length penalty (sigma 6), times 10, the mean over images. coco-caption's ``Cider`` class *is*
     CIDEr-D (the metric of the COCO server, printed there as "CIDEr"). Its IDF comes from the references of the
     evaluated images, so the value depends on the test set as a whole; on a one- or two-image corpus it is
     degenerate (an n-gram in every image's references has IDF 0).
3. Scores are reported on the 0..100 scale (coco-caption's 0..1 values times 100, CIDEr-D's 0..10 too), as
   captioning papers print them (e.g. "BLEU-4 27.7, CIDEr 85.5").

SPICE is not computed (it downloads Stanford CoreNLP models at run time).

Java: the PTB tokenizer and METEOR run ``java``. When no ``java`` is on PATH every metric here is reported as
``{"skipped": reason}`` (without the PTB tokenisation none of the numbers would be coco-caption's); the sacreBLEU
BLEU-n of ``corpus_bleu`` stays available. When Java is present but METEOR fails to run (e.g. the JVM cannot
reserve its 2 GB heap), METEOR alone is reported as skipped with the error; when the PTB tokenizer cannot run (an
OSError, e.g. pycocoevalcap installed read-only: it writes its input file beside its jar), every metric is. Nothing
is ever silently absent.
"""

from __future__ import annotations

import shutil
from importlib.metadata import version
from typing import Sequence

from seq2seq.evaluation.references import References, nfc, normalize_references

METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d")
_DECIMALS = 10
_NO_JAVA = (
    "no Java runtime ('java' not on PATH): pycocoevalcap's PTB tokenizer and METEOR 1.5 run in Java; "
    "install one (Debian/Ubuntu: apt-get install default-jre-headless)"
)


def _one_line(text: str) -> str:
    """The PTB tokenizer reads one caption per line: line breaks inside a caption become spaces."""
    return " ".join(text.splitlines())


def ptb_tokenize(hypotheses: list[str], references: list[list[str]]) -> tuple[dict, dict]:
    """coco-caption's PTB tokenisation of both sides in one Java call.

    Args:
      hypotheses: ``n`` caption strings.
      references: ``n`` lists of reference captions.

    Returns:
      ``(gts, res)``: dicts image index -> list of tokenised references / ``[tokenised hypothesis]``, the input of
      the pycocoevalcap scorers.

    Raises:
      RuntimeError: the tokenizer returned fewer lines than captions (Java failed; its message is on stderr).
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    captions = {("hyp", i): [{"caption": _one_line(h)}] for i, h in enumerate(hypotheses)}
    captions.update({("ref", i): [{"caption": _one_line(r)} for r in refs] for i, refs in enumerate(references)})
    tokenized = PTBTokenizer().tokenize(captions)
    expected = {key: len(value) for key, value in captions.items()}
    if {key: len(value) for key, value in tokenized.items()} != expected:
        raise RuntimeError(
            f"the PTB tokenizer (java) returned {sum(map(len, tokenized.values()))} lines for "
            f"{sum(expected.values())} captions; see its error output above"
        )
    gts = {i: tokenized[("ref", i)] for i in range(len(references))}
    res = {i: tokenized[("hyp", i)] for i in range(len(hypotheses))}
    return gts, res


def _meteor(gts: dict, res: dict) -> dict:
    from pycocoevalcap.meteor.meteor import Meteor

    try:
        scorer = Meteor()
        score, _ = scorer.compute_score(gts, res)
    except (OSError, ValueError) as error:  # the JVM did not start or answered nothing (float(''))
        return {"skipped": f"METEOR (java -jar meteor-1.5.jar) failed: {error}"}
    del scorer  # ends the Java process now
    return {"score": score}


def caption_metrics(hypotheses: Sequence[str], references: References) -> dict:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of generated captions, coco-caption convention (module docstring).

    Args:
      hypotheses: ``n`` generated captions (strings; an empty caption is allowed and scores 0).
      references: image-major: ``references[i]`` is the list of all reference captions of image ``i`` (counts may
        differ per image; a flat list of strings = one caption each).

    Returns:
      dict with keys ``bleu_1``..``bleu_4``, ``meteor``, ``rouge_l``, ``cider_d``; each value is either
      ``{"score": float (0..100, 10 decimals), "signature": str}`` (e.g. ``coco-caption|tok:ptb.lc.nopunct|
      nrefs:5|pycocoevalcap:1.2|metric:cider-d(n:4,sigma:6)``) or ``{"skipped": reason}`` when Java is missing
      (all metrics) or the PTB tokenizer could not run (all metrics) or METEOR could not run (METEOR only).

    Raises:
      ValueError / TypeError: layout problems, as ``seq2seq.evaluation.references.normalize_references``.
      RuntimeError: the PTB tokenizer ran but returned a wrong number of lines.
    """
    refs = normalize_references(hypotheses, references)
    hyps = [nfc(h) for h in hypotheses]
    if shutil.which("java") is None:
        return {name: {"skipped": _NO_JAVA} for name in METRICS}

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    try:
        gts, res = ptb_tokenize(hyps, refs)
    except OSError as error:  # e.g. a read-only install: pycocoevalcap writes its input file next to the jar
        return {name: {"skipped": f"the PTB tokenizer could not run: {error}"} for name in METRICS}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    raw = {f"bleu_{n}": {"score": bleu[n - 1]} for n in range(1, 5)}
    raw["meteor"] = _meteor(gts, res)
    raw["rouge_l"] = {"score": Rouge().compute_score(gts, res)[0]}
    raw["cider_d"] = {"score": Cider().compute_score(gts, res)[0]}

    counts = {len(r) for r in refs}
    base = (
        f"coco-caption|tok:ptb.lc.nopunct|nrefs:{counts.pop() if len(counts) == 1 else 'var'}|"
        f"pycocoevalcap:{version('pycocoevalcap')}"
    )
    details = {
        "meteor": "meteor-1.5(-l en -norm)",
        "rouge_l": "rouge-l(beta:1.2)",
        "cider_d": "cider-d(n:4,sigma:6)",
        **{f"bleu_{n}": f"bleu-{n}(ref_len:closest)" for n in range(1, 5)},
    }
    metrics = {}
    for name in METRICS:
        if "skipped" in raw[name]:
            metrics[name] = raw[name]
        else:
            metrics[name] = {
                "score": round(100.0 * float(raw[name]["score"]), _DECIMALS),
                "signature": f"{base}|metric:{details[name]}",
            }
    return metrics
