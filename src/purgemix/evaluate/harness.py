"""The fine-tune-and-evaluate harness: one base, one budget, one seed, several datasets (arms).

For each arm the harness fine-tunes the same base on ``budget`` records of the arm (a seeded sample, so
arms of different sizes are compared at an equal budget) with the same settings (``train.sft``), then runs
the suites on the fine-tuned model. The ``base`` arm is the untrained base model (the "before SFT" row).

Everything lands in one run directory and is reused on a re-run:

    RUN/arms/NAME/          the fine-tune (``sft.json`` names its settings and data; checkpoints resume)
    RUN/scores/NAME/SUITE-FINGERPRINT.json
                            a suite's per-prompt values for that arm's model (the fingerprint covers
                            the suite's params and the model's training fingerprint)
    RUN/manifest.json       arms, settings, suites and where each result is
    RUN/evaluate.json       the table: per arm and metric the mean with its bootstrap 95% CI, and the
                            paired difference to the baseline arm with its CI
    RUN/evaluate.html       the same as a page with a chart
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.pipeline import config_hash
from ..core.rundir import atomic_write_json, read_json
from ..train.sft import SFTSettings, conversation_of, finetune
from .base import Suite, SuiteResult, bootstrap_ci, paired_difference_ci

BASE_ARM = "base"


@dataclass
class Arm:
    name: str
    path: str | None  # None: the base model, not fine-tuned
    budget: int | None = None  # records to train on; None: the harness's budget


def parse_arm(spec: str) -> Arm:
    """``NAME=PATH`` or ``PATH`` (named by the file's stem)."""
    name, sep, path = spec.partition("=")
    if not sep:
        path, name = spec, Path(spec).name.split(".")[0]
    if not name or not path:
        raise ValueError(f"arm '{spec}': use NAME=PATH or PATH")
    return Arm(name, path)


def read_conversations(path: str, budget: int | None, seed: int) -> tuple[list[list[dict[str, str]]], int]:
    """(conversations, records read): a seeded sample of ``budget`` of the arm's records (all when fewer),
    in file order. Rows that are not records are skipped (``purgemix convert`` reports why)."""
    from ..core.references import iter_records

    convs = [conversation_of(r) for r in iter_records(path)]
    n = len(convs)
    if budget is not None and n > budget:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=budget, replace=False))
        convs = [convs[i] for i in keep.tolist()]
    return convs, n




