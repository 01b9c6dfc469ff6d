"""Ray execution: Ray Data for shard-parallel stages, Ray tasks for the streaming ingest.

Connects to ``RAY_ADDRESS`` when set (a cluster), else starts a local Ray with ``workers`` CPUs.
Results come back in submission order (Ray Data's ``preserve_order``), so outputs are identical
to the local executor's.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator


def _call(row: dict[str, Any]) -> dict[str, Any]:
    from ray import cloudpickle  # ray ships its own; a plain `ray[data]` install has no cloudpickle package

    fn, a, kw = cloudpickle.loads(row["task"])
    return {"result": cloudpickle.dumps(fn(*a, **kw))}


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int = 1):
        try:
            import ray
        except ImportError:
            raise RuntimeError("the ray executor needs Ray: pip install 'purgemix[ray]'") from None
        self.workers = max(1, int(workers))
        self._ray = ray
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False,
                                      "include_dashboard": False}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=self.workers, **kwargs)
            self._started = True
        else:
            self._started = False
        self._remote = ray.remote(lambda fn, a, kw: fn(*a, **kw))

    def start(self) -> None:
        """Nothing to do: Ray starts its workers in ``__init__``."""

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple[tuple, dict]]) -> Iterator[Any]:
        ray = self._ray
        window: deque = deque()
        limit = self.workers * 2
        fn_ref = ray.put(fn)
        for a, kw in args:
            window.append(self._remote.remote(fn_ref, a, kw))
            if len(window) >= limit:
                yield ray.get(window.popleft())
        while window:
            yield ray.get(window.popleft())

    def map_shards(self, fn: Callable[..., Any], args: list[tuple[tuple, dict]], ordered: bool = True
                   ) -> Iterator[Any]:
        if not args:
            return iter(())
        import ray.data
        from ray import cloudpickle

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = ordered
        ctx.enable_progress_bars = False
        items = [{"task": cloudpickle.dumps((fn, a, kw))} for a, kw in args]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        try:  # Ray >= 2.51 names the pool size through `compute`
            ds = ds.map(_call, compute=ray.data.TaskPoolStrategy(size=self.workers))
        except (AttributeError, TypeError):
            ds = ds.map(_call, concurrency=self.workers)
        return (cloudpickle.loads(row["result"]) for row in ds.iter_rows())

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
