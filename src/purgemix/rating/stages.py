"""Pipeline stages of the rating layer. They run in the driver (``GlobalStage``): the model is loaded
once, calls are batched, and every answer lives in the request cache, so a restarted run replays
what it already paid for."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..core.record import Record
from ..core.stage import GlobalStage, Result, register_stage
from ..models.base import model_usage, usage_of


@register_stage
class RateStage(GlobalStage):
    """DS2-style rating of every record: ``scores["ds2.*"]`` or a recorded failure."""

    name = "rate"
    section = "rating.ds2"
    version = "1"
    reads = ("messages",)
    writes = ("scores.ds2.*", "meta._rating")

    def __init__(self, model: str = "qwen2.5-0.5b", *, template: str = "ds2_rating", attempts: int = 3,
                 batch_size: int = 64, max_tokens: int = 64, prefix: str = "ds2", llm: Any = None,
                 model_options: dict[str, Any] | None = None):
        self.model = model
        self.template = template
        self.attempts = attempts
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.prefix = prefix
        self._llm = llm
        self.model_options = model_options or {}
        self.counts = {"rated": 0, "parsed": 0, "failed": 0, "unanswered": 0, "attempts": 0}
        self.first_error: str | None = None  # of a request that got no answer (a wrong key, a dead server)
        self._usage_before: dict[str, Any] | None = None

    def report(self) -> dict[str, Any]:
        """Ratings made, parsed and failed, attempts, and the rater's usage in this stage."""
        first = {"first_error": self.first_error} if self.first_error else {}
        return {**self.counts, **first, **model_usage(self._llm, self._usage_before)}

    def params(self) -> dict[str, Any]:
        from .ds2 import load_template

        t = load_template(self.template)
        return {"model": self.model, "template": [t.system, t.user], "attempts": self.attempts,
                "max_tokens": self.max_tokens, "prefix": self.prefix}

    @property
    def llm(self):
        if self._llm is None:
            from ..models import load_llm

            self._llm = load_llm(self.model, **self.model_options)
        return self._llm

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        from .ds2 import apply_rating, load_template, rate_conversations

        template = load_template(self.template)
        self._usage_before = usage_of(self.llm)
        for records in batches:
            for s in range(0, len(records), self.batch_size):
                chunk = records[s:s + self.batch_size]
                results = rate_conversations(self.llm, [r["messages"] for r in chunk], template=template,
                                             attempts=self.attempts, max_tokens=self.max_tokens)
                for res in results:
                    self.counts["rated"] += 1
                    self.counts["parsed" if res.ok else "failed"] += 1
                    self.counts["attempts"] += res.attempts
                    if res.error and res.error.startswith("request failed"):
                        self.counts["unanswered"] += 1
                        self.first_error = self.first_error or res.error
                yield Result(records=[apply_rating(r, res, self.prefix, self.llm.name) for r, res in zip(chunk, results)])


def embed_text(record: Record) -> str:
    """What rating-related stages embed: the conversation's turns joined by newlines."""
    return "\n".join(m["content"] for m in record["messages"] if m["role"] != "system")


class _LoadsEmbedder:
    """``emb``: the embedder given to the stage, else the one named by ``embedder``, loaded on first use (in
    the process that runs the stage, never in one that only fingerprints it)."""

    embedder: str
    _emb: Any

    @property
    def emb(self):
        if self._emb is None:
            from ..models import load_embedder

            self._emb = load_embedder(self.embedder)
        return self._emb


