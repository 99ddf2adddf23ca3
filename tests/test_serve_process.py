"""`seq2seq serve` as a real process: HTTP limits over a socket, and SIGTERM letting in-flight requests finish."""

import threading
import time

import httpx
import pytest
import tensorflow as tf
from test_serve_api import alone

from seq2seq.cli import main
from seq2seq.server.process import ServerProcess


def test_bad_spec_and_missing_export_exit_2(tmp_path, capsys):
    assert main(["serve", "a=x", "a=y"]) == 2
    assert "model names must differ" in capsys.readouterr().err
    assert main(["serve", f"m={tmp_path}"]) == 2
    assert "is not a SavedModel directory" in capsys.readouterr().err


def test_sigterm_finishes_in_flight_requests_then_exits_0(translation_export, tmp_path):
    """A batch waits 3 s to fill; SIGTERM arrives meanwhile: the request is still answered, then exit 0."""
    answers = []
    server = ServerProcess(
        [f"tiny={translation_export}", "--max-wait-ms", "3000", "--max-body-bytes", "1000000"],
        log_path=str(tmp_path / "server.log"),
    )
    with server:
        big = httpx.post(
            f"{server.url}/v1/models/tiny:predict",
            content=b'{"instances": ["' + b"a" * 20_000_000 + b'"]}',
            headers={"content-type": "application/json"},
            timeout=60,
        )
        assert big.status_code == 413
        assert big.json() == {"error": "request body over the limit of 1000000 bytes (--max-body-bytes)"}
        assert httpx.post(f"{server.url}/v1/models/tiny:predict", content=b"{oops", timeout=60).status_code == 400

        def request():
            answers.append(
                httpx.post(
                    f"{server.url}/v1/models/tiny:predict", json={"instances": ["el gato come pan ."]}, timeout=60
                )
            )

        thread = threading.Thread(target=request)
        thread.start()
        time.sleep(1.0)  # the request is waiting in its batch
        started = time.monotonic()
        assert server.stop() == 0
        thread.join(60)
    assert time.monotonic() - started >= 1.0  # it waited for the batch instead of dropping it
    assert [a.status_code for a in answers] == [200]
    expected = alone(tf.saved_model.load(translation_export), "serving_default", "text", "el gato come pan .")
    assert answers[0].json()["predictions"][0]["translation"] == expected["translation"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=5)
