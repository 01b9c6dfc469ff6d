"""The local review page (``purgemix review RUN_DIR``): ``server.py`` (Starlette, bound to 127.0.0.1),
``api.py`` (report sections and records as JSON, read from the run's shards), ``review.py`` (accept, reject,
edit decisions in an embedded store, applied as ledger events), ``static/`` (one page, no build step).
Row: the top, with ``cli``.

Empty so far: this is where the review page lands.
"""
