"""Run train.py / eval.py in this process, through their own `main`, as `python train.py ARGS` does.

absl's `app.run(main, flags_parser=parse_flags)` is what the scripts' `__main__` does: parse the
command line with jaxnet's parser, then call `main`. Here the flags are reset to their defaults
first (absl keeps the values of an earlier parse), so runs do not leak into each other, and what
the command prints comes back with its exit status. In-process runs share JAX's compilation
caches, which is what lets many of them fit in a test's time.
"""
import contextlib
import importlib.util
import sys
import tempfile
import threading
from pathlib import Path

from absl import flags

ROOT = Path(__file__).parent.parent
_SCRIPTS = {}


def script(name: str):
    """The module of ROOT/NAME.py (train or eval), loaded once."""
    if name not in _SCRIPTS:
        spec = importlib.util.spec_from_file_location(f"_cli_{name}", ROOT / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SCRIPTS[name] = module
    return _SCRIPTS[name]


def _reset_flags() -> None:
    """Every flag back to its default, and the previous config's field flags (--config.FIELD,
    which ml_collections defines when it loads a config file) removed."""
    for name in [n for n in flags.FLAGS if n.startswith("config.")]:
        delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()


def run_main(name: str, *args: str) -> tuple[int, str]:
    """(exit status, stdout + stderr) of `python NAME.py ARGS...`, run in this process."""
    code, out, err = run_main_streams(name, *args)
    return code, out + err


def run_main_streams(name: str, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `python NAME.py ARGS...`, run in this process."""
    module = script(name)
    argv = [f"{name}.py", *args]
    saved = sys.argv, sys.unraisablehook, threading.excepthook
    sys.argv = list(argv)
    _reset_flags()
    code = 0
    # files, not StringIOs: the CLIs' error exit redirects the file descriptor of stderr
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path = Path(tmp) / "stdout.txt", Path(tmp) / "stderr.txt"
        try:
            with open(out_path, "w") as out, open(err_path, "w") as err, \
                    contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    module.main(module.parse_flags(argv))
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else 1
        finally:
            sys.argv, sys.unraisablehook, threading.excepthook = saved
            _reset_flags()
        return code, out_path.read_text(), err_path.read_text()
