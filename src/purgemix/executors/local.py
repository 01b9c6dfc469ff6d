"""In-process (``workers=1``) or multiprocessing execution with a bounded task window."""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from .malloc import keep_freed_memory

_WARM: dict[int, Any] = {}  # pools started ahead of their executor (``warm_up``), by size


def _new_pool(workers: int):
    # spawn, not fork: workers may later load torch/llama.cpp, which do not survive fork.
    return mp.get_context("spawn").Pool(workers, initializer=keep_freed_memory)


def warm_up(workers: int) -> None:
    """Start ``workers`` worker processes now for the next ``LocalExecutor`` of that size. A command calls this
    first thing, so the workers start their interpreters and import while the command loads its own modules
    and reads its options (0.1-0.2 s sooner at work). An unused pool is terminated at exit."""
    if workers > 1 and workers not in _WARM:
        _WARM[workers] = _new_pool(workers)


class LocalExecutor:
    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool = None
        keep_freed_memory()  # the driver runs the fits, the ledger and, with one worker, every shard

    def _get_pool(self):
        if self._pool is None:
            self._pool = _WARM.pop(self.workers, None) or _new_pool(self.workers)
        return self._pool

    def start(self) -> None:
        """Start the worker processes now (they start on first use otherwise)."""
        if self.workers > 1:
            self._get_pool()

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

    def map_shards(self, fn: Callable[..., Any], args: list[tuple[tuple, dict]], ordered: bool = True
                   ) -> Iterator[Any]:
        if ordered or self.workers == 1:
            return self.imap(fn, args)
        return self._imap_unordered(fn, args)

    def _imap_unordered(self, fn: Callable[..., Any], args: Iterable[tuple[tuple, dict]]) -> Iterator[Any]:
        """Results in completion order, with the same bounded window as ``imap``: a new task is submitted
        as soon as any task finishes, not when the oldest one does."""
        import queue

        pool = self._get_pool()
        done: queue.SimpleQueue = queue.SimpleQueue()
        todo = iter(args)
        in_flight = 0

        def submit() -> bool:
            nonlocal in_flight
            nxt = next(todo, None)
            if nxt is None:
                return False
            a, kw = nxt
            pool.apply_async(fn, a, kw, callback=lambda r: done.put((True, r)),
                             error_callback=lambda e: done.put((False, e)))
            in_flight += 1
            return True

        while in_flight < self.workers * 2 and submit():
            pass
        while in_flight:
            ok, value = done.get()
            in_flight -= 1
            if not ok:
                raise value
            submit()
            yield value

    def close(self) -> None:
        """Stop the workers. Every result the caller used has been collected by now (and on an error, work
        still queued is no longer wanted; shards are written atomically), so the workers are terminated
        instead of being asked to finish and then waited for as each tears its interpreter down."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            stop_pool(pool)


TERMINATE_TIMEOUT = 10.0  # seconds a pool gets to stop before its workers are killed


def stop_pool(pool: Any, timeout: float = TERMINATE_TIMEOUT) -> None:
    """``pool.terminate()`` and ``join()``, with a watchdog: CPython's ``Pool.terminate`` can block forever (its
    task-handler thread stuck on the task queue; seen once in ~45 runs with two workers, at 0% CPU). When it
    has not returned in ``timeout`` seconds the workers are killed, which frees it; a thread that is still
    stuck is a daemon and does not hold up the exit. The run's results are all written by then (shards are
    written atomically), so nothing is lost."""
    import threading

    procs = list(getattr(pool, "_pool", None) or [])

    def stop() -> None:
        pool.terminate()
        pool.join()

    t = threading.Thread(target=stop, name="purgemix-pool-stop", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        for p in procs:
            if p.is_alive():
                p.kill()
        t.join(timeout)
