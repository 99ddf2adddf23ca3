"""The package layout: imports run downward through the layers of docs/DESIGN.md, and there is no cycle.

Every `import` and `from ... import` of every module is read with `ast` (function-level imports included,
since they are imports all the same).
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Bottom (0) to top; a module may import its own layer and those below it.
LAYERS = [
    (
        "pipelines",
        "seq2seq.errors",
        "seq2seq.registry",
        "seq2seq.compat",
        "seq2seq.os_errors",
        "seq2seq.text_input",
        "seq2seq.argtypes",
    ),
    ("seq2seq.config", "seq2seq.config_doc", "seq2seq.model_dir", "seq2seq.run_lock", "seq2seq.weights_file"),
    ("seq2seq.model", "seq2seq.word_vectors"),
    ("seq2seq.decoding", "seq2seq.evaluation", "seq2seq.plots", "seq2seq.repetition"),
    ("seq2seq.serving",),
    ("seq2seq.training",),
    ("seq2seq.tasks",),
    ("seq2seq.runner", "seq2seq.embedding_tools", "seq2seq.averaging"),
    ("seq2seq.cli", "seq2seq.modes", "seq2seq.server"),
]


def _layer(module: str) -> int | None:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    return None if best is None else best[0]


def _modules() -> dict[str, str]:
    found = {}
    for package in ("pipelines", "seq2seq"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    found[module.removesuffix(".__init__")] = path
    return found


def _imports(path: str, module: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = set()
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in ("seq2seq", "pipelines")}


MODULES = _modules()
INTERNAL = {m: {i for i in _imports(p, m) if i in MODULES} for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m not in ("seq2seq", "pipelines") and _layer(m) is None] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in ("seq2seq", "pipelines")))
def test_imports_run_downward(module):
    own = _layer(module)
    upward = sorted(i for i in INTERNAL[module] if i not in ("seq2seq", "pipelines") and _layer(i) > own)
    assert upward == [], f"{module} (layer {own}) imports from layers above it: {upward}"


def test_pipelines_never_import_seq2seq():
    assert {
        m: sorted(i for i in INTERNAL[m] if i.startswith("seq2seq"))
        for m in MODULES
        if m.startswith("pipelines") and any(i.startswith("seq2seq") for i in INTERNAL[m])
    } == {}


def test_no_import_cycle():
    graph = {
        m: {i for i in deps if i not in ("seq2seq", "pipelines") and i != m}
        for m, deps in INTERNAL.items()
        if m not in ("seq2seq", "pipelines")
    }
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_loading_and_serving_need_no_training_module():
    """The runner imports `seq2seq.training` only inside `train`; serving modules never do."""
    for module in ("seq2seq.runner", "seq2seq.serving.modules", "seq2seq.serving.export", "seq2seq.model.seq2seq"):
        tree = ast.parse(open(MODULES[module], encoding="utf-8").read())
        top_level = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                top_level.add(node.module)
            elif isinstance(node, ast.Import):
                top_level.update(alias.name for alias in node.names)
        assert not [n for n in top_level if n.startswith("seq2seq.training")], module
