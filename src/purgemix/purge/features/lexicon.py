"""The ``lexicon`` scorer: stopword share and hits of a short flagged-word list.

Its own module because it holds the two word lists (``STOPWORDS`` is also what the purge benchmark
gives Data-Juicer, so both tools count the same words).
"""

from __future__ import annotations

import numpy as np

from .base import ALL, Batch, Feature, safe_ratio, scorer

STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself yourselves also may might must shall us many much""".split())

# A short, conservative list (slurs and explicit sexual terms), matched as whole words.
FLAGGED = frozenset("""fuck fucking fucked motherfucker shit bullshit cunt nigger nigga faggot fag retard retarded
whore slut porn porno blowjob dildo pussy cock dick rape rapist bitch bastard asshole""".split())


@scorer("lexicon", "1", ALL, {
    "stopword_ratio": Feature("English stopwords / \\w+ words (lower-cased)", "low"),
    "flagged_words": Feature("whole-word hits of the flagged-word list", "high", "int"),
})
def _lexicon(b: Batch, role: str):
    ws = b.words(role)
    stop = STOPWORDS.__contains__
    flag = FLAGGED.__contains__
    n_words = np.fromiter((len(w) for w in ws), dtype=np.int64, count=b.n)
    n_stop = np.fromiter((sum(map(stop, w)) for w in ws), dtype=np.int64, count=b.n)
    n_flag = np.fromiter((sum(map(flag, w)) for w in ws), dtype=np.int64, count=b.n)
    return {"stopword_ratio": safe_ratio(n_stop, n_words), "flagged_words": n_flag}
