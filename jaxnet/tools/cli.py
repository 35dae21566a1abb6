"""What train.py and eval.py share: flags, config loading, and turning user errors into messages."""
import ast
import difflib
import logging as std_logging
import math
import os
import sys
import threading
from pathlib import Path

from absl import flags, logging
from ml_collections import config_flags

from jaxnet import JaxnetError
from jaxnet.mesh import usable_cores

CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to an ml_collections config file (configs/*.py).", lock_config=True)
CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", -1,
    "Split the host CPU into this many JAX devices (data parallel over cores, one thread pool"
    " each); -1 = auto: the number of usable cores, reduced to divide the batch sizes. Only the"
    " CPU backend is affected: on GPU/TPU machines the accelerators are the mesh.")
WORKDIR = flags.DEFINE_string(
    "workdir", None, "Where checkpoints, metrics and config.json go (default: workdirs/CONFIG_NAME).")
# Multi-host start-up (jaxnet.distributed): auto-detected on TPU pods, Slurm and Open MPI.
DISTRIBUTED = flags.DEFINE_enum(
    "distributed", "auto", ["auto", "on", "off"],
    "Join several processes into one JAX system (jax.distributed.initialize). auto: when"
    " --coordinator_address/--num_processes are given or JAX detects a multi-process TPU pod,"
    " Slurm or Open MPI job.")
COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "Process 0's HOST:PORT (default: $JAX_COORDINATOR_ADDRESS or"
    " auto-detected).")
NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job (default: auto).")
PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (default: auto).")
LOCAL_DEVICE_IDS = flags.DEFINE_list(
    "local_device_ids", None, "Local accelerators this process uses, e.g. 0,1 (default: all, or"
    " one per process under Slurm).")
CACHE_DIR = flags.DEFINE_string(
    "compilation_cache_dir", "", "Persistent compilation cache (default: $JAXNET_COMPILATION_CACHE"
    " or ~/.cache/jaxnet/xla; 'none' turns it off).")


def parse_flags(argv):
    """absl's parser, with jaxnet's rules for --config.FIELD:
    - any model option can be set (`--config.model.width=32`), also one the config file does
      not set: those arguments are applied after the file is read, with Python literal syntax
      (`--config.model.stage_sizes=(1,1)`), and the model checks them when it is built;
    - an unknown or ill-typed field exits 2 with one line, naming the closest valid field.
    Logs at WARNING unless --verbosity says otherwise (0: every host's progress and orbax's INFO)."""
    model_args = [a for a in argv[1:] if a.startswith("--config.model.")
                  and not a.startswith("--config.model.name=")]
    sys.argv = [a for a in sys.argv if a not in model_args]  # config_flags reads sys.argv too
    try:
        remaining = flags.FLAGS([a for a in argv if a not in model_args])
    except SyntaxError as e:  # the config file does not parse
        print(f"error: --config: {syntax_error(e)}", file=sys.stderr)
        sys.exit(2)
    except (AttributeError, KeyError, flags.Error) as e:
        print(f"error: {config_flag_error(argv, e)}", file=sys.stderr)
        sys.exit(2)
    if len(remaining) > 1:
        print(f"error: unexpected arguments {remaining[1:]}: flags are written --name=value",
              file=sys.stderr)
        sys.exit(1)
    try:
        config = CONFIG.value
        if config is not None:
            with config.unlocked():  # (the file is loaded at this first use)
                for arg in model_args:
                    key, _, text = arg[len("--config.model."):].partition("=")
                    config.model[key] = literal(text)
    except OSError as e:  # ml_collections: the file is missing or raised while loading
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        print(f"error: --config: {lines[-1] if lines else e}", file=sys.stderr)
        sys.exit(2)
    except SyntaxError as e:
        print(f"error: --config: {syntax_error(e)}", file=sys.stderr)
        sys.exit(2)
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        quiet_library_errors()
    return remaining


class _LibraryErrors(std_logging.Filter):
    """Drops the error logs of orbax's background threads: jaxnet reports their cause in one
    line (--verbosity=0 or 1 shows them)."""

    def filter(self, record) -> bool:
        return not (record.levelno >= std_logging.ERROR and "/orbax/" in record.pathname)


def quiet_library_errors() -> None:
    """No tracebacks from orbax's threads nor asyncio's 'Future exception was never retrieved':
    the error they belong to is jaxnet's one line."""
    std_logging.getLogger("absl").addFilter(_LibraryErrors())
    std_logging.getLogger("asyncio").setLevel(std_logging.CRITICAL)
    sys.unraisablehook = _without_closed_loops(sys.unraisablehook)


def _without_closed_loops(hook):
    """sys.unraisablehook, less tensorstore's callbacks into an asyncio loop orbax already closed
    after a failed save or restore (one traceback per pending read or write)."""

    def unraisablehook(unraisable):
        if (unraisable.exc_type is RuntimeError
                and str(unraisable.exc_value) == "Event loop is closed"):
            return
        hook(unraisable)

    return unraisablehook


def syntax_error(error: SyntaxError) -> str:
    """'FILE line N: MESSAGE' of a config file that does not parse."""
    return f"{error.filename} line {error.lineno}: {error.msg} (a Python syntax error)"


def literal(text: str):
    """A command-line value as a Python literal (32, 0.5, True, (1, 1)), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def config_flag_error(argv, error) -> str:
    """The one-line message for a --config.FIELD absl or ml_collections refused."""
    from jaxnet.config import base_config

    known = base_config()
    for arg in argv[1:]:
        if not arg.startswith("--config."):
            continue
        path = arg[len("--config."):].split("=")[0].split(".")
        section, fields = known, list(known.keys())
        for i, part in enumerate(path):
            if part not in fields:
                where = ".".join(["config"] + path[:i])
                close = difflib.get_close_matches(part, fields, n=1)
                hint = f"; did you mean {where}.{close[0]}?" if close else "."
                return (f"unknown config field {'.'.join(path)!r} (in {arg}){hint} The fields are"
                        " listed in jaxnet/config.py")
            section = section[part]
            fields = list(section.keys()) if hasattr(section, "keys") else []
    return str(error).splitlines()[0] if str(error) else type(error).__name__


# XLA aborts a CPU collective whose devices' threads have not all arrived within 40 s: on a
# machine busy with other jobs, CPU devices that share cores can fall that far behind, so the
# limit is raised (a job that really hangs still stops, after an hour).
CPU_COLLECTIVE_TIMEOUT = "--xla_cpu_collective_call_terminate_timeout_seconds=3600"


def configure_cpu_devices(config) -> None:
    """Apply --cpu_devices before JAX starts (unless XLA_FLAGS already sets a device count)."""
    xla_flags = os.environ.get("XLA_FLAGS", "")
    if "collective_call_terminate_timeout" not in xla_flags:
        os.environ["XLA_FLAGS"] = f"{xla_flags} {CPU_COLLECTIVE_TIMEOUT}".strip()
    use_cpu_cores(config.batch_size, config.eval_batch_size, count=CPU_DEVICES.value)


def start_jax(config) -> None:
    """Before any other JAX call: CPU device count, compilation cache, multi-host start-up."""
    from jaxnet.distributed import initialize

    configure_cpu_devices(config)
    ids = LOCAL_DEVICE_IDS.value
    run_reporting_errors(lambda: initialize(
        DISTRIBUTED.value, COORDINATOR.value, NUM_PROCESSES.value, PROCESS_ID.value,
        [int(i) for i in ids] if ids else None, CACHE_DIR.value))


def auto_cpu_devices(cores: int, *batch_sizes: int) -> int:
    """The most devices, at most `cores` (and 8), that divide every batch size."""
    divides = math.gcd(*batch_sizes)
    return max(n for n in range(1, min(cores, 8) + 1) if divides % n == 0)


def use_cpu_cores(*batch_sizes: int, count: int = -1) -> None:
    """Before JAX starts: split the host CPU into `count` JAX devices (-1: as many as usable
    cores, at most 8, dividing every batch size), unless XLA_FLAGS already sets a device count
    (tests, benches). Only the CPU backend is affected."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    count = count if count >= 0 else auto_cpu_devices(usable_cores(), *batch_sizes)
    if count > 0:
        import jax

        jax.config.update("jax_num_cpu_devices", count)


def workdir_or_default() -> Path:
    if WORKDIR.value:
        return Path(WORKDIR.value)
    return Path("workdirs") / Path(flags.FLAGS["config"].config_filename).stem


def run_reporting_errors(fn):
    """Call fn(); a JaxnetError (bad config, missing data, ...) exits 1 with its message only
    (the traceback too with --verbosity=1 or JAXNET_DEBUG=1)."""
    try:
        return fn()
    except JaxnetError as e:
        if os.environ.get("JAXNET_DEBUG") == "1" or logging.get_verbosity() >= logging.DEBUG:
            raise
        print(f"error: {e}", file=sys.stderr, flush=True)
        # the background threads this exit interrupts (orbax's, tensorstore's) print nothing more
        sys.unraisablehook = threading.excepthook = lambda *args: None
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
        sys.exit(1)
