"""Mistakes a newcomer makes on the command line: each gets one clear `error:` line and harms nothing."""

import os

import pytest

from pipelines.tokenizers import train_sentencepiece
from pipelines.translation import DataError, PairStats, clean_pairs, read_anki
from seq2seq.cli import main
from seq2seq.serving.export import save_atomically

pytestmark = pytest.mark.reliability


def test_export_refuses_to_replace_a_folder_that_is_not_an_export(tmp_path):
    victim = tmp_path / "thesis"
    victim.mkdir()
    (victim / "thesis.txt").write_text("years of work")
    with pytest.raises(FileExistsError, match="not an earlier SavedModel"):
        save_atomically(object(), str(victim), {})
    assert (victim / "thesis.txt").read_text() == "years of work"


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["translate", "--model-dir", "m", "--beam-size", "0", "x"], "--beam-size: must be a positive integer"),
        (["translate", "--model-dir", "m", "--n-best", "-1", "x"], "--n-best: must be a positive integer"),
        (["translate", "--model-dir", "m", "--length-penalty", "nan", "x"], "must be a finite number >= 0"),
    ],
)
def test_invalid_decoding_flags_are_rejected_by_name(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["translate", "--saved-model", "e", "--n-best", "3", "x"], "need --model-dir"),
        (["translate", "--saved-model", "e", "--beam-size", "3", "x"], "need --model-dir"),
        (["translate", "--model-dir", "m", "--n-best", "4", "--beam-size", "2", "x"], "--n-best (4) must be <="),
        (["translate", "--model-dir", "m", "--n-best", "2", "--strategy", "greedy", "x"], "needs beam search"),
    ],
)
def test_conflicting_flags_name_both(argv, fragment, capsys):
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_blank_lines_in_an_anki_file_are_dropped_and_counted(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Hello.\tHola.\n\n  \nBye.\tAdiós.\n\n", encoding="utf-8")
    stats = PairStats()
    pairs = list(clean_pairs(read_anki(str(path), stats=stats), stats))
    assert pairs == [("Hello.", "Hola."), ("Bye.", "Adiós.")]
    assert stats.dropped_empty == 3 and stats.dropped_bad_line == 0


def test_reader_error_inside_sentencepiece_training_keeps_its_file_and_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"Sentence {i}.\tFrase {i}.\n" for i in range(50)) + "no tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs\.tsv:51: no TAB"):
        train_sentencepiece((s for s, _ in read_anki(str(path))), str(tmp_path), "source", 300)


def test_empty_training_data_is_named(tmp_path):
    with pytest.raises(ValueError, match="no training sentences for the 'source' tokenizer"):
        train_sentencepiece(iter([]), str(tmp_path), "source", 300)
    assert not os.path.exists(tmp_path / "source.model")


def test_captioning_with_no_readable_images_stops_before_writing_anything(tmp_path, capsys):
    captions = tmp_path / "captions.tsv"
    captions.write_text("a.jpg#0\ta dog runs .\n", encoding="utf-8")
    split = tmp_path / "train.txt"
    split.write_text("a.jpg\n", encoding="utf-8")
    config = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "captioning", "flickr8k_scratch.yaml"
    )
    model_dir = tmp_path / "model"
    code = main(
        [
            "train",
            config,
            "--model-dir",
            str(model_dir),
            "--set",
            f"data.data_dir={tmp_path}",
            "--set",
            f"data.captions_file={captions}",
            "--set",
            f"data.image_dir={tmp_path / 'nowhere'}",
            "--set",
            f"data.train_split_file={split}",
        ]
    )
    assert code == 2
    assert "no training image has both a readable file and a caption" in capsys.readouterr().err
    assert not model_dir.exists()
