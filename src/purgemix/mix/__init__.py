"""The mix: new pairs made from the low-quality split, checked, and mixed with the good data.

``fuse``       ENTP: two related LQ samples fused into one pair, with the symbolic feedback loop.
``distil``     LM-Mixup: a cluster of LQ samples distilled into one pair, best-of-N by the rewards.
``rewards``    the three LM-Mixup rewards (quality, alignment, format), task shapes, quality adapters.
``checks``     ``SymbolicChecks`` and the LLM checklist of a fused pair; the repair table.
``templates``  the operators' prompt templates (``models.prompts.Template``).
``semdedup``   semantic dedup (SemDeDup) before pairing.
``rank``       the final mix: HQ and new pairs ranked to a target and ratio.
``text``       the record helpers the operators share (prompt, pair text, embeddings, new records).
``stages``     the pipeline stages: ``semdedup``, ``fuse``, ``distil``, ``mix``.
"""
