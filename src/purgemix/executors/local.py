"""In-process (``workers=1``) or multiprocessing execution with a bounded task window."""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from typing import Any, Callable, Iterable, Iterator


class LocalExecutor:
    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            # spawn, not fork: workers may later load torch/llama.cpp, which do not survive fork.
            self._pool = mp.get_context("spawn").Pool(self.workers)
        return self._pool

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple[tuple, dict]]) -> Iterator[Any]:
        if self.workers == 1:
            for a, kw in args:
                yield fn(*a, **kw)
            return
        pool = self._get_pool()
        window: deque = deque()
        limit = self.workers * 2
        for a, kw in args:
            window.append(pool.apply_async(fn, a, kw))
            if len(window) >= limit:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()

    def map_shards(self, fn: Callable[..., Any], args: list[tuple[tuple, dict]]) -> Iterator[Any]:
        return self.imap(fn, args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
