"""Every `python` code block of docs/sequence_modes.md runs as written (each in a fresh namespace)."""

import os
import re

import pytest

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "sequence_modes.md")


def code_blocks():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_doc_has_one_example_per_mode():
    assert len(code_blocks()) == 4


@pytest.mark.parametrize(
    "index", range(4), ids=["forecasting", "sequence_to_vector", "vector_to_sequence", "encoder_decoder"]
)
def test_sequence_mode_example_runs(index):
    exec(compile(code_blocks()[index], f"{DOC}:block{index + 1}", "exec"), {"__name__": "__doc_example__"})
