"""The layout's rules, checked on the source (docs/architecture.md, "Layers"):

- the direction rule: a module imports only families in rows below its own, and families in one row do not
  import each other (lazy imports inside functions count too);
- no import cycles between modules;
- a ``Pipeline`` is assembled only by the recipe builder (one front door).
"""

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "purgemix"

# top row first; a family may import the families of any lower row
ROWS = [
    ("cli", "ui"),
    ("evaluate",),
    ("recipe",),
    ("train",),
    ("select", "mix"),
    ("rating", "purge", "report", "testing"),
    ("models", "text"),
    ("core",),
    ("vectors", "io", "executors"),
]
ROW = {family: len(ROWS) - i for i, row in enumerate(ROWS) for family in row}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The purgemix modules ``name`` imports (a name imported from a package counts as its submodule when
    there is one)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("purgemix")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("purgemix"):
                target = node.module
            else:
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            found |= set(subs) if subs else {target}
    return {m for m in found if m in modules and m != name}


def _family(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROW else None


def test_every_family_has_a_row():
    families = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert families - set(ROW) <= {"recipes"}, f"families without a row: {families - set(ROW)}"


def test_imports_follow_the_direction_rule():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        mine = _family(name)
        if mine is None:
            continue
        for target in _imports(name, path, modules):
            theirs = _family(target)
            if theirs is None or theirs == mine:
                continue
            if ROW[theirs] >= ROW[mine]:
                wrong.append(f"{name} imports {target} ({mine} is in row {ROW[mine]}, {theirs} in row {ROW[theirs]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # a package's __init__ importing its own submodules (to register them) is not a cycle of the layout
    graph = {n: {t for t in ts if not t.startswith(n + ".")} for n, ts in graph.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_only_the_recipe_builder_assembles_a_pipeline():
    builders = defaultdict(list)
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Pipeline":
                builders[str(path.relative_to(SRC))].append(node.lineno)
    assert set(builders) == {"recipe/build.py"}, dict(builders)
