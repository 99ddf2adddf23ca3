"""Tests for seq2seq.evaluation.translation_metrics, the WMT lc.norm.tok convention and reference files."""

import subprocess
import sys
import unicodedata

import pytest
from conftest import shared_data_dir

from pipelines.translation import DataError
from seq2seq.evaluation import read_reference_streams, translation_metrics
from seq2seq.evaluation.wmt_convention import lc_norm_tok

HYPOTHESES = [
    "Ein Mann fährt mit dem Fahrrad über die Straße.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau liest ein Buch.",
    'Der Mann sagt "Hallo".',
]
REFERENCES = [
    [
        "Ein Mann fährt Fahrrad auf der Straße.",
        "Zwei Hunde spielen im Schnee.",
        "eine Frau liest ein Buch im Park.",
        "Der Mann sagt „Hallo“.",
    ]
]


@pytest.fixture(scope="module")
def metrics():
    return translation_metrics(HYPOTHESES, REFERENCES, wmt_convention=True, target_language="de")


def test_cased_bleu_hand_computed(metrics):
    # 13a tokens, hypothesis : reference lengths 10:8, 6:6, 6:8, 7:5 -> 29 vs 27, BP = 1.
    # 1-grams: 6 + 6 + 5 ("Eine" != "eine") + 4 (Der Mann sagt .) = 21 / 29; the ASCII quotes and the unsplit
    # „Hallo“ never match. 2-grams: 3 + 5 + 3 + 2 = 13 / 25; 3-grams 1 + 4 + 2 + 1 = 8 / 21;
    # 4-grams 0 + 3 + 1 + 0 = 4 / 17.
    expected = 100.0 * (21 / 29 * 13 / 25 * 8 / 21 * 4 / 17) ** 0.25
    assert metrics["bleu"]["score"] == pytest.approx(expected, rel=1e-9)
    assert metrics["bleu"]["score"] == 42.8624114263
    assert metrics["bleu"]["signature"] == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    assert (metrics["bleu"]["sys_len"], metrics["bleu"]["ref_len"], metrics["bleu"]["brevity_penalty"]) == (29, 27, 1.0)


def test_lowercased_bleu_chrf_ter_pinned(metrics):
    # Values from sacreBLEU 2.6.0 on these inputs (the command line gives the same, see the test below).
    # Lowercased: "eine Frau liest ein" adds one match at every order: 22/29, 14/25, 9/21, 5/17.
    assert metrics["bleu_lc"]["score"] == pytest.approx(100.0 * (22 / 29 * 14 / 25 * 9 / 21 * 5 / 17) ** 0.25, rel=1e-9)
    assert metrics["bleu_lc"]["score"] == 48.10489288
    assert metrics["bleu_lc"]["signature"] == "nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:2.6.0"
    assert metrics["chrf"] == {
        "score": 74.0909307367,
        "signature": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
    }
    assert metrics["ter"] == {
        "score": 34.7826086957,
        "signature": "nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0",
    }
    assert set(metrics) == {"bleu", "bleu_lc", "chrf", "ter", "bleu_wmt_lc_norm_tok"}


def test_wmt_lc_norm_tok_convention(metrics):
    # Moses normalisation maps „ “ to ", the Moses tokenizer splits them off: the quoted word now matches.
    assert lc_norm_tok(["Der Mann sagt „Hallo“.", 'Der Mann sagt "Hallo".'], "de") == ['der mann sagt " hallo " .'] * 2
    wmt = metrics["bleu_wmt_lc_norm_tok"]
    # Lowercased counts plus the 4th sentence fully matching (7 tokens on both sides now): 25/29, 18/25, 13/21,
    # 9/17; lengths 29 vs 29.
    assert wmt["score"] == pytest.approx(100.0 * (25 / 29 * 18 / 25 * 13 / 21 * 9 / 17) ** 0.25, rel=1e-9)
    assert wmt["score"] == 67.158043927
    assert wmt["signature"] == (
        "lc.norm.tok:sacremoses-0.2.0|lang:de|nrefs:1|case:mixed|eff:no|tok:none|smooth:exp|version:2.6.0"
    )
    assert "bleu_wmt_lc_norm_tok" not in translation_metrics(HYPOTHESES, REFERENCES)
    with pytest.raises(ValueError, match=r"wmt_convention=True needs target_language"):
        translation_metrics(HYPOTHESES, REFERENCES, wmt_convention=True)


def test_nfd_inputs_give_the_same_scores(metrics):
    nfd = lambda texts: [unicodedata.normalize("NFD", t) for t in texts]  # noqa: E731
    assert nfd(HYPOTHESES) != HYPOTHESES
    assert translation_metrics(nfd(HYPOTHESES), REFERENCES, True, "de") == metrics
    assert translation_metrics(HYPOTHESES, [nfd(REFERENCES[0])], True, "de") == metrics


