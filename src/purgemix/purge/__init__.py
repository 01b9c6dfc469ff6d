"""Symbolic purge: cheap per-role features, statistical priors, declarative rules, deduplication.

``features``  registered scorers (name, version, formula, direction), vectorised over batches.
``priors``    per-feature robust statistics (median/MAD, quantile grid) fitted in bounded memory.
``rules``     YAML rules over features with fixed, quantile, robust-z or ``auto`` thresholds.
``dedup``     exact (normalised) and MinHash-LSH near-duplicate detection across files.
``stages``    the pipeline stages (scores -> dedup -> rules) and ``report`` the HTML/JSON report.
"""

PREFIX = "purge."
