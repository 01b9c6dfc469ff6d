"""Shared by the recipe-run tests: the fake models of a `purgemix run`, and a topical pool to run them on."""

import json

FAKES = ["models.generator=fake:mix", "models.embedder=fake", "models.scorer=null", "mix.quality=heuristic"]
TOPICS = ["python lists", "french cooking", "tax law", "guitar chords", "marathon training", "star formation"]


def write_pool(path, n=240, truncate_every=9):
    """``n`` pairs over six topics; every ``truncate_every``-th answer is cut short for the purge to find
    (0: none)."""
    with open(path, "w") as f:
        for i in range(n):
            t = TOPICS[i % len(TOPICS)]
            out = f"Here is a short note about {t}, item {i}. It covers the basics clearly and ends properly."
            if truncate_every and i % truncate_every == 0:
                out = out[:-25]
            f.write(json.dumps({"instruction": f"Tell me about {t}, part {i}.", "input": "", "output": out}) + "\n")
