"""``purgemix demo``: the whole product on real data, offline, in minutes.

1. Take clean instruction data that ships inside a package (AlpacaEval: 805 instructions with GPT-4
   answers).
2. Corrupt a copy with the noise-injection toolkit (truncation, repetition, template artefacts,
   wrong language, empty answers, duplicates and near-duplicates, echoes, refusals), keeping the
   labels aside.
3. Run the ``quick`` recipe on the noisy copy with the embedded models.
4. Show what was purged and how much of the injected noise was caught, what was fused, and where
   every record went (the ledger), and write the HTML report.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import orjson

from ..core.rundir import RunDir
from ..core.shapes import Converter, export
from ..io.readers import Source
from ..text.degrade import inject
from .detection import MECHANICAL, evaluate_detection

DEMO_NOISE = MECHANICAL + ("echo", "refusal")


def load_clean(dataset: str = "builtin:alpaca-eval", limit: int | None = None) -> list[dict[str, Any]]:
    src = Source.open(dataset)
    convert = Converter(src.name)
    records = []
    for row, payload, error in src.rows():
        if error is None:
            obj = orjson.loads(payload) if isinstance(payload, bytes) else payload
            records.append(convert(obj))
        if limit and len(records) >= limit:
            break
    return records


def dropped_by_purge(run: RunDir) -> dict[str, tuple[list[str], str | None]]:
    """id -> (rules that fired, duplicate_of) for every record the purge stages dropped."""
    out: dict[str, tuple[list[str], str | None]] = {}
    for sd in run.stage_dirs():
        if "-purge-" not in sd.path.name or not sd.complete:
            continue
        for e in sd.iter_events():
            if e["outcome"] == "dropped":
                rules = e.get("rules") or [e.get("reason", "?")]
                out[e["id"]] = (list(rules), e.get("duplicate_of"))
    return out


def run_demo(out_dir: str | Path, *, overrides: list[str] | None = None, rate: float = 0.04, seed: int = 0,
             limit: int | None = None, force: bool = False,
             on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    from ..recipe.build import build_pipeline
    from ..recipe.load import load_recipe
    from ..report import write_run_report

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean = load_clean(limit=limit)
    noisy, labels = inject(clean, types=DEMO_NOISE, rate=rate, seed=seed)
    noisy_path = out / "noisy.jsonl"
    noisy_path.write_bytes(b"".join(orjson.dumps(export(r, "messages"), option=orjson.OPT_APPEND_NEWLINE)
                                    for r in noisy))
    (out / "noise_labels.json").write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2))

    recipe = load_recipe("quick", [*(overrides or []), f"output.path={out / 'mixed.jsonl'}"])
    recipe["inputs"] = [str(noisy_path)]
    pipe = build_pipeline(recipe, run_dir=str(out / "run"), force=force, on_stage=on_stage)
    summary = pipe.execute()
    report_path, _ = write_run_report(pipe.run.path, out / "report.html")

    detection = evaluate_detection(noisy, labels, dropped_by_purge(pipe.run))
    injected = sum(r["injected"] for r in detection["types"].values())
    caught = sum(round((r["recall"] or 0) * r["injected"]) for r in detection["types"].values())
    created = _created(pipe.run)
    ledger = orjson.loads((pipe.run.path / "ledger.json").read_bytes())
    return {
        "command": "demo",
        "data": {"clean": len(clean), "noisy": len(noisy), "injected": len(labels),
                 "noise_types": list(DEMO_NOISE), "rate_per_type": rate, "seed": seed},
        "read": summary["read"],
        "written": summary["written"],
        "dropped": summary["dropped"],
        "merged": summary["merged"],
        "quarantined": summary["quarantined"],
        "noise_recall": round(caught / injected, 4) if injected else None,
        "noise_recall_by_type": {t: (None if r["recall"] is None else round(r["recall"], 4))
                                 for t, r in detection["types"].items() if r["injected"]},
        "noise_precision_by_type": {t: (None if r["precision"] is None else round(r["precision"], 4))
                                    for t, r in detection["types"].items() if r["flagged"]},
        "clean_dropped_by_purge": detection["clean_dropped"],
        "clean_drop_rate": round(detection["clean_drop_rate"], 4),
        "new_pairs": {"created": len(created), "in_output": ledger.get("created_in_output", 0),
                      "examples": created[:3]},
        "mix": summary.get("reports", {}),
        "ledger_balanced": summary["ledger_balanced"],
        "ledger": {k: ledger.get(k) for k in ("inputs", "quarantined", "kept", "dropped", "merged", "rewritten",
                                              "created", "created_in_output", "outputs")},
        "outputs": {**summary["outputs"], "noisy": str(noisy_path), "labels": str(out / "noise_labels.json"),
                    "report": str(report_path)},
        "elapsed_seconds": round(time.perf_counter() - t0, 1),
    }


def _created(run: RunDir) -> list[dict[str, Any]]:
    """New pairs with their parents' prompts (for the terminal summary)."""
    out = []
    for sd in run.stage_dirs():
        if not (sd.path.name.endswith("-fuse") or sd.path.name.endswith("-distil")) or not sd.complete:
            continue
        for batch in sd.iter_records():
            for r in batch:
                lin = r.get("lineage") or {}
                if lin.get("derived_from"):
                    out.append({
                        "id": r["id"],
                        "operator": lin.get("operator"),
                        "cycles": lin.get("cycles"),
                        "parents": lin["derived_from"],
                        "instruction": r["messages"][0]["content"][:300] if r["messages"] else "",
                        "response": next((m["content"][:400] for m in r["messages"] if m["role"] == "assistant"), ""),
                    })
    return out


