"""Dynamic batching: concurrent requests to one signature are coalesced into one call, the rows routed back.

The scheme of TensorFlow Serving's batching (`max_batch_size`, `batch_timeout_micros`;
https://github.com/tensorflow/serving/blob/master/tensorflow_serving/batching/README.md): the first waiting
request opens a batch; requests arriving within `max_wait_ms` join it while the rows fit in `max_batch_size`;
then the batch runs (in a worker thread, so the event loop keeps accepting requests) while the next one fills.
A request larger than `max_batch_size` runs as a batch of its own. With batching off every request is one call,
run in a pool of threads.

A request whose check fails (e.g. bytes that are no image) is answered with its own error and left out of the
batch; if a batch call still fails, its requests are run one by one, so one bad request never fails the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from typing import Callable, Sequence

from seq2seq.server.request_body import RequestError


@dataclasses.dataclass
class _Pending:
    values: list
    check: Callable[[list], Exception | None] | None
    future: asyncio.Future


class Batcher:
    """Runs `run(values) -> rows` for requests submitted concurrently from one event loop.

    Args:
      run: called in a worker thread with the concatenated values of a batch (list, len >= 1); returns one
        result per value, in order.
      max_batch_size: rows per call (>= 1); used when `batching` is on.
      max_wait_ms: how long the first request of a batch waits for others, in milliseconds (>= 0).
      batching: False = one call per request, `threads` calls at a time.
      threads: worker threads when batching is off (with batching, one: batches run one after another).
      on_batch: optional callback with the rows of every call (for the batch-size histogram).
    """

    def __init__(
        self,
        run: Callable[[list], list],
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        batching: bool = True,
        threads: int = 2,
        on_batch: Callable[[int], None] | None = None,
    ):
        if max_batch_size < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch_size must be >= 1 and max_wait_ms >= 0, got {max_batch_size}, {max_wait_ms}")
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.batching = batching
        self._on_batch = on_batch
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1 if batching else threads, thread_name_prefix="seq2seq-batch"
        )
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._closed = False

    def start(self) -> None:
        """Start the batching task on the running event loop (call from it, e.g. in the app's lifespan)."""
        if self.batching:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        """Finish every request submitted so far, then stop; later `submit`s get a 503 RequestError."""
        self._closed = True
        if self._worker is not None:
            await self._queue.put(None)
            await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, values: Sequence, check: Callable[[list], Exception | None] | None = None) -> list:
        """The results for `values` (one per value), computed in a batch with other requests.

        Args:
          values: the request's inputs (len >= 1).
          check: optional; called in the worker thread with `values` before the batch runs; an Exception it
            returns is raised here and the request is left out of the batch.

        Raises:
          RequestError(503): the batcher is closing.
          whatever `check` returns or `run` raises for this request.
        """
        if self._closed:
            raise RequestError(503, "the server is shutting down")
        loop = asyncio.get_running_loop()
        pending = _Pending(list(values), check, loop.create_future())
        if not self.batching:
            (result,) = await loop.run_in_executor(self._executor, self._execute, [pending])
            return self._unwrap(result)
        await self._queue.put(pending)
        return self._unwrap(await pending.future)

    @staticmethod
    def _unwrap(result):
        if isinstance(result, BaseException):
            raise result
        return result

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        carry, stopping = None, False
        while not stopping or carry is not None:
            first = carry if carry is not None else await self._queue.get()
            carry = None
            if first is None:
                break
            batch, rows = [first], len(first.values)
            deadline = loop.time() + self.max_wait
            while rows < self.max_batch_size and not stopping:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), timeout)
                    except TimeoutError:
                        break
                if item is None:
                    stopping = True
                elif rows + len(item.values) > self.max_batch_size:
                    carry = item
                    break
                else:
                    batch.append(item)
                    rows += len(item.values)
            results = await loop.run_in_executor(self._executor, self._execute, batch)
            for pending, result in zip(batch, results):
                if not pending.future.done():  # done = cancelled (the client went away)
                    pending.future.set_result(result)

    def _execute(self, batch: list[_Pending]) -> list:
        """In a worker thread: check each request, run the good ones as one call; one result (rows or an
        Exception) per request.
        """
        results: list = [None] * len(batch)
        good = []
        for i, pending in enumerate(batch):
            problem = pending.check(pending.values) if pending.check else None
            if problem is not None:
                results[i] = problem
            else:
                good.append(i)
        if not good:
            return results
        values = [v for i in good for v in batch[i].values]
        try:
            rows = self._run(values)
            if self._on_batch:
                self._on_batch(len(values))
        except Exception as err:  # noqa: BLE001  (routed to the request(s) that caused it)
            if len(good) == 1:
                results[good[0]] = err
                return results
            for i in good:  # find the request that fails; the others still get their answers
                results[i] = self._execute([batch[i]])[0]
            return results
        start = 0
        for i in good:
            results[i] = rows[start : start + len(batch[i].values)]
            start += len(batch[i].values)
        return results