@register_stage
class CurateStage(_LoadsEmbedder, GlobalStage):
    """The statistical prior over a rated pool: ``{prefix}.curated`` (corrected 0–5 score),
    ``{prefix}.confidence`` (posterior of the corrected class) and ``{prefix}.longtail`` (0–1).
    Records without a parsed score keep none (they still get a long-tail score)."""

    name = "curate"
    section = "rating.curation"
    version = "1"
    reads = ("messages", "scores.ds2.score")
    writes = ("scores.ds2.curated", "scores.ds2.confidence", "scores.ds2.longtail")

    def __init__(self, embedder: str = "minilm", *, score_key: str = "ds2.score", prefix: str = "ds2", k: int = 10,
                 threshold: float = 0.5, temperature: float = 0.5, longtail_k: int = 10, classes: int = 6,
                 emb: Any = None):
        self.embedder = embedder
        self.score_key = score_key
        self.prefix = prefix
        self.k = k
        self.threshold = threshold
        self.temperature = temperature
        self.longtail_k = longtail_k
        self.classes = classes
        self._emb = emb
        self._report: dict[str, Any] = {}

    def report(self) -> dict[str, Any]:
        return self._report

    def params(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "score_key": self.score_key, "prefix": self.prefix, "k": self.k,
                "threshold": self.threshold, "temperature": self.temperature, "longtail_k": self.longtail_k,
                "classes": self.classes}

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        import numpy as np

        from ..vectors.neighbours import knn, longtail_score
        from .correction import curate

        records = [r for b in batches for r in b]
        if not records:
            return
        vecs = self.emb.embed([embed_text(r) for r in records])
        rated = [i for i, r in enumerate(records) if isinstance((r.get("scores") or {}).get(self.score_key), (int, float))]
        _, sims_all = knn(vecs, self.longtail_k)
        tail = longtail_score(sims_all)
        curated: dict[int, tuple[int, float]] = {}
        if len(rated) >= 3:
            raw = np.array([int(records[i]["scores"][self.score_key]) for i in rated])
            raw = np.clip(raw, 0, self.classes - 1)
            c = curate(raw, vecs[rated], K=self.classes, k=self.k, threshold=self.threshold,
                       temperature=self.temperature, longtail_k=self.longtail_k)
            for j, i in enumerate(rated):
                curated[i] = (int(c.curated[j]), float(c.confidence[j]))
            self._report = {"rated": len(rated), "unrated": len(records) - len(rated),
                           "changed": int(c.changed.sum()), "transition_matrix": np.round(c.T, 4).tolist(),
                           "prior": np.round(c.prior, 4).tolist(), "fit_loss": c.loss,
                           "raw_histogram": np.bincount(raw, minlength=self.classes).tolist(),
                           "curated_histogram": np.bincount(c.curated, minlength=self.classes).tolist()}
        else:
            self._report = {"rated": len(rated), "unrated": len(records) - len(rated), "note": "too few rated records"}
        out = []
        for i, r in enumerate(records):
            scores = dict(r.get("scores") or {})
            scores[f"{self.prefix}.longtail"] = round(float(tail[i]), 6)
            if i in curated:
                scores[f"{self.prefix}.curated"], conf = curated[i]
                scores[f"{self.prefix}.confidence"] = round(conf, 6)
            out.append({**r, "scores": scores})
        for s in range(0, len(out), 10_000):
            yield Result(records=out[s:s + 10_000])


