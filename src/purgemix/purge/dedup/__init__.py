"""Exact and near-duplicate detection (MinHash-LSH), across every input file of a run.

``words``    the normalised words of a record, their 64-bit hashes and the exact key.
``minhash``  ``MinHasher`` (shingle signatures), ``optimal_bands`` and the LSH band keys.
``groups``   ``Deduplicator``: candidate pairs, verification, connected groups, which member is kept.

Import names from the module that defines them; this package re-exports nothing.
"""
