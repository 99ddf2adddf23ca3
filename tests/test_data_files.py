"""Special files as data and bounded reads (issue 17, item 2): a FIFO, /dev/zero, a directory, a huge line."""

import contextlib
import gzip
import os
import signal
import tracemalloc

import pytest

from pipelines import captioning, images
from pipelines.data_files import DataError, bounded_lines, numbered_lines, open_regular
from pipelines.translation import DataError as TranslationDataError
from pipelines.translation import read_anki, read_parallel
from seq2seq.config import ConfigError, config_from_dict

pytestmark = pytest.mark.reliability


@contextlib.contextmanager
def deadline(seconds: int = 5):
    """Fail (instead of hanging the suite) when the body blocks longer than `seconds`."""

    def expire(signum, frame):
        raise TimeoutError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pairs.txt"
    os.mkfifo(path)
    return path


def test_translation_data_error_is_the_shared_one():
    assert TranslationDataError is DataError and issubclass(DataError, ValueError)


def test_fifo_as_anki_file_is_refused_at_once_naming_path_and_kind(fifo):
    with deadline(), pytest.raises(DataError) as caught:
        list(read_anki(fifo))
    assert str(caught.value) == f"{fifo}: is a FIFO (named pipe), not a regular file; data paths must name files"


def test_dev_zero_and_a_directory_are_refused_naming_their_kind(tmp_path):
    (tmp_path / "target.txt").write_text("a\n")
    with deadline(), pytest.raises(DataError, match=r"^/dev/zero: is a character device, not a regular file"):
        list(read_parallel("/dev/zero", tmp_path / "target.txt"))
    with deadline(), pytest.raises(DataError, match=rf"^{tmp_path}: is a directory, not a regular file"):
        list(read_anki(tmp_path))


def test_fifo_and_directory_in_captioning_readers(fifo, tmp_path):
    with deadline(), pytest.raises(DataError, match="is a FIFO"):
        captioning.read_flickr8k(str(fifo), str(tmp_path))
    with deadline(), pytest.raises(DataError, match="is a FIFO"):
        captioning.read_coco_captions(str(fifo), str(tmp_path))
    table = tmp_path / "captions.csv"
    os.mkfifo(table)
    with deadline(), pytest.raises(DataError, match="is a FIFO"):
        captioning.read_caption_table(str(table))
    (tmp_path / "token.txt").write_text("a.jpg#0\tA dog.\n")
    with deadline(), pytest.raises(DataError, match="is a directory"):
        captioning.read_flickr8k(str(tmp_path / "token.txt"), str(tmp_path), split_file=str(tmp_path))


def test_fifo_image_is_skipped_and_named_never_opened(tmp_path):
    image = tmp_path / "a.jpg"
    os.mkfifo(image)
    with deadline():
        ok, problems = images.check_images([str(image), str(tmp_path)])
    assert ok == []
    assert problems == [
        (str(image), "not a regular file (FIFO (named pipe))"),
        (str(tmp_path), "not a regular file (directory)"),
    ]
    (tmp_path / "token.txt").write_text("a.jpg#0\tA dog.\n")
    with deadline():
        items = captioning.read_flickr8k(str(tmp_path / "token.txt"), str(tmp_path))
    assert dict(items) == {}
    assert items.problems == [(str(image), "not a regular file (FIFO (named pipe))")]


def test_huge_line_is_an_error_naming_file_and_line_with_bounded_memory(tmp_path):
    path = tmp_path / "pairs.txt"
    with open(path, "wb") as f:
        f.write(b"hello\thola\n")
        f.write(b"x" * (64 << 20))  # 64 MiB without a line break
    tracemalloc.start()
    with pytest.raises(DataError) as caught:
        list(read_anki(path, max_line_bytes=1 << 20))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak} bytes while refusing a 64 MiB line"
    assert str(caught.value) == (
        f"{path}:2: line longer than 1048576 bytes (data.max_line_bytes); "
        "is this a text file with one example per line?"
    )


def test_line_limit_counts_bytes_without_the_line_ending(tmp_path):
    path = tmp_path / "pairs.txt.gz"
    path.write_bytes(gzip.compress(b"ab\tcd\r\n" + b"abc\tde\n" + b"abcd\tef"))
    assert [n for n, _ in numbered_lines(path, max_line_bytes=7)] == [1, 2, 3]  # "ab\tcd\r" is 6 bytes
    assert list(read_anki(path, max_line_bytes=7)) == [("ab", "cd"), ("abc", "de"), ("abcd", "ef")]
    with pytest.raises(DataError, match=r"pairs.txt.gz:3: line longer than 6 bytes"):
        list(read_anki(path, max_line_bytes=6))
    with pytest.raises(DataError, match=r"table.jsonl:2: line longer than 30 bytes"):
        (tmp_path / "table.jsonl").write_text('{"image": "a", "caption": "b"}\n{"image": "aa", "caption": "bb"}\n')
        captioning.read_caption_table(str(tmp_path / "table.jsonl"), max_line_bytes=30)
    with open_regular(tmp_path / "table.jsonl") as f, pytest.raises(ValueError, match="must be >= 1"):
        next(bounded_lines(f, "x", 0))


def test_max_line_bytes_config_key():
    assert config_from_dict({"data": {"path": "x"}}).data.max_line_bytes == 1 << 20
    assert config_from_dict({"data": {"path": "x", "max_line_bytes": 4096}}).data.max_line_bytes == 4096
    with pytest.raises(ConfigError, match="data.max_line_bytes: got 0; must be a positive integer"):
        config_from_dict({"data": {"path": "x", "max_line_bytes": 0}})
