"""One run per run directory: an advisory ``flock`` on ``RUN/.lock``.

Two runs on one folder would clear and rewrite each other's stage shards (a run with other options then
finished with the first one's records, with a balanced ledger); the lock makes the second fail before it
touches anything. The kernel releases an ``flock`` when its process dies, so a killed run never leaves a
stale lock. The file holds the holder's pid and start time, for the message.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class RunDirBusy(RuntimeError):
    """Another run holds the run directory: one clear line naming it and what to do."""


class RunLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            finally:
                os.close(fd)
            raise RunDirBusy(f"{self.path.parent} is in use by another purgemix run ({holder}); wait for it to "
                             f"finish, or give this run another --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
