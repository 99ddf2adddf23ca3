"""Atomic writes: the final path holds either the old complete file or the new complete file."""

import os

import pytest

from pipelines.atomic import atomic_path, write_atomically


def test_write_atomically_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    write_atomically(str(path), "old")
    write_atomically(str(path), b"new")
    assert path.read_text() == "new"
    assert os.listdir(path.parent) == ["metrics.json"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_failed_write_keeps_the_previous_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "ckpt.weights.h5"
    path.write_text("previous")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(str(path)) as tmp:
            assert tmp.endswith("ckpt.weights.h5") and os.path.dirname(tmp) == str(tmp_path)
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "previous"
    assert os.listdir(tmp_path) == ["ckpt.weights.h5"]
