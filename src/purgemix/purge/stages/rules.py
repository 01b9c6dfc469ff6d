"""``purge-rules``: the fitted rules as a FitMapStage.

The fit computes the priors (or takes reference priors) and resolves every rule's threshold, and
estimates each rule's hit rate on a uniform row sample (warning before a rule drops most of the pool);
the shards drop each record that fires any rule, with the first rule as the reason and every rule that
fired in ``rules`` (and their feature values in ``values``)."""

from __future__ import annotations

import sys
from typing import Any, Iterable

import numpy as np

from ...core.record import Record
from ...core.sampling import ColumnReservoir
from ...core.stage import FitMapStage, Result, register_stage
from .. import PREFIX
from ..priors import PriorFitter
from ..rules import RuleSet, columns, load_rules
from .dropped import dropped_side

ROW_SAMPLE = 20_000  # records kept (as feature rows) during the fit to estimate how often rules fire


@register_stage
class RuleStage(FitMapStage):
    name = "purge-rules"
    section = "purge.rules"
    names_run_dir = False  # other rules reuse the stored scores and duplicate decisions (same run directory)
    version = "1"
    reads = ("scores.purge.*",)
    writes = ()

    def __init__(self, rules: RuleSet | None = None, priors: dict[str, Any] | None = None):
        self.rules = rules or load_rules()
        self.reference = priors  # fitted elsewhere (a reference dataset); else fitted on this pool

    def params(self) -> dict[str, Any]:
        return {"rules": self.rules.text, "auto_z": self.rules.auto_z,
                "reference": None if self.reference is None else _digest(self.reference)}

    def fit(self, batches: Iterable[list[Record]]) -> Any:
        numeric, needed = self._features()

        def parts():
            for b in batches:
                if b:
                    cols = columns(b, numeric)
                    cat = columns(b, [f for f in needed if f not in cols])
                    yield len(b), cols, {f: (cols[f] if f in cols else cat[f]) for f in needed}, \
                        [r.get("source", "") for r in b]

        return self._fit(parts())

    def fit_dir(self, prev: Any, own: Any = None) -> Any:
        """The fit from the previous stage's score columns (``StageDir.read_columns``): no record's scores are
        decoded. Falls back to ``fit`` when a shard stores its scores inline."""
        n_shards = prev.info()["shards"]
        if not all(prev.done_info(i)["out"] == 0 or prev.read_columns(i) is not None for i in range(n_shards)):
            return self.fit(prev.iter_records())
        from ..features.base import feature_catalog

        numeric, needed = self._features()
        catalog = feature_catalog()

        def column(raw: dict[str, Any], f: str, n: int) -> np.ndarray:
            return _feature_column(raw, f, n, catalog)

        def parts():
            for i in range(n_shards):
                got = prev.read_columns_and_sources(i)
                if got is None:
                    continue
                raw, sources = got
                n = len(sources)
                cols = {f: column(raw, f, n) for f in numeric}
                yield n, cols, {f: (cols[f] if f in cols else column(raw, f, n)) for f in needed}, sources

        return self._fit(parts())

    def _features(self) -> tuple[list[str], list[str]]:
        from ..features.base import feature_catalog

        numeric = [f for f, (_, spec) in feature_catalog().items() if spec.kind != "category"]
        return numeric, self.rules.features()

    def _fit(self, parts: Iterable[tuple[int, dict[str, np.ndarray], dict[str, Any], list[str]]]) -> Any:
        """The fit over (records, numeric columns, the rules' feature columns, sources) per batch."""
        from ..features.base import feature_catalog

        catalog = feature_catalog()
        numeric, needed = self._features()
        fitter = PriorFitter(numeric)
        sample = ColumnReservoir(ROW_SAMPLE, needed + ["__source__"])
        pool_feats = self.rules.pool_features()
        by_source: dict[str, dict[str, list[float]]] = {f: {} for f in pool_feats}
        seen = 0
        rng = np.random.default_rng(0)
        for n, cols, rows, sources in parts:
            fitter.add_columns(cols)
            rows["__source__"] = sources
            if pool_feats:
                src_arr = np.array(sources, dtype=object)
                for src in set(sources):
                    mask = src_arr == src
                    for f in pool_feats:
                        v = cols[f][mask]
                        v = v[~np.isnan(v)]
                        acc = by_source[f].setdefault(src, [0.0, 0])
                        acc[0] += float(v.sum())
                        acc[1] += int(v.size)
            # keep a uniform row sample (reservoir) to estimate each rule's hit rate before dropping
            sample.add(rows, n, rng)
            seen += n
        pool = fitter.finish("pool")
        priors = self.reference if self.reference is not None else pool
        self.rules.resolve(priors["features"])
        if self.reference is None:
            for r in self.rules.active:
                for c in r.conditions():
                    if c.pool:
                        c.resolve_sources({src: a[0] / a[1] for src, a in by_source[c.feature].items() if a[1]})
        warnings = []
        estimate = {}
        if seen and needed:
            scols = {f: np.array(v, dtype=object if f == "__source__" or catalog[f][1].kind == "category"
                                 else np.float64) for f, v in sample.items()}
            fired = self.rules.evaluate(scols)
            for k, r in enumerate(self.rules.active):
                frac = float(fired[:, k].mean())
                estimate[r.name] = frac
                if frac >= 0.999:
                    warnings.append(f"rule '{r.name}' ({r.describe()}) would drop every record")
                elif frac >= 0.5:
                    warnings.append(f"rule '{r.name}' ({r.describe()}) would drop {frac:.0%} of the records")
            allfrac = float(fired.any(axis=1).mean()) if fired.size else 0.0
            if allfrac >= 0.999 and not any("every record" in w for w in warnings):
                warnings.append("the rules together would drop every record")
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        return {"priors": priors, "pool_priors": pool if self.reference is not None else None,
                "rules": self.rules.thresholds(), "estimated_hit_rate": estimate, "warnings": warnings,
                "records": seen}

    def process(self, records: list[Record], state: Any) -> Result:
        res = Result()
        if not records:
            return res
        fired = self._judge(records, columns(records, self.rules.features()), state, res)
        res.records = [r for r, f in zip(records, fired.tolist()) if not f]
        return dropped_side(res)

    def process_columns(self, records: list[Record], raw: dict[str, Any], state: Any) -> Result:
        """``process`` for a shard whose scores are stored by column: the rules read the columns, the kept
        records pass on with their columns (never turned into per-record dicts and back) and only the
        dropped records get their ``scores`` back for the dropped list."""
        from ..features.base import feature_catalog

        res = Result()
        n = len(records)
        if not n:
            return res
        catalog = feature_catalog()
        cols = {f: _feature_column(raw, f, n, catalog) for f in self.rules.features()}
        fired = self._judge(records, cols, state, res, lambda i: _score_row(raw, i))
        keep = np.nonzero(~fired)[0]
        res.records = [records[i] for i in keep.tolist()]
        res.columns = {k: (c[keep] if isinstance(c, np.ndarray) else [c[i] for i in keep.tolist()])
                       for k, c in raw.items()}
        return dropped_side(res)

    def _judge(self, records: list[Record], cols: dict[str, Any], state: Any, res: Result,
               scores_of: Any = None) -> np.ndarray:
        """Evaluate the fitted rules on a batch's feature columns and add a drop event, carrying the record
        (given its ``scores`` by ``scores_of(i)`` when they are stored by column), for each record that fires
        any rule. Returns the mask of those records."""
        _apply_thresholds(self.rules, state["rules"])
        cols["__source__"] = np.array([r.get("source", "") for r in records], dtype=object)
        fired = self.rules.evaluate(cols)
        names = [r.name for r in self.rules.active]
        feats = [r.features() for r in self.rules.active]
        any_fired = fired.any(axis=1) if fired.size else np.zeros(len(records), dtype=bool)
        for i in np.nonzero(any_fired)[0].tolist():
            r = records[i]
            if scores_of is not None:
                r["scores"] = scores_of(i)
            hit = np.nonzero(fired[i])[0].tolist()
            values = {f: _plain(cols[f][i]) for k in hit for f in feats[k]}
            res.drop(r, "purge", names[hit[0]], rules=[names[k] for k in hit], values=values)
            res.events[-1]["record"] = r
        return any_fired


