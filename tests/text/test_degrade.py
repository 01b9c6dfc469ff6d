"""Noise injection: seeded, labelled, and each kind actually corrupts the record the way it says."""

import random

import pytest

from purgemix.core.record import instruction_of, make_record, response_of
from purgemix.text.degrade import NOISES, NotApplicable, inject

RESP = ("Regular exercise strengthens the heart and lungs. It also improves mood and sleep. Experts recommend "
        "at least 150 minutes of moderate activity per week, spread over several days, for most adults.")


def _records(n=200):
    return [make_record([{"role": "user", "content": f"Why is exercise good for you, reason {i}?"},
                         {"role": "assistant", "content": RESP}], id=f"c{i}") for i in range(n)]


def test_each_noise_changes_what_it_says():
    rec = _records(1)[0]
    rng = random.Random(0)
    for name, fn in NOISES.items():
        try:
            new, label = fn(rec, rng)
        except NotApplicable:
            continue
        assert label["type"] == name
        assert new is not rec and response_of(rec) == RESP  # the input is never modified
        if name == "truncate":
            assert RESP.startswith(response_of(new)) and len(response_of(new)) < len(RESP)
        elif name == "empty":
            assert len(response_of(new).strip()) <= 10
        elif name == "echo":
            assert instruction_of(rec) in response_of(new)
        elif name in ("duplicate", "near_duplicate"):
            assert new["id"] != rec["id"] and label["of"] == rec["id"]


def test_inject_is_seeded_labelled_and_disjoint():
    recs = _records()
    a, la = inject(recs, rate=0.05, seed=3)
    b, lb = inject(recs, rate=0.05, seed=3)
    assert la == lb and [r["messages"] for r in a] == [r["messages"] for r in b]
    assert len(a) == len(recs) + sum(1 for v in la.values() if v["type"] in ("duplicate", "near_duplicate"))
    types = {v["type"] for v in la.values()}
    assert {"truncate", "repeat", "template", "language", "empty", "duplicate", "echo", "refusal"} <= types
    c, lc = inject(recs, rate=0.05, seed=4)
    assert lc != la
    with pytest.raises(ValueError):
        inject(recs, types=["nonsense"])