def print_demo(result: dict[str, Any]) -> None:
    from rich.table import Table

    from ..core.progress import console

    d = result["data"]
    console.rule("[bold]purgemix demo")
    console.print(f"{d['clean']} clean AlpacaEval records; injected {d['injected']} noisy ones "
                  f"({d['rate_per_type']:.0%} per type: {', '.join(d['noise_types'])}); ran the quick recipe.")
    t = Table(title="Injected noise caught by the purge", show_lines=False)
    for col in ("noise type", "recall", "precision"):
        t.add_column(col)
    for ty, rec in result["noise_recall_by_type"].items():
        pre = result["noise_precision_by_type"].get(ty)
        t.add_row(ty, "-" if rec is None else f"{rec:.2f}", "-" if pre is None else f"{pre:.2f}")
    console.print(t)
    console.print(f"overall recall {result['noise_recall']:.2f}; clean records dropped by the purge: "
                  f"{result['clean_dropped_by_purge']} ({result['clean_drop_rate']:.1%})")
    reasons = Counter(result["dropped"])
    t2 = Table(title="Where every record went")
    t2.add_column("outcome")
    t2.add_column("records", justify="right")
    led = result["ledger"]
    for k in ("inputs", "kept", "merged", "dropped", "quarantined", "created", "created_in_output", "outputs"):
        t2.add_row(k.replace("_", " "), f"{led.get(k) or 0:,}")
    console.print(t2)
    for reason, n in reasons.most_common(12):
        console.print(f"  dropped {n:,}: {reason}")
    for ex in result["new_pairs"]["examples"]:
        console.rule(f"new pair {ex['id']} ({ex['operator']}, {ex['cycles']} repair cycles) from {', '.join(ex['parents'])}")
        console.print(f"[bold]instruction:[/] {ex['instruction']}")
        console.print(f"[bold]response:[/] {ex['response']}")
    console.rule()
    status = "[green]balanced[/]" if result["ledger_balanced"] else "[red]NOT balanced[/]"
    console.print(f"ledger {status}; {result['elapsed_seconds']:.0f}s")
    for k, v in result["outputs"].items():
        console.print(f"  {k}: {v}")