@register_stage
class QualityStage(_LoadsEmbedder, GlobalStage):
    """The default quality signal (``quality.score``, 0–1; see ``rating/quality.py``).

    Scores IFD/likelihood with ``scorer`` for records that have no ``ifd.*`` yet (cached), then
    combines likelihood, IFD, rule features, any rating present and, when ``library`` (a saved
    ``KNNBayes``) is given, the kNN-Bayes expected class.

    With ``sample=N`` only a seeded random N of the records that need scoring are scored; the
    likelihood and IFD of the others are estimated from their purge features by a ridge regression
    fitted on the sample (``rating/surrogate.py``; ``ifd.estimated = 1``, the cross-validated
    Spearman correlation is in ``report``)."""

    name = "quality"
    section = "rating.quality"
    version = "1"
    reads = ("messages", "scores.ifd.*", "scores.ds2.*")
    writes = ("scores.quality.*", "scores.ifd.*")

    def __init__(self, scorer: str | None = "qwen2.5-0.5b", *, strong_rater: bool = False, library: str | None = None,
                 embedder: str = "minilm", weights: dict[str, float] | None = None, scorer_obj: Any = None,
                 emb: Any = None, max_length: int = 1024, sample: int | None = None, seed: int = 0):
        self.scorer = scorer
        self.sample = int(sample) if sample else None
        self.seed = seed
        self._report: dict[str, Any] = {}
        self.max_length = max_length  # tokens per scored sequence (prompt + response); the response gets half
        self.strong_rater = strong_rater
        self.library = library
        self.embedder = embedder
        self.weights = weights
        self._scorer = scorer_obj
        self._emb = emb

    def report(self) -> dict[str, Any]:
        return self._report

    def params(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "max_length": self.max_length, "strong_rater": self.strong_rater,
                "library": self.library,
                "embedder": self.embedder if self.library else None, "weights": self.weights,
                "sample": self.sample, "seed": self.seed if self.sample else None}

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        from .ifd import apply_scores, score_records
        from .quality import quality_scores

        records = [r for b in batches for r in b]
        if not records:
            return
        if self.scorer:
            todo = [i for i, r in enumerate(records) if "ifd.loss_cond" not in (r.get("scores") or {})]
            estimate: list[int] = []
            if self.sample and len(todo) > self.sample:
                import numpy as np

                rng = np.random.default_rng(self.seed)
                chosen = set(rng.choice(len(todo), self.sample, replace=False).tolist())
                estimate = [i for j, i in enumerate(todo) if j not in chosen]
                todo = [i for j, i in enumerate(todo) if j in chosen]
            if todo:
                if self._scorer is None:
                    from ..models import load_scorer

                    self._scorer = load_scorer(self.scorer, max_length=self.max_length)
                res = score_records(self._scorer, [records[i] for i in todo])
                for i, x in zip(todo, res):
                    records[i] = apply_scores(records[i], x)
            if estimate:
                self._estimate(records, estimate)
        kb = vecs = None
        if self.library:
            from .knn_bayes import KNNBayes

            kb = KNNBayes.load(self.library)
            vecs = self.emb.embed([embed_text(r) for r in records])
        out = quality_scores(records, weights=self.weights, strong_rater=self.strong_rater, knn_bayes=kb,
                             embeddings=vecs)
        for s in range(0, len(out), 10_000):
            yield Result(records=out[s:s + 10_000])

    def _estimate(self, records: list[Record], targets: list[int]) -> None:
        """Fill ``ifd.loss_cond`` and ``ifd.ifd`` of ``targets`` from the scored records (in place)."""
        import numpy as np

        from .ifd import split_prompt
        from .surrogate import features, fit_predict

        scored = [i for i, r in enumerate(records) if isinstance((r.get("scores") or {}).get("ifd.ifd"), (int, float))]
        targets = [i for i in targets if split_prompt(records[i])[1].strip()]
        if len(scored) < 10 or not targets:
            self._report = {"scored": len(scored), "estimated": 0, "note": "too few scored records to estimate from"}
            return
        X = features(records)
        train = np.array(scored)
        self._report = {"scored": len(scored), "estimated": len(targets)}
        # IFD is a ratio: its log is regressed
        for key, transform, inverse in (("ifd.loss_cond", lambda v: v, lambda v: v),
                                        ("ifd.ifd", lambda v: np.log(np.maximum(v, 1e-6)), np.exp)):
            y = np.full(len(records), np.nan)
            y[train] = transform(np.array([float(records[i]["scores"][key]) for i in scored]))
            pred, rep = fit_predict(X, y, train, seed=self.seed)
            self._report[key] = rep
            for i in targets:
                s = dict(records[i].get("scores") or {})
                s[key] = round(float(inverse(pred[i])), 6)
                s["ifd.estimated"] = 1
                records[i] = {**records[i], "scores": s}
