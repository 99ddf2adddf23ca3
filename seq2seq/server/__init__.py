"""`seq2seq serve`: a TensorFlow-Serving-compatible REST server for exports, with dynamic batching and a web page.

Modules, one job each:
  `served_model`  — load an export, tell its task, describe its signatures, run a signature on a list of inputs;
  `request_body`  — parse and check a `:predict` body (TF Serving's row and columnar formats) against the limits;
  `batching`      — coalesce concurrent requests into one signature call and route the rows back;
  `metrics`       — the Prometheus counters and histograms of one server;
  `app`           — the FastAPI application (REST routes, /healthz, /metrics, the page in `static/`);
  `cli`           — the `serve` subcommand (argument parsing, uvicorn, graceful SIGTERM).
"""