class Harness:
    def __init__(self, run_dir: str | Path, suites: Sequence[Suite], settings: SFTSettings | None = None, *,
                 budget: int | None = None, baseline: str | None = None,
                 load_model: Callable[[str], Any] | None = None, load_base: Callable[[], Any] | None = None,
                 log: Callable[[str], None] = print):
        self.run_dir = Path(run_dir)
        self.suites, self.settings = list(suites), settings or SFTSettings()
        self.budget, self.baseline, self.log = budget, baseline, log
        self._load_model = load_model or _load_hf  # a model spec -> what the suites run on
        self._load_base = load_base  # -> (model, tokenizer, folder) to fine-tune; default: the settings' base

    def run(self, arms: Sequence[Arm]) -> dict[str, Any]:
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must differ: {names}")
        manifest: dict[str, Any] = {"settings": asdict(self.settings), "budget": self.budget,
                                    "suites": {s.name: s.params() for s in self.suites}, "arms": {}}
        results: dict[str, dict[str, SuiteResult]] = {}
        for arm in arms:
            t0 = time.perf_counter()
            model_spec, train = self._train(arm)
            results[arm.name] = self._score(arm, model_spec, train)
            manifest["arms"][arm.name] = {"data": arm.path, "model": model_spec, "train": train,
                                          "seconds": round(time.perf_counter() - t0, 1)}
            atomic_write_json(self.run_dir / "manifest.json", manifest)
        table = summarise(results, self.baseline or names[0], seed=self.settings.seed)
        table["arms"] = manifest["arms"]
        atomic_write_json(self.run_dir / "evaluate.json", table)
        from ..report.evaluate_page import render_evaluate_page

        (self.run_dir / "evaluate.html").write_text(render_evaluate_page(table), encoding="utf-8")
        return table

    def _train(self, arm: Arm) -> tuple[str, dict[str, Any]]:
        if arm.path is None:
            return self.settings.base, {"trained": False}
        budget = arm.budget if arm.budget is not None else self.budget
        convs, read = read_conversations(arm.path, budget, self.settings.seed)
        if not convs:
            raise ValueError(f"arm '{arm.name}': no records in {arm.path}")
        self.log(f"[{arm.name}] fine-tune on {len(convs):,} of {read:,} records")
        info = finetune(convs, self.run_dir / "arms" / arm.name, self.settings,
                        model_and_tokenizer=self._load_base,
                        on_log=lambda d: self.log(f"[{arm.name}] step {d['step']}: loss {d['loss']:.4f}")
                        if "loss" in d else None)
        return info["model"], {"trained": True, "records": len(convs), "read": read, "steps": info["steps"],
                               "train_loss": info["train_loss"], "fingerprint": info["fingerprint"]}

    def _score(self, arm: Arm, model_spec: str, train: dict[str, Any]) -> dict[str, SuiteResult]:
        model_key = config_hash(train.get("fingerprint") or {"base": model_spec})
        out, model = {}, None
        for suite in self.suites:
            path = self.run_dir / "scores" / arm.name / f"{suite.name}-{config_hash([suite.fingerprint(), model_key])}.json"
            if path.exists():
                out[suite.name] = SuiteResult.from_json(read_json(path))
                continue
            if model is None:
                model = self._load_model(model_spec)
            self.log(f"[{arm.name}] {suite.name} ...")
            t0 = time.perf_counter()
            res = suite.run(model)
            res.info["seconds"] = round(time.perf_counter() - t0, 1)
            atomic_write_json(path, res.to_json())
            out[suite.name] = res
        return out


def _load_hf(spec: str) -> Any:
    from ..models.hf import HFCausalLM

    return HFCausalLM(spec, max_length=1024)


def summarise(results: dict[str, dict[str, SuiteResult]], baseline: str, seed: int = 0) -> dict[str, Any]:
    """Per arm and metric: mean and 95% CI; the paired difference to ``baseline`` on the same prompts."""
    if baseline not in results:
        raise ValueError(f"baseline arm '{baseline}' is not among the arms: {', '.join(results)}")
    rows: dict[str, dict[str, Any]] = {}
    lower: set[str] = set()
    for arm, suites in results.items():
        rows[arm] = {}
        for sname, res in suites.items():
            lower |= {f"{sname}.{m}" for m in res.lower_is_better}
            for metric, values in res.metrics.items():
                cell = bootstrap_ci(values, seed=seed)
                base_values = results[baseline][sname].metrics[metric]
                if arm != baseline and len(base_values) == len(values):
                    cell["diff"] = paired_difference_ci(values, base_values, seed=seed)
                rows[arm][f"{sname}.{metric}"] = cell
    metrics = list(dict.fromkeys(m for r in rows.values() for m in r))
    return {"baseline": baseline, "metrics": metrics, "lower_is_better": sorted(lower), "rows": rows}


def format_table(table: dict[str, Any]) -> list[list[str]]:
    """Header and rows for a terminal table: mean [lo, hi] and, against the baseline, +diff [lo, hi] with
    a mark when the interval excludes 0 (better or worse by the metric's direction)."""
    header = ["arm"] + table["metrics"]
    out = [header]
    for arm, cells in table["rows"].items():
        row = [arm]
        for m in table["metrics"]:
            c = cells.get(m)
            if c is None or not c["n"]:
                row.append("-")
                continue
            text = f"{c['mean']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}]"
            d = c.get("diff")
            if d and d["n"]:
                sig = d["lo"] > 0 or d["hi"] < 0
                better = (d["mean"] < 0) if m in table["lower_is_better"] else (d["mean"] > 0)
                mark = (" better" if better else " worse") if sig else ""
                text += f"  {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]{mark}"
            row.append(text)
        out.append(row)
    return out
