"""The collector's worker threads: ``ThreadPoolExecutor``'s submit and shutdown, on daemon threads.

A request can outlive ``--timeout``: socket timeouts bound each read, not a whole answer, so an
endpoint that trickles a byte at a time keeps its worker busy for as long as it likes. The run
itself ends at the deadline (the loop stops waiting and reports what was not read in time), but
``ThreadPoolExecutor`` joins its workers when the interpreter exits, so the process would hang
until the endpoint let go. Daemon workers are abandoned with the run instead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_Work = tuple[Future[Any], Callable[[], Any]]


class DaemonPool:
    def __init__(self, max_workers: int, name: str) -> None:
        self._max_workers = max_workers
        self._name = name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, work: Callable[[], Any]) -> Future[Any]:
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        future: Future[Any] = Future()
        self._work.put((future, work))
        # A worker is started only when none is idle, up to the limit (as ThreadPoolExecutor).
        if not self._idle.acquire(blocking=False) and len(self._threads) < self._max_workers:
            thread = threading.Thread(
                target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return future

    def shutdown(self) -> None:
        """Cancel what has not started; running work is left to end (or be abandoned) alone."""
        self._closed = True
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._work.put(None)

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, work = item
            if future.set_running_or_notify_cancel():
                try:
                    result = work()
                except BaseException as error:
                    future.set_exception(error)
                else:
                    future.set_result(result)
            self._idle.release()
