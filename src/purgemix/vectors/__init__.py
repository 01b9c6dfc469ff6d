"""Embedding-space maths for every family: ``neighbours`` (L2 normalise, kNN, long-tail), ``cluster`` (k-means,
capacity clusters, silhouette), ``diversity`` (MMR, related and random pairs). numpy only (faiss when installed);
it imports nothing else of purgemix, so any family may use it."""
