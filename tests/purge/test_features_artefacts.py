"""The artefacts scorer: template markers, placeholders, HTML remnants (purge/features/artefacts.py)."""

from purgemix.purge.features.base import Batch, score_batch


def _cols(responses, instructions=None, inputs=None):
    n = len(responses)
    return score_batch(Batch(texts={"instruction": instructions or ["Explain the topic in a few sentences."] * n,
                                    "input": inputs or [""] * n, "response": list(responses)}))


def test_template_markers():
    c = _cols([
        "La réponse dépend de plusieurs facteurs importants qu'il faut examiner attentivement.",
        "I'm sorry, but I cannot help with that request.",
        "### Response: Paris is the capital of France.<|im_end|>",
        "The sky is blue because of Rayleigh scattering of sunlight.",
    ])
    assert c["response.template_markers"][2] >= 2 and c["response.template_markers"][3] == 0


def test_markdown_headings_are_not_template_markers():
    # "### Instructions:" is a recipe heading, not a leftover "### Instruction:" prompt marker
    c = _cols([
        "### Ingredients:\n- 2 eggs\n\n### Instructions:\n1. Whisk the eggs.",
        "#### Answering questions well\nBe brief.",
        "### Instruction:\nSummarise the text.\n### Response:\nDone.",
    ])
    assert c["response.template_markers"][0] == 0 and c["response.template_markers"][1] == 0
    assert c["response.template_markers"][2] >= 2
