"""Symbolic purge: cheap per-role features, statistical priors, declarative rules, deduplication.

``normalise``  the ``normalise`` stage (Unicode and whitespace) every pipeline starts with.
``features/``  registered scorers (name, version, formula, direction), vectorised over batches.
``priors``     per-feature robust statistics (median/MAD, quantile grid) fitted in bounded memory.
``rules``      YAML rules over features with fixed, quantile, robust-z or ``auto`` thresholds.
``dedup/``     exact (normalised) and MinHash-LSH near-duplicate detection across files.
``stages/``    the pipeline stages (dedup -> scores -> rules), one per file, and the dropped list.
``report``     the purge's report JSON (counts, examples, rule hits); ``run`` its output files.
"""

PREFIX = "purge."
