"""The language scorer (purge/features/language.py)."""

from purgemix.purge.features.base import Batch, score_batch


def _cols(responses, instructions=None, inputs=None):
    n = len(responses)
    return score_batch(Batch(texts={"instruction": instructions or ["Explain the topic in a few sentences."] * n,
                                    "input": inputs or [""] * n, "response": list(responses)}))


def test_language():
    c = _cols([
        "La réponse dépend de plusieurs facteurs importants qu'il faut examiner attentivement.",
        "I'm sorry, but I cannot help with that request.",
        "### Response: Paris is the capital of France.<|im_end|>",
        "The sky is blue because of Rayleigh scattering of sunlight.",
    ])
    assert c["response.lang"][0] == "fr" and c["response.lang_conf"][0] > 0.5
    assert c["response.lang"][3] == "en"
