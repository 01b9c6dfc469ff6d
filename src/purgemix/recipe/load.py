"""Recipes: one YAML file reproduces a whole run; ``key.sub=value`` on the command line overrides keys.

A recipe is merged over ``DEFAULTS`` (so a recipe names only what it changes) and validated against
it: an unknown key is an error naming the file, the line and the keys that exist. Shipped recipes
(``quick``, ``entp``, ``lm-mixup``) live in the package and are found by name.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "name": "custom",
    "description": "",
    "inputs": [],  # data files; HQ/LQ is decided by the rating, not by the file
    "output": {"path": None, "shape": "messages", "format": None},
    # one source of the run settings for every verb and recipe; shards are the unit of resume and parallelism
    "run": {"shard_size": 10_000, "workers": 1, "executor": "local", "seed": 0,
            "strict": False,  # stop at the first bad input row instead of quarantining it
            "max_record_bytes": 1 << 20},  # larger records are quarantined
    "models": {
        "generator": "qwen2.5-0.5b",  # fuses / distils / rewrites
        "checker": None,  # the fusion error checklist (default: the generator)
        "embedder": "minilm",
        "rater": None,  # DS2 rater for quality.method=rate and the mix quality reward (default: generator)
        "scorer": None,  # causal LM for likelihood/IFD signals (e.g. qwen2.5-0.5b); null: rule signals only
        "judge": None,  # the audit's judge of new pairs vs their sources (default: the checker, else the generator)
        "price_in": 0.0,  # per million prompt tokens (for mix.max_cost and the estimate's cost)
        "price_out": 0.0,  # per million completion tokens
    },
    "limit": None,  # use only the first N input records (quick experiments)
    "purge": {
        "enabled": True,
        "rules": None,  # a rules YAML file; null: the shipped default rules
        "dedup": {
            "enabled": True,
            "near": True,  # MinHash-LSH near duplicates besides exact ones
            "threshold": 0.7,  # Jaccard similarity of word n-grams from which records are near duplicates
            "num_perm": 128,  # MinHash permutations
            "ngram": 3,  # word n-grams
            "keep_by": "response.words:max",  # the member of a duplicate group kept: FEATURE:max|min or first
        },
        "tokenizer": "regex",  # token counter of the features: regex | hf:PATH/tokenizer.json
        "priors": None,  # a STEM.priors.json of an earlier purge: thresholds from that reference, not this pool
    },
    "quality": {
        # how each record gets its 0–5 score for the HQ/LQ split:
        # signals  cheap calibrated signals (rule features, lengths, embedding agreement) — no LLM
        # rate     DS2 rating by models.rater, then the statistical correction (curate)
        "method": "signals",
        "max_length": 1024,  # tokens the scorer reads per record (prompt + response; the response gets half)
        "sample": None,  # score only this many records with the scorer; estimate the rest (rating/surrogate.py)
        "curate": {"k": 10, "threshold": 0.5},
    },
    "split": {"hq": 4, "lq": 3},  # curated score >= hq is HQ, <= lq is LQ, between is excluded
    "semdedup": {"enabled": False, "threshold": 0.95},
    "mix": {
        "method": "fuse",  # fuse (ENTP two-to-one) | distil (LM-Mixup cluster-to-one)
        "operator": "compose",  # measured best for small generators (benchmarks/mix_yield.py, docs/mix.md)
        "pairing": "cluster",  # cluster | random (control) | none (1-to-1 rewrite control)
        "feedback": True,  # symbolic + LLM checklist repair loop (false: control)
        "max_cycles": 2,
        "llm_check": True,
        "k": "auto",
        "min_pair_similarity": 0.0,
        "budget": None,  # at most this many fusions / rewrites / clusters
        "samples": 4,  # distil: best-of-N
        "min_reward": 0.5,
        "capacity": [3, 1, 2, 5],  # distil cluster sizes: mean, std, min, max
        "quality": "rater",  # reward of new pairs: rater | knn:PATH | heuristic | none
        "quality_cut": 0.5,
        "ratio": "5:5",  # new:HQ
        "target": None,  # size of the mixed output; null: everything that passes
        "max_tokens": 384,
        # spending caps of the mix's models (generator, checker, rater reward): requests actually sent, cache
        # hits are free; at the cap the run stops with a message, and a rerun with a larger cap continues
        "max_tokens_total": None,
        "max_cost": None,  # needs models.price_in / price_out
        "judge": True,  # audit: a judge's verdict of each new pair against its sources, in lineage and report
        "rank_and_mix": True,  # false: write the new pairs and the untouched records, unmixed (mix --no-mix)
    },
    "rate": {"template": "ds2_rating", "attempts": 3, "batch_size": 64, "concurrency": 16,
             "timeout": 120,  # seconds per HTTP request (openai: backends)
             # a run where more of the requests than this failed exits non-zero (a wrong key, a dead server)
             "max_failure_share": 0.5},
    # a selection baseline (``purgemix select``): a registered selector and the number of records it keeps
    "select": {"strategy": "random", "n": 1000, "options": {}},
}

SHIPPED = ("quick", "entp", "lm-mixup")


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file, line and key."""


