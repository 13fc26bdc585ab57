"""Imports go one way: training and evaluation never import Ray; pipeline and manifests know nothing of
trainer/eval. From the AST of every module of the four packages: no import cycle between modules, packages
import only packages to their left (manifests <- pipeline <- trainer <- eval), no module imports another's
private (`_name`) names, and no import hides from the graph behind a computed `importlib` name."""
from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("manifests", "pipeline", "trainer", "eval")  # each may import only those before it


def _loaded_after(modules: list[str]) -> set[str]:
    code = ("import sys, json; " + "; ".join(f"import {m}" for m in modules) +
            "; print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("entry", ["trainer.train", "trainer.methods.stg.bench", "eval.score", "eval.baselines",
                                   "eval.viz"])
def test_train_and_eval_never_import_ray(entry):
    assert "ray" not in _loaded_after([entry])


def test_pipeline_and_manifests_do_not_import_trainer_or_eval():
    for path in [*(REPO / "pipeline").rglob("*.py"), *(REPO / "manifests").rglob("*.py")]:
        text = path.read_text()
        for banned in ("import trainer", "from trainer", "import eval", "from eval"):
            assert banned not in text, f"{path.relative_to(REPO)}: {banned}"


# ------------------------------------------------------------------------------------- the import graph
@dataclass(frozen=True)
class Edge:
    source: str   # importing module
    target: str   # imported module of the four packages
    where: str    # "path:line"
    how: str      # the statement, shortened
    implicit: bool = False  # the import of a parent package that importing `target`'s child runs


@dataclass(frozen=True)
class Graph:
    modules: dict[str, Path]
    edges: list[Edge]
    private: list[tuple[str, str]]   # (key, message) per imported private name or module
    dynamic: list[tuple[str, str]]   # (key, message) per computed importlib name


