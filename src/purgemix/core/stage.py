"""Stages: pure batch transforms that declare what they read and write.

Three kinds, by how much of the data a stage must see:

``MapStage``     records of one shard in, records + events out. Runs shard-parallel.
``FitMapStage``  first ``fit`` over all records (in the driver, result persisted), then a
                 shard-parallel ``process`` with that state (e.g. fitted priors, dedup decisions).
``GlobalStage``  sees the whole stream and emits new batches (clustering, fusion); sequential,
                 resumable through its own cache.

A stage never knows which executor runs it. Events are the ledger: every record a stage does not
pass through unchanged gets exactly one event (``dropped``/``merged``/``rewritten``), and every new
record one ``created`` event naming its parents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator

import orjson

from .record import Record

Event = dict[str, Any]
TERMINAL = ("dropped", "merged", "rewritten")
OUTCOMES = TERMINAL + ("created", "quarantined")


@dataclass
class Result:
    records: list[Record] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # extra per-shard files (name suffix -> bytes), written next to the shard before it is marked done
    side: dict[str, bytes] = field(default_factory=dict)
    # optional: the records' ``scores`` by column (key -> numpy array or list, one value per record), set by a
    # stage that wrote every record's ``scores`` as exactly these columns; the shard writer then stores them
    # without reading them back out of the records (same bytes on disk either way)
    columns: dict[str, Any] | None = None

    def drop(self, record: Record, stage: str, reason: str, **detail: Any) -> None:
        self.events.append({"id": record["id"], "outcome": "dropped", "stage": stage, "reason": reason, **detail})

    def merge(self, record: Record, stage: str, into: str, reason: str, **detail: Any) -> None:
        self.events.append(
            {"id": record["id"], "outcome": "merged", "stage": stage, "into": into, "reason": reason, **detail}
        )

    def create(self, record: Record, stage: str, parents: list[str], **detail: Any) -> None:
        self.records.append(record)
        self.events.append({"id": record["id"], "outcome": "created", "stage": stage, "parents": parents, **detail})


STAGES: dict[str, type["Stage"]] = {}


def register_stage(cls: type["Stage"]) -> type["Stage"]:
    if cls.name in STAGES and STAGES[cls.name] is not cls:
        raise ValueError(f"stage name '{cls.name}' registered twice")
    STAGES[cls.name] = cls
    return cls


class Stage:
    name: ClassVar[str] = "stage"
    version: ClassVar[str] = "1"
    kind: ClassVar[str] = "map"
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()

    def params(self) -> dict[str, Any]:
        """Everything that changes the stage's output; hashed into its fingerprint."""
        return {}

    def fingerprint(self, upstream: str = "") -> str:
        payload = orjson.dumps(
            {"name": self.name, "version": self.version, "params": self.params(), "upstream": upstream},
            option=orjson.OPT_SORT_KEYS,
            default=str,
        )
        return hashlib.blake2b(payload, digest_size=8).hexdigest()


class MapStage(Stage):
    kind = "map"

    def process(self, records: list[Record]) -> Result:
        raise NotImplementedError


class FitMapStage(Stage):
    kind = "fit_map"

    def fit(self, batches: Iterable[list[Record]]) -> Any:
        """Return a JSON-serialisable state computed over all records."""
        raise NotImplementedError

    # A stage may also define ``fit_dir(prev: StageDir, own: StageDir) -> state``: the pipeline then calls it
    # instead of ``fit`` with the previous stage's folder and its own, so the fit can read side files
    # instead of decoding every record.
    #
    # And ``prepare(records[, id_hashes=...]) -> dict[suffix, bytes]`` (the pipeline passes ``id_hashes``, the
    # records' ``ledger.hash_ids``, when it has them): a shard-parallel pass over the previous stage's shards
    # before the fit, whose files land in the stage's own folder as ``SHARD.prep.SUFFIX`` (a shard's
    # ``SHARD.prep.json`` marks it done, so an interrupted prepare resumes). The heavy per-record part of a
    # fit (e.g. hashing every text for dedup) then runs on every worker, and ``fit_dir`` only reads arrays.

    def process(self, records: list[Record], state: Any) -> Result:
        raise NotImplementedError

    # And ``process_columns(records, columns, state) -> Result``: called instead of ``process`` when the shard
    # stores its records' scores by column; the records then come with ``scores`` None and ``columns`` is
    # ``StageDir.read_columns``. A stage that passes records on sets ``Result.columns`` for them.
    #
    # And ``process_lines(lines, ids, hashes, state) -> LinesResult``, for a stage that never changes a record
    # and drops records by id alone (dedup): called instead of ``process`` with the shard's records as their
    # stored JSON lines, their ids and the ids' 64-bit hashes (``ledger.hash_ids``). The pipeline stores kept and dropped records as the lines they were
    # read as, and decodes only the kept ones (for a stage fused after this one): a shard that is mostly
    # duplicates is then neither decoded nor encoded again.


@dataclass
class LinesResult:
    """What ``process_lines`` decided: the positions of the kept lines, the events (a drop event that
    carries its record names the line in ``carried``, event position -> line position, and has
    ``"record": None`` where ``process`` would put the record) and side files."""

    keep: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    carried: dict[int, int] = field(default_factory=dict)
    side: dict[str, bytes] = field(default_factory=dict)


class GlobalStage(Stage):
    kind = "global"

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        raise NotImplementedError
