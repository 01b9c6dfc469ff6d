"""Feature scorers: statistics only. They write numbers into ``scores`` and never drop anything.

``base``                 the registry (``Feature``, ``Scorer``, ``SCORERS``), ``Batch``, ``score_batch``,
                         ``score_records``, ``feature_column``, ``feature_catalog``.
``length``, ``charset``, ``repetition``, ``lexicon``, ``language``, ``artefacts``, ``response_checks``,
``pair``                 one registered scorer each.
``truncation_flags``     structural truncation checks of one response (used by ``response_checks``).
``truncation_evidence``  the pool-fitted ending evidence and the truncation columns of a batch.

Import names from the module that defines them; this package re-exports nothing.
"""

# Importing the scorer modules registers their scorers in ``base.SCORERS``, so importing any module of this
# package (which imports the package first) sees every scorer. The order below is the registration order:
# the order of the scorers' columns in ``record["scores"]`` and in ``purge-scores``' fingerprint, so it must
# not be sorted.
# isort: off
from . import length, charset, repetition, lexicon, language, artefacts, response_checks, pair  # noqa: F401
# isort: on
