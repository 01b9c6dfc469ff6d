"""The purge as pipeline stages, one per file: ``purge-dedup`` -> ``purge-scores`` -> ``purge-rules``.

``dedup``    ``DedupStage`` (FitMapStage): exact and MinHash near-duplicates, decided over the whole pool.
``scores``   ``ScoreStage`` (MapStage): every feature into ``scores["purge.<feature>"]``.
``rules``    ``RuleStage`` (FitMapStage): priors and thresholds fitted on the pool, then drops by rule.
``dropped``  the dropped list (``STEM.dropped.jsonl``) and report counts, written by the shards.

Drop events carry the record itself (``record``), so the dropped records can be written out with their
reasons without another pass over the data. Import names from the module that defines them; this package
re-exports nothing.
"""

# Importing the stage modules registers the stages by name (``core.stage.register_stage``).
from . import dedup, rules, scores  # noqa: F401
