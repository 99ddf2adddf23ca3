"""Input lines for ``seq2seq translate``: read as bytes, decoded line by line, bad lines reported by number.

Reading ``sys.stdin`` as text makes one invalid UTF-8 byte abort the whole run (with Python's strict
decoder), or pass lone surrogates on that TensorFlow then refuses ("Error converting unicode string"),
naming neither the line nor the problem. :func:`read_lines` reads ``sys.stdin.buffer`` instead, decodes
each line on its own and returns every line with either its text or its error, so the good lines are
still translated.

Exit-status rule (see :func:`exit_status`): 0 when every line was translated; 1 when some lines were
rejected (each named on stderr by line number; the others are translated, and stdout keeps one line per
input line, empty for a rejected one, so outputs stay aligned with inputs); 2 stays the status of errors
that stop the command before any line is translated (bad options, model directory, config).
"""

from __future__ import annotations

from typing import BinaryIO, Iterator, NamedTuple, Sequence

from pipelines.data_files import DEFAULT_MAX_LINE_BYTES

_BOM = "\ufeff"


class InputLine(NamedTuple):
    """One input line: ``number`` (1-based), and either ``text`` (decoded, no line ending) or ``error``."""

    number: int
    text: str | None
    error: str | None


def _skip_rest_of_line(stream: BinaryIO, chunk_bytes: int) -> int:
    """Read and drop bytes up to and including the next ``\\n``; returns how many were read."""
    skipped = 0
    while True:
        chunk = stream.readline(chunk_bytes)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def iter_lines(
    stream: BinaryIO, name: str = "stdin", max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[InputLine]:
    """Yields an :class:`InputLine` per line of the binary ``stream``, never raising for bad content.

    Lines end at ``\\n``; a trailing ``\\r`` (CRLF) and a UTF-8 BOM on line 1 are removed. A line that is
    not valid UTF-8 gets ``error`` ``"<name>:<line>: not valid UTF-8 (<reason> at byte <i> of the line,
    byte <j> of the input); line skipped"`` (0-based offsets). A line longer than ``max_line_bytes`` is
    skipped without being held in memory, with ``error`` ``"<name>:<line>: longer than N bytes; line
    skipped"``.

    Args:
      stream: binary stream (``sys.stdin.buffer``, an open file in ``"rb"`` mode, ``io.BytesIO``).
      name: name used in messages (default ``"stdin"``).
      max_line_bytes: longest accepted line in bytes, line ending not counted (default 1 MiB).
    """
    number = offset = 0
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        start = offset
        offset += len(raw)
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            offset += _skip_rest_of_line(stream, max_line_bytes + 1)
            yield InputLine(number, None, f"{name}:{number}: longer than {max_line_bytes} bytes; line skipped")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield InputLine(
                number,
                None,
                f"{name}:{number}: not valid UTF-8 ({error.reason} at byte {error.start} "
                f"of the line, byte {start + error.start} of the input); line skipped",
            )
            continue
        text = text.removesuffix("\n").removesuffix("\r")
        yield InputLine(number, text.removeprefix(_BOM) if number == 1 else text, None)


def read_lines(stream: BinaryIO, name: str = "stdin", max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[InputLine]:
    """All lines of ``stream`` as :func:`iter_lines` gives them (a list, in input order)."""
    return list(iter_lines(stream, name, max_line_bytes))


def exit_status(lines: Sequence[InputLine]) -> int:
    """0 when no line was rejected, 1 when some were (the rule in this module's docstring)."""
    return 1 if any(line.error is not None for line in lines) else 0