def _feature_column(raw: dict[str, Any], f: str, n: int, catalog: dict[str, Any]) -> np.ndarray:
    """Feature ``f`` from a shard's score columns (``StageDir.read_columns``), as ``rules.columns`` gives it
    from records: float64 with NaN for missing, or the values themselves for a category (``catalog``:
    ``features.feature_catalog()``)."""
    from ...core.numbers import as_float_or_nan

    v = raw.get(PREFIX + f)
    spec = catalog.get(f)
    if spec is not None and spec[1].kind == "category":
        if v is None:
            return np.array([None] * n, dtype=object)
        if not isinstance(v, list):
            v = [None if x != x else x for x in v.tolist()]
        return np.array(v, dtype=object)
    if v is None:
        return np.full(n, np.nan)
    if isinstance(v, list):
        return np.array([as_float_or_nan(x) for x in v], dtype=np.float64)
    return v.astype(np.float64)


def _score_row(raw: dict[str, Any], i: int) -> dict[str, Any]:
    """Record ``i``'s ``scores`` from the shard's columns, as ``StageDir.read_records`` would attach them."""
    row = {}
    for k, col in raw.items():
        v = col[i]
        if isinstance(col, np.ndarray):
            v = v.item()
            if isinstance(v, float) and v != v:
                v = None
        row[k] = v
    return row


def _apply_thresholds(rules: RuleSet, resolved: list[dict[str, Any]]) -> None:
    """Set the thresholds fitted in the driver (the stage object in a worker was not fitted)."""
    by_name = {r["name"]: r for r in resolved}
    for rule in rules.active:
        conds = by_name[rule.name]["conditions"]
        for c, j in zip(rule.conditions(), conds):
            t = j["threshold"]
            c.threshold = float("nan") if t is None else t


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if v != v else round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _digest(obj: Any) -> str:
    import hashlib

    import orjson

    return hashlib.blake2b(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()
