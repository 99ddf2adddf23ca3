"""seq2seq.os_errors.describe_os_error: one line with the path and what to do (issue 17, item 3)."""

import os

import h5py
import pytest
import tensorflow as tf

from seq2seq.os_errors import describe_os_error

pytestmark = pytest.mark.reliability


def raised(function):
    try:
        function()
    except Exception as err:  # noqa: BLE001 - the test inspects whatever was raised
        return err
    raise AssertionError("nothing raised")


def test_real_python_errors(tmp_path):
    missing = tmp_path / "missing" / "x.txt"
    assert describe_os_error(raised(lambda: open(missing))) == (
        f"no such file or directory at {missing}: check the path (relative data paths resolve against "
        "data.data_dir or $SEQ2SEQ_DATA_DIR)"
    )
    assert describe_os_error(raised(lambda: open(tmp_path, "w"))) == (
        f"is a directory at {tmp_path}: a file is expected there; remove or rename the folder"
    )
    (tmp_path / "file").write_text("")
    assert describe_os_error(raised(lambda: open(tmp_path / "file" / "metrics.json", "w"))) == (
        f"not a directory at {tmp_path / 'file' / 'metrics.json'}: a part of the path is a file; check the path"
    )


def test_real_full_device_without_a_file_name_uses_the_given_path():
    def write_dev_full():
        with open("/dev/full", "wb") as f:
            f.write(b"x")

    err = raised(write_dev_full)
    assert err.errno == 28 and err.filename is None
    assert describe_os_error(err, path="/runs/a/metrics.json") == (
        "no space left on device at /runs/a/metrics.json: free some space or use a folder on another disk, then "
        "run the command again (files written before are intact)"
    )
    assert describe_os_error(err).startswith("no space left on device (path unknown): ")


def test_real_h5py_error_names_the_file_from_its_message(tmp_path):
    path = tmp_path / "gone" / "best.weights.h5"
    err = raised(lambda: h5py.File(path, "w"))
    assert isinstance(err, OSError) and err.filename is None
    assert describe_os_error(err).startswith(f"no such file or directory at {path}: ")


def test_h5py_full_disk_message_as_seen_on_a_full_tmpfs():
    err = OSError(
        28,
        "Can't synchronously write data (file write failed: time = Wed Dec  2 19:39:56 2026\n, "
        "filename = '/full/ckpt-2.weights.h5', file descriptor = 3, errno = 28, error message = "
        "'No space left on device', buf = 0x55b42e8fc608, total write size = 518344)",
    )
    assert describe_os_error(err).startswith("no space left on device at /full/ckpt-2.weights.h5: free some space")


def test_real_tensorflow_file_errors(tmp_path):
    err = raised(lambda: tf.io.read_file(str(tmp_path / "none.txt")))
    assert isinstance(err, tf.errors.NotFoundError)
    assert describe_os_error(err).startswith(f"no such file or directory at {tmp_path / 'none.txt'}: check the path")
    (tmp_path / "file").write_text("")
    err = raised(lambda: tf.io.write_file(str(tmp_path / "file" / "x.txt"), "a"))
    assert isinstance(err, tf.errors.FailedPreconditionError)
    assert describe_os_error(err) == (
        f"not a directory at {tmp_path / 'file' / 'x.txt'}: a part of the path is a file; check the path"
    )


@pytest.mark.parametrize(
    "error, expected",
    [
        # messages exactly as TensorFlow 2.21 gave them on a read-only tmpfs and on a full 2 MiB tmpfs
        (
            tf.errors.PermissionDeniedError(
                None,
                None,
                "{{function_node __wrapped__WriteFile_device_/job:localhost/"
                "replica:0/task:0/device:CPU:0}} /ro/x.txt; Read-only file system [Op:WriteFile]",
            ),
            "read-only file system at /ro/x.txt: choose a writable folder (e.g. another --model-dir or --output)",
        ),
        (
            tf.errors.PermissionDeniedError(None, None, "/ro/export; Read-only file system"),
            "read-only file system at /ro/export: choose a writable folder (e.g. another --model-dir or --output)",
        ),
        (
            tf.errors.PermissionDeniedError(None, None, "/runs/a/logs; Permission denied"),
            "permission denied at /runs/a/logs: check the owner and permissions of the folder, or choose another one",
        ),
        (
            tf.errors.ResourceExhaustedError(
                None,
                None,
                "{{function_node __wrapped__WriteFile}} /full/big.bin; No space left on device [Op:WriteFile]",
            ),
            "no space left on device at /full/big.bin: free some space or use a folder on another disk, then run the "
            "command again (files written before are intact)",
        ),
        (
            tf.errors.ResourceExhaustedError(
                None, None, "OOM when allocating tensor with shape[64,8000] and type float"
            ),
            "out of memory: OOM when allocating tensor with shape[64,8000] and type float; reduce train.batch_size (or "
            "decode.batch_size), the model size or the sequence lengths",
        ),
        (
            PermissionError(13, "Permission denied", "/runs/a/metrics.json"),
            "permission denied at /runs/a/metrics.json: check the owner and permissions of the folder, or choose another one",
        ),
        (
            OSError(30, "Read-only file system", "/ro/a.tmp", None, "/ro/a"),
            "read-only file system at /ro/a.tmp -> /ro/a: choose a writable folder (e.g. another --model-dir or --output)",
        ),
        (OSError(16, "Device or resource busy", "/mnt/x"), "Device or resource busy at /mnt/x (errno 16)"),
    ],
)
def test_mapping(error, expected):
    assert describe_os_error(error) == expected


def test_not_os_errors_give_none():
    assert describe_os_error(ValueError("bad value")) is None
    assert describe_os_error(tf.errors.InvalidArgumentError(None, None, "shapes differ")) is None
    shapes = tf.errors.InvalidArgumentError(None, None, "Incompatible shapes: [2] vs. [3]; in add")
    assert describe_os_error(shapes) is None
    assert describe_os_error(KeyboardInterrupt()) is None


def test_always_one_line():
    err = OSError(5, "Input/output error\nsecond line", "/a\nb")
    assert "\n" not in describe_os_error(err) and describe_os_error(err).startswith("input/output error at /a b:")
    assert os.strerror(5) == "Input/output error"
