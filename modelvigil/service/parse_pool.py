"""Big `/model` bodies are parsed in a process of their own.

orjson's parse and the list-to-array conversion hold the GIL from start to end (a 5 MB body: about
60 and 25 ms here), so in a worker thread they still stall the event loop and every other caller,
/health included. In another process they stall nothing here: the bytes go out over a pipe and
the array comes back (unpickling an array is a copy).

Workers start with the first big call (about half a second, once), not with the service: most
services never see one. A worker that dies (killed, out of memory) breaks the pool: the pool is
replaced and the call that met it is parsed in a thread instead, so one lost worker costs one
slower call, not an outage.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from modelvigil.service.call_body import call_rows

log = logging.getLogger(__name__)
ORPHAN_CHECK_S = 1.0


def _exit_with_parent(parent: int) -> None:
    """In each worker: exit once the service that started it is gone. A service killed outright
    (SIGKILL, out of memory) never shuts its pool down, and its workers would wait forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


class ParsePool:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"parse workers must be at least 1, got {workers}")
        self.workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the service has threads (scorer, thread pool) a fork would copy
                # mid-flight, locks included.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
                )
            return self._pool

    async def rows(
        self, raw: bytes, access_key_param: str | None, served_keys: tuple[str, ...]
    ) -> tuple[np.ndarray, str]:
        """`call_rows` in a worker process, awaited: no thread of this process waits on it."""
        pool = self._current()
        try:
            return await asyncio.wrap_future(pool.submit(call_rows, raw, access_key_param, served_keys))
        except BrokenProcessPool:
            log.warning("a body-parsing worker died; starting a new one (this call is parsed here)")
            self._replace(pool)
            return await asyncio.to_thread(call_rows, raw, access_key_param, served_keys)

    def worker_pids(self) -> list[int]:
        pool = self._pool
        return [p.pid for p in (pool._processes or {}).values()] if pool is not None else []

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
