"""The length scorer (purge/features/length.py)."""

from purgemix.purge.features.base import Batch, score_batch


def _cols(responses, instructions=None, inputs=None):
    n = len(responses)
    return score_batch(Batch(texts={"instruction": instructions or ["Explain the topic in a few sentences."] * n,
                                    "input": inputs or [""] * n, "response": list(responses)}))


def test_lengths():
    c = _cols(["Hello World 123!\n\nSecond paragraph."])
    assert c["response.chars"][0] == len("Hello World 123!\n\nSecond paragraph.")
    assert c["response.words"][0] == 5
    assert c["response.lines"][0] == 2
    assert c["response.paragraphs"][0] == 2
    assert c["response.tokens"][0] > 5


def test_empty_response_has_no_nonspace_characters():
    c = _cols(["Sure! Name three primary colors", "Red, blue and yellow.", "", "N/A"],
              instructions=["Name three primary colors"] * 4)
    assert c["response.chars_nonspace"][2] == 0
