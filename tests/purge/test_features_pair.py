"""The pair scorer: overlap and echoes of the instruction (purge/features/pair.py)."""

from purgemix.purge.features.base import Batch, score_batch


def _cols(responses, instructions=None, inputs=None):
    n = len(responses)
    return score_batch(Batch(texts={"instruction": instructions or ["Explain the topic in a few sentences."] * n,
                                    "input": inputs or [""] * n, "response": list(responses)}))


def test_pair_echo_exact():
    c = _cols(["Sure! Name three primary colors", "Red, blue and yellow.", "", "N/A"],
              instructions=["Name three primary colors"] * 4)
    assert list(c["pair.echo_exact"]) == [1, 0, 0, 0]
