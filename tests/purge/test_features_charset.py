"""The charset scorer (purge/features/charset.py)."""

import pytest

from purgemix.purge.features.base import Batch, score_batch


def _cols(responses, instructions=None, inputs=None):
    n = len(responses)
    return score_batch(Batch(texts={"instruction": instructions or ["Explain the topic in a few sentences."] * n,
                                    "input": inputs or [""] * n, "response": list(responses)}))


def test_digit_ratio():
    c = _cols(["Hello World 123!\n\nSecond paragraph."])
    assert c["response.digit_ratio"][0] == pytest.approx(3 / 35)
