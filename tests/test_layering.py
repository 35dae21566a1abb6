"""jaxnet's packages import one way (docs/ARCHITECTURE.md): every import, function-level ones
included, points to the importer's own layer or one below, the package graph has no cycle,
command-line parsing lives in the top layer only, and nothing outside jaxnet/compat.py reaches
into a dependency's private modules or attributes."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lower number = lower layer; a module may import its own layer and those below. A package's
# modules share its layer; each core module (jaxnet/*.py) is a node of the package graph.
LAYERS = {
    "jaxnet": 0, "jaxnet.config": 0, "jaxnet.presets": 0, "jaxnet.mesh": 0, "jaxnet.compat": 0,
    "jaxnet.distributed": 0, "jaxnet.console": 0, "jaxnet.files": 0,
    "jaxnet.data": 1, "jaxnet.models": 1,
    "jaxnet.training": 2, "jaxnet.classical": 2, "jaxnet.weights": 2,
    "jaxnet.evaluation": 3,
    "jaxnet.loop": 4,
    "jaxnet.transfer": 5,
    "jaxnet.methods": 6,
    "jaxnet.experiments": 7,
    "jaxnet.tools": 8, "jaxnet.__main__": 8, "train": 8, "eval": 8,
}
NAMES = ["core", "data/models", "steps/classical/weights", "evaluation", "loop", "transfer",
         "methods", "experiments", "tools"]
TOOLS_LAYER = 8
COMMAND_LINE = {"argparse", "absl.app", "ml_collections.config_flags"}  # parsing a command line
PUBLIC_UNDERSCORED = {("os", "_exit")}  # documented APIs whose names start with "_"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def node(module: str):
    """The package-graph node of a jaxnet module (its package, or itself for a core module)."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in LAYERS:
            return ".".join(parts[:i])
    return None


def sources():
    files = sorted((ROOT / "jaxnet").rglob("*.py")) + [ROOT / "train.py", ROOT / "eval.py"]
    return [(module_name(f), ast.parse(f.read_text(), str(f))) for f in files]


def imports(tree, module):
    """(line, imported module) of every import, at any depth (function-level ones too)."""
    package = module if module == "jaxnet" else module.rsplit(".", 1)[0]
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            yield from ((n.lineno, a.name) for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - n.level + 1]
                                + ([base] if base else []))
            for a in n.names:  # `from jaxnet import config` imports the module jaxnet.config
                full = f"{base}.{a.name}"
                yield n.lineno, full if base == "jaxnet" and full in LAYERS else base


def package_graph(modules):
    """{node: {imported node: first 'module:line' that imports it}} between distinct nodes."""
    graph = {}
    for module, tree in modules:
        for line, target in imports(tree, module):
            a, b = node(module), node(target)
            if b is not None and a != b:
                graph.setdefault(a, {}).setdefault(b, f"{module}:{line}")
    return graph


def find_cycle(graph):
    """One cycle of the graph as a list of nodes (first == last), or None."""
    state = {}

    def visit(n, path):
        state[n] = "open"
        for m in sorted(graph.get(n, {})):
            if state.get(m) == "open":
                return path[path.index(m):] + [m]
            if m not in state:
                found = visit(m, path + [m])
                if found:
                    return found
        state[n] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_every_module_has_a_layer():
    assert [m for m, _ in sources() if node(m) is None] == []


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for module, tree in sources():
        own = LAYERS[node(module)]
        for line, target in imports(tree, module):
            theirs = LAYERS.get(node(target)) if node(target) else None
            if theirs is not None and theirs > own:
                upward.append(f"{module}:{line} ({NAMES[own]}) imports {target} ({NAMES[theirs]})")
    assert upward == []


def test_the_package_graph_has_no_cycle():
    graph = package_graph(sources())
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(f"{a} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:]))


def test_only_the_top_layer_parses_command_lines():
    found = []
    for module, tree in sources():
        if LAYERS[node(module)] == TOOLS_LAYER:
            continue
        for line, target in imports(tree, module):
            if target in COMMAND_LINE or target.startswith("absl.app"):
                found.append(f"{module}:{line} imports {target}")
        for n in ast.walk(tree):  # absl flag definitions: flags.DEFINE_*
            if isinstance(n, ast.Attribute) and n.attr.startswith("DEFINE_"):
                found.append(f"{module}:{n.lineno} defines a flag")
    assert found == []


def test_every_tool_is_a_subcommand_of_the_one_entry_point():
    """Every module of jaxnet/tools is registered (or is the tools' shared flags), and no
    library module is runnable on its own: `python -m jaxnet TOOL` is the way in."""
    from jaxnet.tools import TOOLS

    registered = {module for module, _, _ in TOOLS.values()}
    helpers = {"jaxnet.tools", "jaxnet.tools.cli", "jaxnet.tools.torch_recipe"}
    tool_modules = {m for m, _ in sources() if node(m) == "jaxnet.tools"}
    assert tool_modules - registered - helpers == set()
    assert registered <= tool_modules
    runnable = [m for m, tree in sources() if node(m) not in ("jaxnet.__main__", "train", "eval")
                and any(isinstance(n, ast.If) and "__name__" in ast.unparse(n.test)
                        for n in tree.body)]
    assert runnable == []


def test_no_private_internals_of_dependencies_outside_compat():
    found = []
    for module, tree in sources():
        if module == "jaxnet.compat":
            continue
        dependency_names = set()
        for n in ast.walk(tree):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                target = n.module if isinstance(n, ast.ImportFrom) else None
                for a in n.names:
                    name = target or a.name
                    if name != "__future__" and not name.startswith("jaxnet") \
                            and not getattr(n, "level", 0):
                        if any(p.startswith("_") for p in name.split(".")) or a.name.startswith("_"):
                            found.append(f"{module}:{n.lineno} imports {name}.{a.name}")
                        dependency_names.add((a.asname or a.name).split(".")[0])
        for n in ast.walk(tree):  # dep._private, dep.sub._private, ...
            if isinstance(n, ast.Attribute) and n.attr.startswith("_") \
                    and not n.attr.startswith("__"):
                root = n.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in dependency_names \
                        and (root.id, n.attr) not in PUBLIC_UNDERSCORED:
                    found.append(f"{module}:{n.lineno} uses {root.id}...{n.attr}")
    assert found == []


@pytest.mark.parametrize("planted, check, message", [
    ({"jaxnet.data.planted": "from jaxnet.methods import train\n"},
     test_no_module_imports_from_a_layer_above_its_own, "imports jaxnet.methods"),
    ({"jaxnet.data.planted": "def f():\n    from jaxnet.models import create_model\n",
      "jaxnet.models.planted": "from jaxnet.data import sources\n"},
     test_the_package_graph_has_no_cycle, "jaxnet.data .* -> jaxnet.models"),
    ({"jaxnet.loop.planted": "import argparse\n"},
     test_only_the_top_layer_parses_command_lines, "imports argparse"),
    ({"jaxnet.evaluation.planted": "X = flags.DEFINE_string('x', None, '')\n"},
     test_only_the_top_layer_parses_command_lines, "defines a flag"),
    ({"jaxnet.data.planted": "from jax._src import clusters\n"},
     test_no_private_internals_of_dependencies_outside_compat, "imports jax._src"),
])
def test_the_checks_catch_what_they_are_for(planted, check, message, monkeypatch):
    """Each check fails on a planted import (a function-level one in the cycle): they can fail."""
    trees = [(module, ast.parse(text)) for module, text in planted.items()]
    monkeypatch.setitem(globals(), "sources", lambda: trees)
    with pytest.raises(AssertionError, match=message):
        check()