def module_names(root: Path, packages=PACKAGES) -> dict[str, Path]:
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_to_others(owner: str, source: str) -> bool:
    """Whether `source` may not import module `owner`: a private module (a.b._c) is for its package (a.b)."""
    parts = owner.split(".")
    for i, part in enumerate(parts):
        if _is_private(part):
            scope = ".".join(parts[:i])
            return not (source == scope or source.startswith(scope + "."))
    return False


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module of the four packages that `name` (a module or a name in one) lives in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _from_base(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = source.split(".") if is_package else source.split(".")[:-1]
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _literal_import(node: ast.Call) -> tuple[bool, str | None]:
    """(is an importlib.import_module / __import__ call, its literal module name or None)."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name not in ("import_module", "__import__"):
        return False, None
    arg = node.args[0] if node.args else None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
        return True, arg.value
    return True, None


SUBPACKAGES = "<its sub-packages>"


def _discovers_subpackages(node: ast.Call) -> bool:
    """`import_module(f"{__name__}.{...}")`: a package importing its own sub-packages (a plugin registry such as
    trainer.methods), which the graph records as an import of each of them."""
    arg = node.args[0] if node.args else None
    return (isinstance(arg, ast.JoinedStr) and len(arg.values) >= 2 and isinstance(arg.values[0], ast.FormattedValue)
            and isinstance(arg.values[0].value, ast.Name) and arg.values[0].value.id == "__name__"
            and isinstance(arg.values[1], ast.Constant) and str(arg.values[1].value).startswith("."))


def _statements(source: str, tree: ast.Module, is_package: bool, modules: dict[str, Path]):
    """(target name, line, statement, private name or None) for every import in the module, nested ones too;
    a computed importlib name gives target None (SUBPACKAGES: a package discovering its sub-packages)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, f"import {alias.name}", None
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(source, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in modules else base
                private = alias.name if _is_private(alias.name) and target == base else None
                yield target, node.lineno, f"from {base} import {alias.name}", private
        elif isinstance(node, ast.Call):
            is_import, literal = _literal_import(node)
            if is_import and literal is None and is_package and _discovers_subpackages(node):
                yield SUBPACKAGES, node.lineno, "importlib.import_module(f'{__name__}.<sub-package>')", None
            elif is_import:
                yield literal, node.lineno, f"importlib.import_module({literal or '<computed>'!r})", None


def _private_attributes(source: str, tree: ast.Module, is_package: bool, modules: dict[str, Path]):
    """(module, line, name) for each `mod._name` where `mod` is bound by an import of a module of the packages."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name if alias.asname else alias.name.split(".")[0]
                if name in modules:
                    bound[alias.asname or name] = name
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(source, is_package, node)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and _is_private(node.attr) and bound[node.value.id] != source):
            yield bound[node.value.id], node.lineno, f"{node.value.id}.{node.attr}"


@functools.cache
def build_graph(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> Graph:
    modules = module_names(root, packages)
    edges, private, dynamic = [], [], []
    for source, path in modules.items():
        tree, is_package = ast.parse(path.read_text(), str(path)), path.name == "__init__.py"
        for owner, line, how in _private_attributes(source, tree, is_package, modules):
            name = f"{owner}.{how.rpartition('.')[2]}"
            private.append((f"private: {source} uses {name}", f"{path.relative_to(root)}:{line}: {how}"))
        for target, line, how, private_name in _statements(source, tree, is_package, modules):
            where = f"{path.relative_to(root)}:{line}"
            if target is None:
                dynamic.append((f"dynamic import: {source}", f"{where}: {how} hides an import from the graph"))
                continue
            if target == SUBPACKAGES:
                edges += [Edge(source, m, where, how) for m, p in modules.items()
                          if m.rpartition(".")[0] == source and p.name == "__init__.py"]
                continue
            owner = _owner(target, modules)
            if owner is None or owner == source:
                continue
            if private_name:
                private.append((f"private: {source} imports {owner}.{private_name}", f"{where}: {how}"))
            elif _private_to_others(owner, source):
                private.append((f"private: {source} imports {owner}", f"{where}: imports the private module {owner}"))
            edges.append(Edge(source, owner, where, how))
            # importing a.b.c runs a.b's __init__ first, unless the importer is itself inside a.b
            for package in _ancestors(owner):
                if package in modules and package not in _ancestors(source):
                    edges.append(Edge(source, package, where, f"{how} (runs {package})", implicit=True))
    return Graph(modules, edges, private, dynamic)


# ------------------------------------------------------------------------------------------- the checks
def strongly_connected(nodes, edges: list[Edge]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components of more than one module, each sorted."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        succ[e.source].append(e.target)
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(succ[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def shortest_cycle(component: list[str], edges: list[Edge]) -> list[Edge]:
    """A shortest cycle through the component's first module, as the edges that make it."""
    inside = set(component)
    first: dict[tuple[str, str], Edge] = {}
    for e in edges:
        if e.source in inside and e.target in inside:
            first.setdefault((e.source, e.target), e)
    start, came = component[0], {}
    frontier = [start]
    while frontier and start not in came:
        nxt = []
        for node in frontier:
            for (s, t), e in first.items():
                if s == node and t not in came:
                    came[t] = e
                    nxt.append(t)
        frontier = nxt
    path, node = [], start
    while True:
        path.append(came[node])
        node = came[node].source
        if node == start:
            return path[::-1]


def cycle_violations(graph: Graph) -> dict[str, str]:
    out = {}
    for component in strongly_connected(graph.modules, graph.edges):
        steps = "; ".join(f"{e.where}: {e.source} -> {e.target} ({e.how})"
                          for e in shortest_cycle(component, graph.edges))
        out["cycle: " + ", ".join(component)] = f"import cycle among {component}, e.g. {steps}"
    return out


def direction_violations(graph: Graph) -> dict[str, str]:
    rank = {p: i for i, p in enumerate(PACKAGES)}
    pairs = []
    for e in graph.edges:   # an implicit edge stays in its target's package: the explicit one says it all
        src, dst = e.source.split(".")[0], e.target.split(".")[0]
        if rank[dst] > rank[src] and not e.implicit:
            pairs.append((f"direction: {e.source} -> {e.target}",
                          f"{e.where}: {src} may not import {dst} (order {' <- '.join(PACKAGES)})"))
    return _merged(pairs)


def _merged(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for key, message in pairs:
        out.setdefault(key, []).append(message)
    return {key: "; ".join(dict.fromkeys(messages)) for key, messages in out.items()}


def _check(found: dict[str, str]) -> None:
    assert not found, "\n".join(found[k] for k in sorted(found))


def test_no_import_cycles_between_modules():
    _check(cycle_violations(build_graph()))


def test_packages_import_only_to_their_left():
    _check(direction_violations(build_graph()))


def test_no_private_names_imported_across_modules():
    _check(_merged(build_graph().private))


def test_no_computed_importlib_names():
    _check(_merged(build_graph().dynamic))


# ------------------------------------------------------------------------------------ the checker itself
def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_each_kind_of_violation(tmp_path):
    _tree(tmp_path, {
        "manifests/__init__.py": "",
        "manifests/a.py": "def f():\n    from manifests import b  # b is a module\n",
        "manifests/b.py": "import importlib\nX = importlib.import_module('manifests.c')\n",
        "manifests/c.py": "from .a import f\nfrom manifests.d import _helper\nfrom manifests._common import z\n",
        "manifests/_common.py": "z = 1\n",   # private to the package manifests
        "manifests/d.py": "import importlib\n\ndef _helper():\n    return importlib.import_module(NAME)\n",
        "manifests/e.py": "from manifests import d as m\nm._helper()\n",
        "pipeline/__init__.py": "", "trainer/__init__.py": "",
        "eval/__init__.py": "",
        "eval/pkg/__init__.py": "from eval.pkg.mod import g\n",
        "eval/pkg/mod.py": "from eval.pkg import other\ng = 1\n",   # inside eval.pkg: no cycle
        "eval/pkg/other.py": "",
        "eval/q/__init__.py": "from eval.r import x\n",
        "eval/q/s.py": "y = 1\n",
        "eval/r.py": "from eval.q.s import y\nfrom manifests._common import z\nx = 1\n",   # runs eval.q first
        "pipeline/p.py": "from manifests.b import X\nimport eval.pkg.other\n",
        "trainer/t.py": "from eval.pkg.other import *\n",
        "eval/e.py": "from trainer.t import *\n",
    })
    graph = build_graph(tmp_path)
    cycles = cycle_violations(graph)
    assert set(cycles) == {"cycle: manifests.a, manifests.b, manifests.c", "cycle: eval.q, eval.r"}
    assert "manifests/a.py:2" in cycles["cycle: manifests.a, manifests.b, manifests.c"]
    directions = direction_violations(graph)
    assert set(directions) == {"direction: pipeline.p -> eval.pkg.other", "direction: trainer.t -> eval.pkg.other"}
    assert "pipeline/p.py:2" in directions["direction: pipeline.p -> eval.pkg.other"]
    assert set(_merged(graph.private)) == {"private: manifests.c imports manifests.d._helper",
                                           "private: manifests.e uses manifests.d._helper",
                                           "private: eval.r imports manifests._common"}
    assert set(_merged(graph.dynamic)) == {"dynamic import: manifests.d"}
    assert "manifests/d.py:4" in _merged(graph.dynamic)["dynamic import: manifests.d"]
