"""Runs data-juicer's operators equivalent to purgemix's default purge (run by purge_speed.py with the
data-juicer environment's Python). Prints one JSON line: records in/out and seconds.

    python _dj_runner.py DATA.jsonl WORKERS STOPWORDS_DIR
"""

import json
import os
import sys
import time


def main() -> None:
    path, workers, stop_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    t0 = time.perf_counter()
    from data_juicer.core.data import NestedDataset
    from data_juicer.ops.deduplicator import DocumentDeduplicator, DocumentMinhashDeduplicator
    from data_juicer.ops.filter import (
        CharacterRepetitionFilter,
        LanguageIDScoreFilter,
        SpecialCharactersFilter,
        StopWordsFilter,
        TextLengthFilter,
        WordRepetitionFilter,
        WordsNumFilter,
    )
    from datasets import load_dataset

    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    ds = NestedDataset(load_dataset("json", data_files=path, split="train"))
    n_in = len(ds)
    common = {"num_proc": workers}
    ops = [
        TextLengthFilter(min_len=10, max_len=100_000, **common),
        WordsNumFilter(min_num=3, max_num=100_000, lang="en", **common),
        SpecialCharactersFilter(min_ratio=0.0, max_ratio=0.35, **common),
        CharacterRepetitionFilter(rep_len=10, min_ratio=0.0, max_ratio=0.5, **common),
        WordRepetitionFilter(lang="en", rep_len=4, min_ratio=0.0, max_ratio=0.5, **common),
        StopWordsFilter(lang="en", min_ratio=0.02, stopwords_dir=stop_dir, **common),
        LanguageIDScoreFilter(lang="en", min_score=0.6, **common),
        DocumentDeduplicator(lowercase=True, ignore_non_character=True, **common),
        DocumentMinhashDeduplicator(tokenization="space", window_size=3, lowercase=True, num_permutations=128,
                                    jaccard_threshold=0.7, **common),
    ]
    for op in ops:
        ds = op.run(ds)
    seconds = time.perf_counter() - t1
    print(json.dumps({"in": n_in, "out": len(ds), "seconds": seconds, "import_seconds": t_import,
                      "workers": workers, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
