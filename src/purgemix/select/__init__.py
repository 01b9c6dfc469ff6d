"""Data-selection baselines, each a registered ``Selector`` (the 13 methods ENTP and LM-Mixup compare with).

A selector scores records into ``scores["select.NAME"]`` (so thresholds and budgets never recompute a
score), keeps the top of a budget and drops the rest with reason ``not selected by NAME``, so the ledger
balances. It reuses the signals other families compute (IFD and perplexity from ``rating.ifd``, embeddings).

``base``        the contract (``Selector``, ``Signals``, ``SELECTORS``, ``stored``).
``stage``       ``SelectStage`` (the ``select`` stage) and ``make_selector``.
``uniform``     random.   ``length``   completion length.   ``knn``   long-tail.   ``kcenter``   coverage.
``ifd``         ifd and superfilter (the IFD < 1 rule).   ``perplexity``   response perplexity.
``ds2``         ds2-raw and ds2 (the DS2 rating, raw or curated, long-tail breaking ties).
``alpagasus``, ``deita``, ``instag``   the LLM-rated ones (prompts in ``prompts/``).
``less``        gradient similarity to a validation set (LoRA gradients, count-sketch projection).

Row: with ``mix`` (imports ``rating``,
``models``, ``text``, ``vectors``, ``core``; never ``mix``).
"""
