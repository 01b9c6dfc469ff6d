"""Shared test data: a small pool of topical pairs (six topics x eight records, an exact duplicate)."""

TOPICS = [["water", "boil", "temperature", "celsius", "steam", "kettle"],
          ["paris", "france", "seine", "capital", "louvre", "museum"],
          ["python", "list", "function", "loop", "code", "syntax"],
          ["piano", "music", "chord", "scale", "melody", "rhythm"]]


def rows():
    out = []
    for t, words in enumerate(TOPICS):
        for i in range(8):
            w = words[i % 6:] + words[: i % 6]
            out.append({"instruction": f"Tell me about {w[0]} and {w[1]} with {w[2]} case {i}?",
                        "input": "", "output": f"It concerns {w[0]} {w[1]} {w[3]} {w[4]} in case {i}.",
                        "split": "lq" if i < 6 else "hq"})
    out.append(dict(out[0]))  # an exact duplicate (gets a distinct id at ingest)
    out[-1]["output"] = out[0]["output"] + " "
    return out
