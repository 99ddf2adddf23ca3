"""The Prometheus metrics of one server (own registry: two servers in one process never share counts).

  seq2seq_requests_total{model, signature, code}    counter: answered `:predict` requests by HTTP status
  seq2seq_request_latency_seconds{model, signature} histogram: time from receiving a request to its answer
  seq2seq_batch_size{model, signature}              histogram: rows per signature call (1 with batching off)

Latency percentiles come from the histogram, e.g. `histogram_quantile(0.99, rate(..._bucket[1m]))` in Prometheus.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """Counters and histograms of one app; `exposition()` renders them in the Prometheus text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "seq2seq_requests",
            "Answered :predict requests by HTTP status code",
            ["model", "signature", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "seq2seq_request_latency_seconds",
            "Time from request to answer, seconds",
            ["model", "signature"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "seq2seq_batch_size",
            "Rows per signature call",
            ["model", "signature"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
