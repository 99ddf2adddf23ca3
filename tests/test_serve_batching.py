"""seq2seq.server.batching.Batcher with a stand-in model (no TensorFlow): coalescing, routing, errors, draining."""

import asyncio
import threading

import pytest

from seq2seq.server.batching import Batcher
from seq2seq.server.request_body import RequestError


class Recorder:
    """A stand-in `run`: upper-cases strings and records the size of every call; "boom" fails the call."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, values):
        with self.lock:
            self.calls.append(list(values))
        if "boom" in values:
            raise RuntimeError("boom in batch")
        return [v.upper() for v in values]


async def _gather(batcher, requests, checks=None):
    batcher.start()
    try:
        return await asyncio.gather(
            *[batcher.submit(r, (checks or {}).get(i)) for i, r in enumerate(requests)], return_exceptions=True
        )
    finally:
        await batcher.close()


def test_concurrent_requests_coalesce_and_rows_route_back():
    run, sizes = Recorder(), []
    batcher = Batcher(run, max_batch_size=4, max_wait_ms=1000, on_batch=sizes.append)
    requests = [[f"a{i}"] for i in range(6)] + [["b0", "b1"]]
    results = asyncio.run(_gather(batcher, requests))
    assert results == [[f"A{i}"] for i in range(6)] + [["B0", "B1"]]
    # 4 single rows fill the first batch at once; the rest (2 rows + the 2-row request) fill the second.
    assert run.calls == [["a0", "a1", "a2", "a3"], ["a4", "a5", "b0", "b1"]]
    assert sizes == [4, 4]


def test_request_that_does_not_fit_opens_the_next_batch_and_large_request_runs_alone():
    run = Recorder()
    batcher = Batcher(run, max_batch_size=3, max_wait_ms=1000)
    results = asyncio.run(_gather(batcher, [["x"], ["y", "z", "w"], ["p", "q", "r", "s", "t"]]))
    assert results == [["X"], ["Y", "Z", "W"], ["P", "Q", "R", "S", "T"]]
    # the drain at close() ends the wait of a batch that cannot fill
    assert run.calls == [["x"], ["y", "z", "w"], ["p", "q", "r", "s", "t"]]


def test_failed_check_and_failing_request_do_not_fail_the_others():
    run = Recorder()
    batcher = Batcher(run, max_batch_size=8, max_wait_ms=1000)
    bad_check = {1: lambda values: RequestError(400, "instances[0]: not an image")}
    results = asyncio.run(_gather(batcher, [["a"], ["b"], ["boom"], ["c"]], bad_check))
    assert results[0] == ["A"] and results[3] == ["C"]
    assert isinstance(results[1], RequestError) and results[1].status == 400
    assert isinstance(results[2], RuntimeError) and str(results[2]) == "boom in batch"
    # one call with the three checked requests, then each of them alone to find the failing one
    assert run.calls == [["a", "boom", "c"], ["a"], ["boom"], ["c"]]


def test_without_batching_every_request_is_one_call():
    run, sizes = Recorder(), []
    batcher = Batcher(run, max_batch_size=8, max_wait_ms=1000, batching=False, threads=2, on_batch=sizes.append)
    results = asyncio.run(_gather(batcher, [["a"], ["b", "c"], ["d"]]))
    assert results == [["A"], ["B", "C"], ["D"]]
    assert sorted(map(tuple, run.calls)) == [("a",), ("b", "c"), ("d",)] and sorted(sizes) == [1, 1, 2]


def test_submit_after_close_is_503_and_bad_settings_raise():
    async def scenario():
        batcher = Batcher(Recorder(), max_batch_size=2, max_wait_ms=0)
        batcher.start()
        assert await batcher.submit(["a"]) == ["A"]
        await batcher.close()
        with pytest.raises(RequestError) as err:
            await batcher.submit(["b"])
        return err.value

    assert asyncio.run(scenario()).status == 503
    with pytest.raises(ValueError, match="max_batch_size must be >= 1"):
        Batcher(Recorder(), max_batch_size=0)
