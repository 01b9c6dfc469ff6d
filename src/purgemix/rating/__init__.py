"""Rating and score correction: DS2-style LLM rating, the statistical prior (transition-matrix
correction), long-tail score, kNN-Bayes quality, IFD/perplexity and the combined quality score."""
