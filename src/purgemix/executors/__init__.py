"""Executors decide where work runs; stages never know which one runs them.

Both executors expose the same two operations and return results in submission order, so the
driver's output is byte-identical whichever runs it:

``imap(fn, args)``        a stream of tasks with a bounded number in flight (memory stays flat).
``map_shards(fn, args, ordered=True)``  a known list of shard tasks. ``ordered=False`` yields each result
                          as it completes: for callers that only wait for the tasks (their results are on
                          disk), so one slow shard at the head does not hold back the tasks behind it.
"""

from __future__ import annotations

from .local import LocalExecutor

EXECUTORS = {"local": LocalExecutor}


def make_executor(name: str = "local", workers: int = 1):
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(workers)
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor '{name}'; use one of: local, ray")
    return EXECUTORS[name](workers)


__all__ = ["LocalExecutor", "make_executor"]
