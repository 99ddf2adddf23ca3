"""Atomic writes: the final path holds either the old complete file or the new complete file."""

import os
import subprocess
import sys
import time

import pytest

from pipelines.atomic import atomic_path, remove_stale_temps, write_atomically


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


def dead_pid():
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporary_name_carries_the_pid_and_keeps_the_ending(tmp_path):
    with atomic_path(str(tmp_path / "ckpt-5.weights.h5")) as tmp:
        name = os.path.basename(tmp)
        assert name.startswith(f".tmp-{os.getpid()}-") and name.endswith("-ckpt-5.weights.h5")
        assert remove_stale_temps(str(tmp_path)) == []  # our own live temporary is kept
        with open(tmp, "w") as f:
            f.write("x")
    assert os.listdir(tmp_path) == ["ckpt-5.weights.h5"]


def test_remove_stale_temps_removes_dead_writers_files_and_folders_only(tmp_path):
    dead = dead_pid()
    live = os.getppid()
    stale_file = tmp_path / f".tmp-{dead}-abc123-ckpt-1.weights.h5"
    stale_export = tmp_path / f".tmp-export-{dead}-export"
    live_file = tmp_path / f".tmp-{live}-xyz789-model.keras"
    old_legacy = tmp_path / ".tmp-42rcspehckpt-2.weights.h5"  # mkstemp name without a pid, 2 hours old
    new_legacy = tmp_path / ".tmp-k3j4h5g6metrics.json"
    for path in (stale_file, live_file, old_legacy, new_legacy, tmp_path / "ckpt-1.weights.h5"):
        path.write_bytes(b"12345")
    (stale_export / "variables").mkdir(parents=True)
    (stale_export / "saved_model.pb").write_bytes(b"pb")
    os.utime(old_legacy, (time.time() - 7200, time.time() - 7200))
    removed = remove_stale_temps(str(tmp_path))
    assert removed == sorted([str(stale_export), str(stale_file), str(old_legacy)])
    assert sorted(os.listdir(tmp_path)) == sorted([live_file.name, new_legacy.name, "ckpt-1.weights.h5"])
    assert remove_stale_temps(str(tmp_path / "missing")) == []


def test_temporary_of_a_writer_killed_mid_save_is_removed_by_the_next_run(tmp_path):
    writer = """
import sys, time
from pipelines.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    open(tmp, "wb").write(b"half a checkpoint")
    print("writing", flush=True)
    time.sleep(120)
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(
        [sys.executable, "-c", writer, str(tmp_path / "ckpt-9.weights.h5")],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=root),
    )
    assert child.stdout.readline().strip() == "writing"
    (leftover,) = os.listdir(tmp_path)
    assert remove_stale_temps(str(tmp_path)) == []  # the writer is alive: its temporary stays
    child.kill()
    child.wait()
    assert remove_stale_temps(str(tmp_path)) == [str(tmp_path / leftover)]
    assert os.listdir(tmp_path) == []


def test_an_os_error_without_a_file_name_gets_the_destination(tmp_path):
    with pytest.raises(OSError) as caught:
        with atomic_path(str(tmp_path / "metrics.json")):
            raise OSError(28, "No space left on device")
    assert caught.value.filename == str(tmp_path / "metrics.json")
    assert str(caught.value) == f"[Errno 28] No space left on device: '{tmp_path / 'metrics.json'}'"
