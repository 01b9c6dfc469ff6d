"""Data-selection baselines, each a registered ``Selector`` stage (issue: the 13 selection baselines).

A selector scores records into ``scores["select.NAME"]`` (so thresholds and budgets never recompute a
score), keeps the top of a budget and drops the rest with reason ``not selected by NAME``, so the ledger
balances. It reuses the signals the other families compute (purge features, IFD, DS2 ratings, curated
scores, embeddings, long-tail). One file per selector (``random.py``, ``length.py``, ``ifd.py``, ...), over
``base.py``. Row: with ``mix`` (imports ``rating``, ``purge``, ``models``, ``vectors``, ``core``).

Empty so far: this is where they land.
"""
