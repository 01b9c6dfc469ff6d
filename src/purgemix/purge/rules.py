"""Declarative purge rules (YAML) over features, with fixed, quantile, robust-z or ``auto`` thresholds.

A rule file::

    version: 1
    settings:
      auto_z: 3.5                 # robust z-score used by `auto`
    rules:
      - name: empty-response
        when: response.chars_nonspace == 0
        reason: The response is empty or whitespace only.
      - name: repetitive-lines
        all:                      # every condition must hold (`any`: at least one)
          - response.dup_line_frac > auto
          - response.dup_line_frac >= 0.3
        reason: Many lines of the response are repeated verbatim.

A condition is ``FEATURE OP VALUE`` with OP one of ``< <= > >= == !=`` and VALUE one of

``0.3``      a fixed number;
``q0.99``    the pool's 0.99 quantile of the feature (``p99`` is the same);
``z3.5``     median + 3.5 robust standard deviations (for ``<``/``<=``: median - 3.5);
``auto``     ``z<auto_z>`` (default 3.5), i.e. fitted from the priors;
``en``       a word, for the category features (``*.lang``) with ``==``/``!=``.

``all``/``any`` lists may nest further ``{all: [...]}``/``{any: [...]}`` blocks. A missing value
(NaN: e.g. ``python_invalid`` when there is no code) never satisfies a condition.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from ..core.numbers import as_float_or_nan
from .features.base import feature_catalog
from .priors import quantile

DEFAULT_AUTO_Z = 3.5
_COND = re.compile(r"^\s*([A-Za-z_][\w.]*|mean\(\s*[A-Za-z_][\w.]*\s*\))\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
        "!=": np.not_equal}


class RuleError(ValueError):
    """A rule file that cannot be used; the message names the file, line and key."""


def default_rules_path() -> Path:
    return Path(str(resources.files("purgemix.purge") / "rules" / "default.yaml"))


# --- YAML with line numbers -------------------------------------------------------------------


class _Map(dict):
    line: int = 0
    key_lines: dict


class _List(list):
    line: int = 0


def _build(node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = _Map()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for k, v in node.value:
            key = k.value
            out[key] = _build(v)
            out.key_lines[key] = k.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        out = _List(_build(v) for v in node.value)
        out.line = node.start_mark.line + 1
        return out
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_yaml(text: str, path: str) -> Any:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        problem = getattr(e, "problem", None) or str(e)
        raise RuleError(f"{where}: invalid YAML: {problem}") from None
    return _build(node) if node is not None else None


# --- rules ------------------------------------------------------------------------------------


@dataclass
class Condition:
    feature: str
    op: str
    value: str  # as written
    line: int = 0
    threshold: Any = None  # resolved number (or word) after fitting
    pool: bool = False  # mean(FEATURE) OP NUMBER: a condition on the pool, the same for every record

    def resolve(self, priors: dict[str, Any], auto_z: float) -> None:
        v = self.value
        if self.pool:
            prior = priors.get(self.feature) or {}
            mean = prior.get("mean")
            self.threshold = bool(mean is not None and _OPS[self.op](mean, float(v)))
            return
        try:
            self.threshold = float(v)
            return
        except ValueError:
            pass
        low = v.lower()
        m = re.fullmatch(r"(?:q(0?\.\d+|1(?:\.0*)?|0)|p(\d+(?:\.\d+)?))", low)
        zm = re.fullmatch(r"z(-?\d+(?:\.\d+)?)", low)
        if m or zm or low == "auto":
            prior = priors.get(self.feature)
            if not prior or not prior.get("count"):
                self.threshold = float("nan")  # no data: the condition never holds
                return
            if m:
                q = float(m.group(1)) if m.group(1) is not None else float(m.group(2)) / 100
                self.threshold = quantile(prior, q)
            else:
                z = auto_z if low == "auto" else float(zm.group(1))
                sign = -1.0 if self.op in ("<", "<=") and z > 0 else 1.0
                self.threshold = prior["median"] + sign * z * prior["scale"]
            return
        self.threshold = v  # a word, for category features

    def resolve_sources(self, means: dict[str, float]) -> None:
        """A pool condition per source (input file): ``{source: bool}``, so that pools of different
        styles mixed in one run are judged each by their own statistics."""
        if self.pool and means:
            self.threshold = {"*": bool(self.threshold),
                              **{src: bool(_OPS[self.op](m, float(self.value))) for src, m in means.items()}}

    def describe(self) -> str:
        t = self.threshold
        if self.pool:
            return f"mean({self.feature}) {self.op} {self.value}" + ("" if t is None else f" (= {t})")
        shown = f"{t:.4g}" if isinstance(t, float) else str(t)
        return f"{self.feature} {self.op} {self.value}" + (f" (= {shown})" if shown != self.value else "")

    def to_json(self) -> dict[str, Any]:
        t = self.threshold
        return {"feature": self.feature, "op": self.op, "value": self.value, "pool": self.pool,
                "threshold": None if isinstance(t, float) and t != t else t}


@dataclass
class Rule:
    name: str
    expr: Any  # Condition | ("all"|"any", [expr...])
    reason: str = ""
    line: int = 0
    enabled: bool = True

    def conditions(self) -> list[Condition]:
        out: list[Condition] = []

        def walk(e):
            if isinstance(e, Condition):
                out.append(e)
            else:
                for x in e[1]:
                    walk(x)

        walk(self.expr)
        return out

    def features(self) -> list[str]:
        return list(dict.fromkeys(c.feature for c in self.conditions() if not c.pool))

    def describe(self) -> str:
        def d(e):
            if isinstance(e, Condition):
                return e.describe()
            return "(" + (" and " if e[0] == "all" else " or ").join(d(x) for x in e[1]) + ")"

        s = d(self.expr)
        return s[1:-1] if s.startswith("(") else s

    def evaluate(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        def ev(e):
            if isinstance(e, Condition):
                if e.pool:
                    n = len(next(iter(cols.values()))) if cols else 0
                    t = e.threshold
                    if isinstance(t, dict) and "__source__" in cols:
                        default = t.get("*", False)
                        return np.fromiter((t.get(s, default) for s in cols["__source__"]), dtype=bool, count=n)
                    return np.full(n, bool(t.get("*", False) if isinstance(t, dict) else t))
                col = cols[e.feature]
                t = e.threshold
                if isinstance(t, str):
                    arr = np.asarray(col, dtype=object)
                    return arr == t if e.op == "==" else (arr != t) & (arr != None)  # noqa: E711
                arr = np.asarray(col, dtype=np.float64)
                if isinstance(t, float) and t != t:
                    return np.zeros(arr.shape, dtype=bool)
                with np.errstate(invalid="ignore"):
                    return _OPS[e.op](arr, t) & ~np.isnan(arr)
            parts = [ev(x) for x in e[1]]
            return np.logical_and.reduce(parts) if e[0] == "all" else np.logical_or.reduce(parts)

        return ev(self.expr)


@dataclass
class RuleSet:
    rules: list[Rule]
    auto_z: float = DEFAULT_AUTO_Z
    path: str = ""
    text: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def active(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]

    def features(self) -> list[str]:
        return list(dict.fromkeys(f for r in self.active for f in r.features()))

    def pool_features(self) -> list[str]:
        return list(dict.fromkeys(c.feature for r in self.active for c in r.conditions() if c.pool))

    def digest(self) -> str:
        return hashlib.blake2b(self.text.encode(), digest_size=8).hexdigest()

    def resolve(self, priors: dict[str, Any]) -> None:
        for r in self.active:
            for c in r.conditions():
                c.resolve(priors, self.auto_z)

    def evaluate(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """(n, rules) boolean matrix of which active rule fires on which record."""
        act = self.active
        n = len(next(iter(cols.values()))) if cols else 0
        if not act:
            return np.zeros((n, 0), dtype=bool)
        return np.stack([r.evaluate(cols) for r in act], axis=1)

    def thresholds(self) -> list[dict[str, Any]]:
        return [{"name": r.name, "reason": r.reason, "line": r.line, "condition": r.describe(),
                 "conditions": [c.to_json() for c in r.conditions()]} for r in self.active]


def load_rules(path: str | Path | None = None, text: str | None = None) -> RuleSet:
    """Parse and validate a rule file (default: the shipped ``default.yaml``)."""
    path = str(path) if path else str(default_rules_path())
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RuleError(f"{path}: rule file not found") from None
    doc = load_yaml(text, path)
    if not isinstance(doc, _Map):
        raise RuleError(f"{path}:1: a rule file is a mapping with a 'rules' list")
    unknown = set(doc) - {"version", "settings", "rules"}
    if unknown:
        k = sorted(unknown)[0]
        raise RuleError(f"{path}:{doc.key_lines[k]}: key '{k}': unknown top-level key; use version, settings, rules")
    settings = doc.get("settings") or _Map()
    auto_z = DEFAULT_AUTO_Z
    if settings:
        if not isinstance(settings, _Map):
            raise RuleError(f"{path}:{doc.key_lines['settings']}: key 'settings': must be a mapping")
        for k, v in settings.items():
            if k != "auto_z":
                raise RuleError(f"{path}:{settings.key_lines[k]}: key 'settings.{k}': unknown setting; use auto_z")
            if not isinstance(v, (int, float)) or v <= 0:
                raise RuleError(f"{path}:{settings.key_lines[k]}: key 'settings.auto_z': must be a positive number")
            auto_z = float(v)
    items = doc.get("rules")
    if not isinstance(items, _List):
        line = doc.key_lines.get("rules", doc.line)
        raise RuleError(f"{path}:{line}: key 'rules': must be a list of rules")
    catalog = feature_catalog()
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"rules[{i}]"
        if not isinstance(item, _Map):
            raise RuleError(f"{path}:{items.line + i}: key '{where}': each rule is a mapping with name, when, reason")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RuleError(f"{path}:{item.line}: key '{where}.name': every rule needs a name")
        where = f"rules[{i}] ({name})"
        if name in seen:
            raise RuleError(f"{path}:{item.key_lines['name']}: key '{where}.name': duplicate rule name '{name}'")
        seen.add(name)
        extra = set(item) - {"name", "when", "all", "any", "reason", "enabled"}
        if extra:
            k = sorted(extra)[0]
            raise RuleError(f"{path}:{item.key_lines[k]}: key '{where}.{k}': unknown key; use name, when/all/any, "
                            f"reason, enabled")
        heads = [k for k in ("when", "all", "any") if k in item]
        if len(heads) != 1:
            raise RuleError(f"{path}:{item.line}: key '{where}': give exactly one of when, all, any")
        head = heads[0]
        expr = _parse_expr(item[head], head, path, item.key_lines[head], f"{where}.{head}", catalog)
        reason = item.get("reason", "")
        if not isinstance(reason, str):
            raise RuleError(f"{path}:{item.key_lines['reason']}: key '{where}.reason': must be text")
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise RuleError(f"{path}:{item.key_lines['enabled']}: key '{where}.enabled': must be true or false")
        rules.append(Rule(name, expr, reason.strip(), item.line, enabled))
    return RuleSet(rules, auto_z, path, text)


def _parse_expr(value: Any, head: str, path: str, line: int, key: str, catalog) -> Any:
    if head == "when" and isinstance(value, str):
        return _parse_condition(value, path, line, key, catalog)
    if isinstance(value, _List) and value:
        mode = "any" if head == "any" else "all"
        parts = []
        for j, v in enumerate(value):
            sub_key = f"{key}[{j}]"
            if isinstance(v, str):
                parts.append(_parse_condition(v, path, value.line + j, sub_key, catalog))
            elif isinstance(v, _Map) and len(v) == 1 and next(iter(v)) in ("all", "any"):
                h = next(iter(v))
                parts.append(_parse_expr(v[h], h, path, v.key_lines[h], f"{sub_key}.{h}", catalog))
            else:
                raise RuleError(f"{path}:{getattr(v, 'line', line)}: key '{sub_key}': expected a condition "
                                f"'FEATURE OP VALUE' or an {{all: [...]}} / {{any: [...]}} block")
        return (mode, parts)
    raise RuleError(f"{path}:{line}: key '{key}': expected a condition 'FEATURE OP VALUE' or a non-empty list of them")


def _parse_condition(text: str, path: str, line: int, key: str, catalog) -> Condition:
    m = _COND.match(text)
    if not m:
        raise RuleError(f"{path}:{line}: key '{key}': cannot read condition '{text}'; write FEATURE OP VALUE, "
                        f"e.g. 'response.dup_line_frac > auto' (OP: < <= > >= == !=)")
    feat, op, value = m.groups()
    pool = feat.startswith("mean(")
    if pool:
        feat = feat[5:-1].strip()
    if feat not in catalog:
        import difflib

        close = difflib.get_close_matches(feat, list(catalog), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise RuleError(f"{path}:{line}: key '{key}': unknown feature '{feat}'.{hint} Available features: "
                        f"{', '.join(sorted(catalog))}")
    spec = catalog[feat][1]
    is_number = _is_number(value)
    if pool:
        if not is_number or spec.kind == "category":
            raise RuleError(f"{path}:{line}: key '{key}': mean({feat}) compares the pool's mean with a number, "
                            f"e.g. 'mean({feat}) < 0.05'")
        return Condition(feat, op, value, line, pool=True)
    low = value.lower()
    threshold_word = low == "auto" or re.fullmatch(r"q(0?\.\d+|1(\.0*)?|0)|p\d+(\.\d+)?|z-?\d+(\.\d+)?", low)
    if spec.kind == "category":
        if is_number or threshold_word or op not in ("==", "!="):
            raise RuleError(f"{path}:{line}: key '{key}': '{feat}' is a category (a language code): use == or != "
                            f"with a word, e.g. '{feat} != en'")
    elif not (is_number or threshold_word):
        raise RuleError(f"{path}:{line}: key '{key}': value '{value}' is not a number, qN (quantile), zN (robust "
                        f"z) or auto")
    return Condition(feat, op, value, line)


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def columns(records: Sequence[dict], features: Sequence[str], prefix: str = "purge.") -> dict[str, np.ndarray]:
    """Feature columns of a batch of scored records (NaN / None where missing)."""
    from operator import itemgetter

    catalog = feature_catalog()
    out: dict[str, np.ndarray] = {}
    cats = [f for f in features if f in catalog and catalog[f][1].kind == "category"]
    nums = [f for f in features if f not in cats]
    for f in cats:
        out[f] = np.array([r["scores"].get(prefix + f) for r in records], dtype=object)
    if not nums or not records:
        for f in nums:
            out[f] = np.zeros(0)
        return out
    keys = [prefix + f for f in nums]
    get = itemgetter(*keys)
    try:  # fast path: every record has every key (all records went through the scores stage)
        rows = [get(r["scores"]) for r in records]
        if len(keys) == 1:
            rows = [(v,) for v in rows]
        arr = np.array(rows, dtype=object)
        arr[np.equal(arr, None)] = np.nan
        arr = arr.astype(np.float64)
    except (KeyError, TypeError, ValueError):
        arr = np.array([[as_float_or_nan(r["scores"].get(k)) for k in keys] for r in records], dtype=np.float64)
    for j, f in enumerate(nums):
        out[f] = np.ascontiguousarray(arr[:, j])
    return out
