"""seq2seq.text_input: invalid UTF-8 on stdin rejects that line only, named by number and offset (issue 17, item 5)."""

import io
import os
import subprocess
import sys

import pytest

from seq2seq.text_input import InputLine, exit_status, read_lines

pytestmark = pytest.mark.reliability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUT = b"\xef\xbb\xbfHola.\r\n" + b"bad \xff byte\n" + "¿Qué tal?\n".encode() + b"cut \xc3\n" + b"last"


def test_bad_lines_are_reported_by_number_and_offset_and_the_others_kept():
    lines = read_lines(io.BytesIO(INPUT))
    assert lines == [
        InputLine(1, "Hola.", None),
        InputLine(
            2,
            None,
            "stdin:2: not valid UTF-8 (invalid start byte at byte 4 of the line, byte 14 of the input); line skipped",
        ),
        InputLine(3, "¿Qué tal?", None),
        InputLine(
            4,
            None,
            "stdin:4: not valid UTF-8 (invalid continuation byte at byte 4 of the line, byte 37 "
            "of the input); line skipped",
        ),
        InputLine(5, "last", None),
    ]
    assert INPUT[14:15] == b"\xff" and INPUT[37:38] == b"\xc3"
    assert exit_status(lines) == 1
    assert exit_status(read_lines(io.BytesIO(b"a\nb\n"))) == 0
    assert read_lines(io.BytesIO(b"")) == []


def test_an_overlong_line_is_skipped_without_losing_the_next_one(tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(b"short\n" + b"x" * 5000 + b"\nafter\n")
    with open(path, "rb") as stream:
        lines = read_lines(stream, name=str(path), max_line_bytes=100)
    assert lines == [
        InputLine(1, "short", None),
        InputLine(2, None, f"{path}:2: longer than 100 bytes; line skipped"),
        InputLine(3, "after", None),
    ]


def test_reading_real_stdin_bytes_through_a_pipe():
    script = (
        "import sys\nfrom seq2seq.text_input import read_lines, exit_status\n"
        "lines = read_lines(sys.stdin.buffer)\n"
        "for line in lines:\n    print(line.text if line.error is None else '', flush=True)\n"
        "    print(f'error: {line.error}', file=sys.stderr) if line.error else None\n"
        "sys.exit(exit_status(lines))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=INPUT,
        capture_output=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=ROOT, LC_ALL="C"),
    )
    assert done.returncode == 1
    assert done.stdout.decode("utf-8").splitlines() == ["Hola.", "", "¿Qué tal?", "", "last"]
    assert [line.split(" (")[0] for line in done.stderr.decode().splitlines() if line.startswith("error:")] == [
        "error: stdin:2: not valid UTF-8",
        "error: stdin:4: not valid UTF-8",
    ]
