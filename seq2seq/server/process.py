"""Run `seq2seq serve` as a child process (for the load benchmark and the tests): start, wait until healthy, stop.

Example:
    with ServerProcess(["tiny=/tmp/export", "--no-batching"]) as server:
        requests to f"{server.url}/v1/models/tiny:predict"
    server.returncode  # 0 after a graceful SIGTERM
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bound to port 0 and released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m seq2seq.cli --quiet serve ARGS --host 127.0.0.1 --port PORT` in a child process.

    Args:
      serve_args: the models and options after `serve`.
      port: TCP port (default: a free one).
      startup_seconds: how long to wait for GET /healthz to answer 200 (default 180: loading TensorFlow and the
        exports on a busy 2-core machine).
      log_path: file for the child's stdout+stderr (default: discarded).

    Raises (on enter):
      RuntimeError: the child exited, or was not healthy in time (its log is in the message when kept).
    """

    def __init__(
        self,
        serve_args: list[str],
        port: int | None = None,
        startup_seconds: float = 180.0,
        log_path: str | None = None,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable,
            "-m",
            "seq2seq.cli",
            "--quiet",
            "serve",
            *serve_args,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.startup_seconds = startup_seconds
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.returncode: int | None = None

    def _log(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-3000:]

    def __enter__(self) -> "ServerProcess":
        out = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if self.log_path:
                out.close()
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} at start: {self._log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200 and json.load(response)["status"] == "ok":
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server not healthy after {self.startup_seconds} s: {self._log()}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait up to `timeout` seconds (then SIGKILL); returns the exit status."""
        if self.process is not None and self.returncode is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.returncode = self.process.wait()
        return self.returncode

    def __exit__(self, *exc) -> None:
        self.stop()
