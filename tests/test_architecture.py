"""The package's shape, checked on its source: no import cycle, no arrow from a lower package to a higher
one, and no import hidden inside a function unless it is there for a library that costs seconds to import
(torch / faiss / ray / transformers and their kin, sklearn / scipy / pandas / pyarrow: ``HEAVY``), saying so.

Every import counts (module level or inside a function), and so does a registry entry naming
``"memeprobe.x.y:Name"``: it is an import made later. Layers, lowest first: the top-level helpers
(errors, atomic, outputs, ...), ``data``, ``store``, then ``featurize`` | ``leakage`` (never each other), then ``heads`` (it reads
leakage reports' clean ids), then ``api`` / ``demo``, then ``cli``; the package's ``__init__`` (version and lazy names) sits at layer 0 with the helpers."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "memeprobe"
LAYERS = {"data": 1, "store": 2, "featurize": 3, "leakage": 3, "heads": 4, "api": 5, "demo": 5, "cli": 6}  # anything else at the top (errors, atomic, outputs, ...) is layer 0
HEAVY = ("torch", "faiss", "ray", "transformers", "sentence_transformers", "open_clip", "timm", "torchvision", "sklearn",
         "scipy", "pandas", "pyarrow")  # imports that cost seconds (or pull one that does)
_TARGET = re.compile(r"^(memeprobe(?:\.\w+)+):\w+$")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("memeprobe", *path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in MODULES else None


def _imports(module: str, path: Path):
    """``(target module, line, inside a function, source line)`` of every memeprobe import and registry entry."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if n is not f}
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _TARGET.match(node.value):
            names = [_TARGET.match(node.value).group(1)]
        for name in names:
            if name.split(".")[0] in HEAVY or (name.startswith("memeprobe") and _resolve(name)):
                yield name, node.lineno, id(node) in inner, lines[node.lineno - 1]


GRAPH = {m: {t for name, *_ in _imports(m, p) if (t := _resolve(name)) and t != m} for m, p in MODULES.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return LAYERS.get(top, 0)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    assert _cycles() == []


def test_no_package_imports_a_higher_one():
    up = [f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
          if _layer(b) > _layer(a) or (_layer(a) == _layer(b) > 0 and a.split(".")[:2] != b.split(".")[:2])]
    assert up == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_an_import_inside_a_function_is_there_for_a_heavy_library(module):
    """A lazy import keeps a ``HEAVY`` library off start-up, and says so on its line or the line above; every
    other import sits at the top of the module."""
    lines = MODULES[module].read_text().splitlines()
    hidden = []
    for name, lineno, inside, text in _imports(module, MODULES[module]):
        if not inside or name.split(".")[0] in HEAVY:
            continue
        said = text + (lines[lineno - 2] if lineno > 1 else "")
        if not any(re.search(rf"\b{h}\b", said) for h in HEAVY):  # a word: "array" is not "ray"
            hidden.append(f"{MODULES[module].name}:{lineno}: {text.strip()}")
    assert hidden == []
