"""The package's layers import one way (../shared/DESIGN.md, section 1), and nothing outside
jaxnet/compat.py reaches into a dependency's private modules or attributes."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lower number = lower layer; a module may import its own layer and those below.
LAYERS = {
    "jaxnet": 0, "jaxnet.config": 0, "jaxnet.mesh": 0, "jaxnet.compat": 0,
    "jaxnet.distributed": 0,                                   # core
    "jaxnet.data": 1, "jaxnet.models": 1,                      # data, models
    "jaxnet.training": 2, "jaxnet.classical": 2,               # steps (and the classical algorithms)
    "jaxnet.weights": 2,
    "jaxnet.loop": 3, "jaxnet.evaluation": 3,                  # loop, evaluators
    "jaxnet.transfer": 3,  # features of a workdir's network: reads its checkpoints (jaxnet.loop)
    "jaxnet.methods": 4,                                       # methods
    "jaxnet.cli": 5, "jaxnet.report": 5, "train": 5, "eval": 5,  # command lines
    "jaxnet.experiments": 5,                                   # the report's experiments
    "jaxnet.bench": 5,                                         # benchmarks (command lines)
}
TOOLS = {"bench", "__main__", "curves", "study"}  # command-line modules: the top layer
TOOL_MODULES = {"jaxnet.evaluation.grid"}
PUBLIC_UNDERSCORED = {("os", "_exit")}  # documented APIs whose names start with "_"
NAMES = ["core", "data/models", "steps", "loop/evaluators", "methods", "CLI"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str):
    """The layer of a jaxnet module (None for other packages)."""
    if module in TOOL_MODULES or (module.split(".")[-1] in TOOLS and module.startswith("jaxnet")):
        return 5
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in LAYERS:
            return LAYERS[".".join(parts[:i])]
    return None


def sources():
    files = sorted((ROOT / "jaxnet").rglob("*.py")) + [ROOT / "train.py", ROOT / "eval.py"]
    return [(module_name(f), ast.parse(f.read_text(), str(f))) for f in files]


def imports(tree, module):
    """(line, imported module) of every import, at any depth (function-level ones too)."""
    package = module if module == "jaxnet" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for a in node.names:  # `from jaxnet.methods import classical` imports the module
                full = f"{base}.{a.name}"
                yield node.lineno, full if layer(full) is not None and base.startswith("jaxnet") else base


def test_every_jaxnet_module_has_a_layer():
    assert [m for m, _ in sources() if layer(m) is None] == []


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for module, tree in sources():
        own = layer(module)
        for line, target in imports(tree, module):
            theirs = layer(target)
            if theirs is not None and theirs > own:
                upward.append(f"{module}:{line} ({NAMES[own]}) imports {target} ({NAMES[theirs]})")
    assert upward == []


def test_no_private_internals_of_dependencies_outside_compat():
    found = []
    for module, tree in sources():
        if module == "jaxnet.compat":
            continue
        dependency_names = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                target = node.module if isinstance(node, ast.ImportFrom) else None
                for a in node.names:
                    name = target or a.name
                    if name != "__future__" and not name.startswith("jaxnet") \
                            and not getattr(node, "level", 0):
                        if any(p.startswith("_") for p in name.split(".")) or a.name.startswith("_"):
                            found.append(f"{module}:{node.lineno} imports {name}.{a.name}")
                        dependency_names.add((a.asname or a.name).split(".")[0])
        for node in ast.walk(tree):  # dep._private, dep.sub._private, ...
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in dependency_names \
                        and (root.id, node.attr) not in PUBLIC_UNDERSCORED:
                    found.append(f"{module}:{node.lineno} uses {root.id}...{node.attr}")
    assert found == []


@pytest.mark.parametrize("bad, message", [
    ("from jaxnet.methods import train\n", "imports jaxnet.methods"),
    ("from jax._src import clusters\n", "imports jax._src"),
])
def test_the_checks_catch_what_they_are_for(bad, message, monkeypatch):
    """The same checks fail on a planted upward or private import (they can fail)."""
    planted = ast.parse(bad)
    monkeypatch.setitem(globals(), "sources", lambda: [("jaxnet.data.planted", planted)])
    check = (test_no_module_imports_from_a_layer_above_its_own if "methods" in bad
             else test_no_private_internals_of_dependencies_outside_compat)
    with pytest.raises(AssertionError, match=message.replace(".", r"\.")):
        check()
