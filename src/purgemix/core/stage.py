"""Stages: pure batch transforms that declare what they read and write. The whole stage contract lives here.

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
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator

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

    def rewrite(self, record: Record, stage: str, into: str, reason: str, **detail: Any) -> None:
        """``record`` is replaced by the new record ``into`` (made from it alone): it leaves the stream."""
        self.events.append(
            {"id": record["id"], "outcome": "rewritten", "stage": stage, "into": into, "reason": reason, **detail}
        )

    def create(self, record: Record, stage: str, parents: list[str], **detail: Any) -> None:
        self.records.append(record)
        self.events.append({"id": record["id"], "outcome": "created", "stage": stage, "parents": parents, **detail})

    def create_dropped(self, record: Record, stage: str, parents: list[str], reason: str, **detail: Any) -> None:
        """A new record that failed its checks: its creation, then its drop, with the text kept in the drop
        event for audit (the record itself does not go on)."""
        self.events.append({"id": record["id"], "outcome": "created", "stage": stage, "parents": parents})
        self.events.append({"id": record["id"], "outcome": "dropped", "stage": stage, "reason": reason,
                            "record": record, **detail})


STAGES: dict[str, type["Stage"]] = {}


def register_stage(cls: type["Stage"]) -> type["Stage"]:
    """Make a stage class buildable by name (the recipe builder reads ``STAGES``)."""
    if not isinstance(cls, type) or not issubclass(cls, Stage) or cls.kind not in KINDS:
        raise TypeError(f"{cls!r} is not a MapStage, FitMapStage or GlobalStage")
    if cls.name == Stage.name:
        raise TypeError(f"{cls.__qualname__} must set a stage name")
    if cls.name in STAGES and STAGES[cls.name] is not cls:
        raise ValueError(f"stage name '{cls.name}' registered twice")
    STAGES[cls.name] = cls
    return cls


# The optional hooks, by stage kind: name -> the parameters the driver passes, in order. A stage defines a hook
# as a method of that name (or leaves it None). ``__init_subclass__`` checks, when the class is defined, that a
# hook belongs to the stage's kind and accepts what the driver passes, so a typo or a wrong signature fails at
# import, not on the first shard of a long run.
HOOKS: dict[str, dict[str, tuple[str, ...]]] = {
    "map": {
        "process_columns": ("records", "columns", "state"),
        "process_lines": ("lines", "ids", "hashes", "state"),
    },
    "fit_map": {
        "process_columns": ("records", "columns", "state"),
        "process_lines": ("lines", "ids", "hashes", "state"),
        "prepare": ("records", "id_hashes"),
        "fit_dir": ("prev", "own"),
    },
    "global": {},
}
KINDS = tuple(HOOKS)
ALL_HOOKS = frozenset(h for hooks in HOOKS.values() for h in hooks)


def _accepts(fn: Callable, names: tuple[str, ...]) -> bool:
    """True when ``fn(self, *names)`` binds (by position, extra parameters having defaults)."""
    try:
        inspect.signature(fn).bind(None, *names)
    except TypeError:
        return False
    return True


class Stage:
    """What every stage declares. Subclass one of the three kinds below, never this class directly.

    ``name``/``version``/``params()`` make the fingerprint (a changed one clears the stage's folder on resume).
    ``reads``/``writes`` name the record fields the stage uses and changes (documentation and checks).
    ``section`` names the kind of report section the stage's output feeds (``"purge.scores"``, ``"mix"``, ...):
    the run report finds stages by it, never by their names, so a new stage joins a section by declaring it.
    ``report()`` returns what the stage learnt while it ran (fit figures, outcome counts, model usage): the
    driver stores it in ``manifest["stages"][name]["report"]`` when the stage completes, so a resumed run still
    reports it. ``artifacts()`` returns arrays kept for reports (file name -> arrays, saved as ``.npz`` in the
    stage's folder), e.g. cluster assignments.
    """

    name: ClassVar[str] = "stage"
    version: ClassVar[str] = "1"
    kind: ClassVar[str] = "map"
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()
    section: ClassVar[str | None] = None
    # False: the stage's settings do not name the default run directory (``Pipeline.default_run_dir``), so
    # changing them reruns the stage in the same folder instead of starting a new run
    names_run_dir: ClassVar[bool] = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        allowed = HOOKS.get(cls.kind, {})
        for hook in ALL_HOOKS & set(vars(cls)):
            fn = vars(cls)[hook]
            if fn is None:
                continue
            if hook not in allowed:
                raise TypeError(f"{cls.__qualname__}.{hook}: a {cls.kind} stage has no '{hook}' hook "
                                f"(hooks of a {cls.kind} stage: {', '.join(allowed) or 'none'})")
            if not callable(fn) or not _accepts(fn, allowed[hook]):
                raise TypeError(f"{cls.__qualname__}.{hook} must accept ({', '.join(allowed[hook])})")
        for method in ("report", "artifacts", "params"):
            if method in vars(cls) and not callable(vars(cls)[method]):
                raise TypeError(f"{cls.__qualname__}.{method} must be a method")

    def params(self) -> dict[str, Any]:
        """Everything that changes the stage's output; hashed into its fingerprint."""
        return {}

    def report(self) -> dict[str, Any]:
        """What the stage learnt while it ran; empty when nothing. Called once, after the stage's last shard."""
        return {}

    def artifacts(self) -> dict[str, dict[str, Any]]:
        """Arrays kept for reports: file name (``NAME.npz``) -> {array name: numpy array}."""
        return {}

    def fingerprint(self, upstream: str = "") -> str:
        payload = orjson.dumps(
            {"name": self.name, "version": self.version, "params": self.params(), "upstream": upstream},
            option=orjson.OPT_SORT_KEYS,
            default=str,
        )
        return hashlib.blake2b(payload, digest_size=8).hexdigest()


class MapStage(Stage):
    """Records of one shard in, records + events out; runs shard-parallel.

    Optional hooks (leave None, or define the method):

    ``process_columns(records, columns, state) -> Result``: called instead of ``process`` when the shard stores
    its records' scores by column; the records then come with ``scores`` None and ``columns`` is
    ``StageDir.read_columns``. A stage that passes records on sets ``Result.columns`` for them.

    ``process_lines(lines, ids, hashes, state) -> LinesResult``, for a stage that never changes a record and
    drops records by id alone (dedup): called instead of ``process`` with the shard's records as their stored
    JSON lines, their ids and the ids' 64-bit hashes (``core.ids.hash_ids``). The driver stores kept and dropped
    records as the lines they were read as and decodes only the kept ones (for a stage fused after this one):
    a shard that is mostly duplicates is then neither decoded nor encoded again.

    ``state`` is None for a map stage, the fitted state for a fit-map stage.
    """

    kind = "map"
    process_columns: ClassVar[Callable[..., Result] | None] = None
    process_lines: ClassVar[Callable[..., "LinesResult"] | None] = None

    def process(self, records: list[Record]) -> Result:
        raise NotImplementedError


class FitMapStage(Stage):
    """First ``fit`` over all records (in the driver, the state persisted as ``state.json``), then a
    shard-parallel ``process(records, state)``. Besides the map hooks (``process_columns``,
    ``process_lines``, see ``MapStage``), two more:

    ``fit_dir(prev, own) -> state``: called instead of ``fit`` with the previous stage's folder and the
    stage's own (``StageDir``), so the fit can read side files instead of decoding every record.

    ``prepare(records, id_hashes=None) -> {suffix: bytes}``: a shard-parallel pass over the previous stage's
    shards before the fit (the driver passes ``id_hashes``, the records' ``core.ids.hash_ids``, when it has
    them); its files land in the stage's own folder as ``SHARD.prep.SUFFIX`` (a shard's ``SHARD.prep.json``
    marks it done, so an interrupted prepare resumes). The heavy per-record part of a fit (e.g. hashing every
    text for dedup) then runs on every worker, and ``fit_dir`` only reads arrays. When the stage comes right
    after ingest, the pass runs inside the ingest tasks, on ids before the driver's renames of repeated ids.
    """

    kind = "fit_map"
    process_columns: ClassVar[Callable[..., Result] | None] = None
    process_lines: ClassVar[Callable[..., "LinesResult"] | None] = None
    prepare: ClassVar[Callable[..., dict[str, bytes]] | None] = None
    fit_dir: ClassVar[Callable[..., Any] | None] = None

    def fit(self, batches: Iterable[list[Record]]) -> Any:
        """Return a JSON-serialisable state computed over all records."""
        raise NotImplementedError

    def process(self, records: list[Record], state: Any) -> Result:
        raise NotImplementedError


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
    """Sees the whole stream once and yields results (clustering, fusion); sequential. It restarts from its
    first shard on resume, so its expensive calls must go through a cache (the models' request cache)."""

    kind = "global"

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        raise NotImplementedError
