"""The README and docs/ say only what exists: every relative link (and #anchor) resolves, every
`configs/NAME.py` is a file, every `python -m jaxnet TOOL` is a registered tool (and every tool is
listed in docs/ARCHITECTURE.md), and every documented command line's tool, subcommand and flags
are accepted: each distinct `python -m jaxnet TOOL [SUBCOMMAND]`, `python train.py` and
`python eval.py` is run with --help (absl tools and the scripts: --helpfull) in a subprocess, and
every `--flag` the docs pass to it must appear in that help. So a renamed tool, module or flag
breaks the suite. The argparse tools share one subprocess; the others run concurrently."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaxnet.tools import TOOLS

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CONFIG = re.compile(r"configs/([a-z0-9_]+)\.py")
TOOL = re.compile(r"python -m jaxnet ([a-z_][a-z0-9_]*)")
COMMAND = re.compile(r"python (?:-m jaxnet ([a-z_][a-z0-9_]*)|(train|eval)\.py)((?:\s+[^\s`]+)*)")
REPO_PATH = re.compile(r"(?<![\w/.])((?:jaxnet|tests|configs|docs|\.ci)/[\w/.-]*[\w/])")
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9_-]*)")
HELP_TIMEOUT = 240


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set:
    body = re.sub(r"```.*?```", "", text(path), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+\s+(.*)$", body, flags=re.M)}


def code_lines(body: str):
    """The command-bearing snippets of a Markdown text: each line of a fenced block (with its
    backslash continuations joined, comments cut) and each inline `code span`."""
    in_block, pending = False, ""
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if in_block:
            line = pending + line
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1] + " "
                continue
            pending = ""
            yield re.sub(r"\s#\s.*$", "", line)
        else:
            yield from re.findall(r"`([^`]+)`", line)


def documented_commands() -> dict:
    """{(program, subcommand words...): {flags}} for every command line in README.md and docs/."""
    commands = {}
    for path in DOCS:
        for snippet in code_lines(text(path)):
            for tool, script, rest in COMMAND.findall(snippet):
                words = rest.split()
                positional = []
                if tool:
                    for word in words:
                        if not re.fullmatch(r"[a-z][a-z0-9_]*", word):
                            break
                        positional.append(word)
                key = (tool, *positional) if tool else (f"{script}.py",)
                flags = {f for f in FLAG.findall(rest) if not f.startswith("config.")}
                commands.setdefault(key, set()).update(flags)
    return commands


def is_argparse(tool: str) -> bool:
    return TOOLS[tool][1] in (None, False)


ARGPARSE_HELPS = """
import contextlib, io, json, sys
from jaxnet.tools import main
out = {}
for argv in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            code = main(argv + ["--help"])
        except SystemExit as e:
            code = e.code
        except Exception as e:
            code = f"{type(e).__name__}: {e}"
    out[" ".join(argv)] = [0 if code is None else code, buf.getvalue()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def helps():
    """{key: (exit status, help text)} for every documented command, from --help subprocesses."""
    commands = documented_commands()
    known = [key for key in commands if key[0] in TOOLS or key[0].endswith(".py")]
    argparse_keys = [key for key in known if key[0] in TOOLS and is_argparse(key[0])]
    procs = {}
    for key in known:
        if key in argparse_keys:
            continue
        argv = [key[0], "--helpfull"] if key[0].endswith(".py") else ["-m", "jaxnet", key[0], "--helpfull"]
        procs[key] = subprocess.Popen([sys.executable, *argv], cwd=ROOT, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    batch = subprocess.Popen([sys.executable, "-c", ARGPARSE_HELPS, json.dumps([list(k) for k in argparse_keys])],
                             cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    result = {}
    for key, proc in procs.items():
        out, _ = proc.communicate(timeout=HELP_TIMEOUT)
        result[key] = (proc.returncode, out)
    out, err = batch.communicate(timeout=HELP_TIMEOUT)
    assert batch.returncode == 0, err[-2000:]
    for joined, (code, help_text) in json.loads(out.strip().splitlines()[-1]).items():
        result[tuple(joined.split(" "))] = (code, help_text)
    return commands, result


def test_every_relative_link_resolves():
    broken = []
    for path in DOCS:
        for target in LINK.findall(text(path)):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_named_repository_paths_exist():
    """Paths such as `jaxnet/loop/train_loop.py` or tests/test_reliability.py (placeholders in
    capitals, like jaxnet/tools/NAME.py, aside)."""
    missing = sorted({f"{path.relative_to(ROOT)}: {name}" for path in DOCS
                      for name in REPO_PATH.findall(text(path))
                      if not re.search(r"[A-Z]", name) and not (ROOT / name).exists()})
    assert not missing, "\n".join(missing)


def test_named_configs_exist():
    missing = sorted({f"{path.relative_to(ROOT)}: configs/{name}.py" for path in DOCS
                      for name in CONFIG.findall(text(path)) if not (ROOT / "configs" / f"{name}.py").is_file()})
    assert not missing, "\n".join(missing)


def test_named_tools_are_registered_and_every_tool_is_listed():
    unknown = sorted({f"{path.relative_to(ROOT)}: python -m jaxnet {name}" for path in DOCS
                      for name in TOOL.findall(text(path)) if name not in TOOLS})
    assert not unknown, "\n".join(unknown)
    old_style = sorted({f"{path.relative_to(ROOT)}: {m}" for path in DOCS
                        for m in re.findall(r"python -m jaxnet\.[\w.]+", text(path))})
    assert not old_style, "library modules are not runnable; use python -m jaxnet TOOL:\n" + "\n".join(old_style)
    architecture = text(ROOT / "docs" / "ARCHITECTURE.md")
    unlisted = [name for name in TOOLS if f"`{name}`" not in architecture]
    assert not unlisted, f"tools missing from docs/ARCHITECTURE.md's table: {unlisted}"


def test_the_docs_name_the_main_commands():
    commands = documented_commands()
    for key in [("train.py",), ("eval.py",), ("report",), ("grid",), ("weights", "import"), ("prepare", "imagenet2012"),
                ("bench",), ("classical_curves",), ("transfer_study",)]:
        assert key in commands, key
    assert {"protocol", "ensemble", "labels_file"} <= commands[("eval.py",)]


def test_documented_commands_run_with_help_and_accept_their_flags(helps):
    commands, result = helps
    problems = []
    for key, flags in sorted(commands.items()):
        if key not in result:
            continue  # an unknown tool: test_named_tools_are_registered_and_every_tool_is_listed
        code, help_text = result[key]
        name = " ".join(key)
        if code == 1 and "--[no]helpfull" in help_text and "Traceback" not in help_text:
            code = 0  # absl's --help / --helpfull print the flags, then exit with status 1
        if code != 0:
            problems.append(f"{name} --help: exit status {code}: {help_text.strip()[-300:]}")
            continue
        for flag in sorted(flags):
            base = flag[2:] if flag.startswith("no") and f"[no]{flag[2:]}" in help_text else flag
            if not re.search(rf"--(\[no\])?{re.escape(base)}(?![\w-])", help_text):
                problems.append(f"{name}: --{flag} is documented but not in its --help")
    assert not problems, "\n".join(problems)