def shipped_path(name: str) -> Path:
    return Path(str(resources.files("purgemix") / "recipes" / f"{name}.yaml"))


def resolve(path_or_name: str) -> Path:
    p = Path(path_or_name)
    if p.exists():
        return p
    if path_or_name in SHIPPED or path_or_name.removesuffix(".yaml") in SHIPPED:
        return shipped_path(path_or_name.removesuffix(".yaml"))
    raise RecipeError(f"{path_or_name}: no such recipe file; shipped recipes: {', '.join(SHIPPED)}")


def load_recipe(path_or_name: str, overrides: list[str] | None = None) -> dict[str, Any]:
    from ..purge.rules import RuleError, load_yaml

    path = resolve(path_or_name)
    try:
        doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except RuleError as e:
        raise RecipeError(str(e)) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys, got {type(doc).__name__}")
    _check_keys(doc, DEFAULTS, str(path), "")
    recipe = _merge(copy.deepcopy(DEFAULTS), _plain(doc))
    for item in overrides or []:
        key, value = parse_override(item)
        _set(recipe, key, value)
    recipe["_source"] = str(path)
    return recipe


def settings_recipe(settings: dict[str, Any], name: str = "custom") -> dict[str, Any]:
    """``DEFAULTS`` with ``settings`` (dotted key -> value) applied, skipping values that are None: how a verb
    turns the options a user set into a recipe, so every verb and recipe shares one set of defaults."""
    recipe = copy.deepcopy(DEFAULTS)
    recipe["name"] = name
    for key, value in settings.items():
        if value is not None:
            _set(recipe, key, value)
    recipe["_source"] = f"{name} options"
    return recipe


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise RecipeError(f"override '{item}' must look like KEY=VALUE, e.g. mix.method=distil")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _set(recipe: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node, defaults = recipe, DEFAULTS
    for i, part in enumerate(parts):
        if not isinstance(defaults, dict) or part not in defaults:
            known = ", ".join(sorted(defaults)) if isinstance(defaults, dict) else "(none)"
            raise RecipeError(f"override '{dotted}': unknown key '{'.'.join(parts[:i + 1])}'; known here: {known}")
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node.setdefault(part, {})
            defaults = defaults[part]


def _check_keys(doc: Any, defaults: Any, path: str, prefix: str) -> None:
    if not isinstance(defaults, dict) or not isinstance(doc, dict):
        return
    lines = getattr(doc, "key_lines", {})
    for key, value in doc.items():
        if key not in defaults:
            where = f"{path}:{lines.get(key, getattr(doc, 'line', '?'))}"
            raise RecipeError(f"{where}: unknown key '{prefix}{key}'; known here: {', '.join(sorted(defaults))}")
        if isinstance(defaults[key], dict):
            if value is not None and not isinstance(value, dict):
                where = f"{path}:{lines.get(key, '?')}"
                raise RecipeError(f"{where}: '{prefix}{key}' must be a mapping")
            _check_keys(value, defaults[key], path, f"{prefix}{key}.")


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _merge(base: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    for k, v in doc.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base
