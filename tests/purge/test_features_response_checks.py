"""The response_checks scorer: refusals, non-answers, truncation, code and JSON validity
(purge/features/response_checks.py)."""

import math

from purgemix.purge.features.base import Batch, score_batch


def _cols(responses, instructions=None, inputs=None):
    n = len(responses)
    return score_batch(Batch(texts={"instruction": instructions or ["Explain the topic in a few sentences."] * n,
                                    "input": inputs or [""] * n, "response": list(responses)}))


def test_refusal():
    c = _cols([
        "La réponse dépend de plusieurs facteurs importants qu'il faut examiner attentivement.",
        "I'm sorry, but I cannot help with that request.",
        "### Response: Paris is the capital of France.<|im_end|>",
        "The sky is blue because of Rayleigh scattering of sunlight.",
    ])
    assert c["response.refusal"][1] == 1 and c["response.refusal"][3] == 0


def test_truncation_signals():
    c = _cols([
        "Photosynthesis turns light into chemical energy. Plants use it to make sugar from water and the",
        "Photosynthesis turns light into chemical energy. Plants use it to make sugar from carbon dioxide.",
        "Here is the code:\n```python\nprint('hi')\n",
        "1. First step.\n2. Second step.\n3.",
    ])
    assert list(c["response.truncated"]) == [1, 0, 1, 1]
    assert c["response.unbalanced_fence"][2] == 1
    assert c["response.list_cut"][3] == 1


def test_code_and_json_validity():
    c = _cols(["```python\ndef f(:\n    pass\n```", "```python\ndef f():\n    return 1\n```", '{"a": 1}', "not json"],
              instructions=["Write Python code.", "Write Python code.", "Return JSON with a.", "Return JSON with a."])
    assert c["response.python_invalid"][0] == 1 and c["response.python_invalid"][1] == 0
    assert math.isnan(c["response.python_invalid"][2])
    assert c["response.json_invalid"][2] == 0 and c["response.json_invalid"][3] == 1


def test_non_answer():
    c = _cols(["Sure! Name three primary colors", "Red, blue and yellow.", "", "N/A"],
              instructions=["Name three primary colors"] * 4)
    assert c["response.non_answer"][3] == 1 and c["response.non_answer"][1] == 0