def test_same_numbers_as_the_sacrebleu_command_line(tmp_path, metrics):
    hypotheses, references = tmp_path / "hyp.de", tmp_path / "ref.de"
    hypotheses.write_text("\n".join(HYPOTHESES) + "\n", encoding="utf-8")
    references.write_text("\n".join(REFERENCES[0]) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "sacrebleu", str(references), "-i", str(hypotheses), "-w", "10", "-f", "text"]
    printed = subprocess.run(command + ["-m", "bleu", "chrf", "ter"], capture_output=True, text=True, check=True)
    lowercased = subprocess.run(command + ["-m", "bleu", "-lc"], capture_output=True, text=True, check=True)
    # Lines "BLEU|nrefs:1|...|version:2.6.0 = 42.8624114263 72.4/52.0/...": signature and score.
    cli = []
    for line in (printed.stdout + lowercased.stdout).splitlines():
        name_signature, numbers = line.split(" = ", 1)
        cli.append((name_signature.strip().split("|", 1)[1], float(numbers.split()[0])))
    ours = [(metrics[name]["signature"], metrics[name]["score"]) for name in ("bleu", "chrf", "ter", "bleu_lc")]
    assert cli == ours
    assert read_reference_streams([references]) == REFERENCES


def test_two_reference_streams():
    second = [
        "Ein Mann fährt mit dem Fahrrad über die Straße.",
        "Hunde spielen.",
        "Eine Frau liest ein Buch.",
        "Der Mann sagt Hallo.",
    ]
    result = translation_metrics(HYPOTHESES, REFERENCES + [second])
    assert "nrefs:2" in result["bleu"]["signature"]
    assert result["bleu"]["score"] > translation_metrics(HYPOTHESES, REFERENCES)["bleu"]["score"]


def test_layout_errors_show_the_accepted_layouts():
    with pytest.raises(ValueError, match=r"reference stream 0 has 4 entries but there are 1 hypotheses"):
        translation_metrics(["This is cat"], [["This", "is", "a", "cat"]])
    with pytest.raises(ValueError, match=r"token lists where sentences are expected"):
        translation_metrics(["This is cat"], [["This"], ["is"], ["a"], ["cat"]])
    with pytest.raises(ValueError, match=r"flat list of strings.*\[references\]"):
        translation_metrics(["a b", "c d"], ["a b", "c d"])
    with pytest.raises(ValueError, match=r"accepted reference layouts"):
        translation_metrics(["a b"], [[["a", "b"]]])


def test_read_reference_streams(tmp_path):
    first, second = tmp_path / "ref1", tmp_path / "ref2"
    # BOM, CRLF and trailing spaces as the sacreBLEU command line reads them; NFD text comes back NFC.
    first.write_bytes("\ufeffel nin\u0303o  \r\nla casa\n".encode("utf-8"))
    second.write_text("uno\ndos\n", encoding="utf-8")
    assert read_reference_streams([first, second]) == [["el niño", "la casa"], ["uno", "dos"]]
    assert read_reference_streams(str(second), expected_lines=2) == [["uno", "dos"]]
    short = tmp_path / "short"
    short.write_text("uno\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{short}: 1 lines, but {first} has 2;"):
        read_reference_streams([first, short])
    with pytest.raises(DataError, match=rf"{short}: 1 lines, but there are 3 hypotheses"):
        read_reference_streams([short], expected_lines=3)
    bad = tmp_path / "bad"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(DataError, match=rf"{bad}:2: not valid UTF-8"):
        read_reference_streams([bad])


def test_multi30k_references_scored_as_they_stand():
    data = shared_data_dir("multi30k/task1/raw/test_2016_flickr.de")
    if data is None:
        pytest.skip("shared data absent: multi30k/task1/raw/test_2016_flickr.de")
    streams = read_reference_streams([f"{data}/multi30k/task1/raw/test_2016_flickr.de"], expected_lines=1000)
    lowercased = [line.lower() for line in streams[0]]  # what a model trained on case-folded text writes at best
    result = translation_metrics(lowercased, streams, wmt_convention=True, target_language="de")
    # Only the case-insensitive scores forgive the lost capitals of German nouns (values from sacreBLEU 2.6.0).
    assert (result["bleu_lc"]["score"], result["bleu_wmt_lc_norm_tok"]["score"], result["ter"]["score"]) == (
        100.0,
        100.0,
        0.0,
    )
    assert (result["bleu"]["score"], result["chrf"]["score"]) == (23.2723629801, 77.3860778699)
