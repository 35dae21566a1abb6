"""Start-up for one or many hosts: `jax.distributed.initialize` and the persistent compilation cache.

Call `initialize()` before any other JAX call (train.py and eval.py do, through jaxnet.tools.cli). On a
single machine it only turns on the compilation cache. Launched as several processes, it joins
them into one JAX system, so `jax.devices()` lists every process's devices and the mesh spans
them all:

- TPU pod slices, Slurm (`srun`), Open MPI (`mpirun`): detected by JAX from the environment;
- anywhere else: pass `coordinator_address` (process 0's `host:port`), `num_processes` and
  `process_id` (or set JAX_COORDINATOR_ADDRESS and pass the other two).

On CPU the processes exchange collectives over TCP (gloo, JAX's default CPU implementation).
"""
import os
from pathlib import Path

from jaxnet import JaxnetError
from jaxnet.compat import detected_cluster

# Where compiled programs are kept between runs, so a restart (or a resumed preemption) does not
# recompile from scratch. Overridden by --compilation_cache_dir or this environment variable;
# "none" turns the cache off.
CACHE_ENV = "JAXNET_COMPILATION_CACHE"
# Programs that compile faster than this many seconds are not kept (default 1); the tests keep
# every program (0), since they compile many small ones again and again.
CACHE_MIN_SECONDS_ENV = "JAXNET_COMPILATION_CACHE_MIN_SECONDS"
DEFAULT_CACHE_DIR = Path("~/.cache/jaxnet/xla").expanduser()


def compilation_cache_dir(flag_value: str = "") -> str:
    """The cache directory to use: the flag, else $JAXNET_COMPILATION_CACHE, else the default;
    "" when turned off ("none")."""
    value = flag_value or os.environ.get(CACHE_ENV, "") or str(DEFAULT_CACHE_DIR)
    return "" if value.lower() in ("none", "off", "0") else value


def enable_compilation_cache(directory: str, min_compile_secs: float | None = None) -> None:
    """Keep every compiled program that took >= `min_compile_secs` (default:
    $JAXNET_COMPILATION_CACHE_MIN_SECONDS, else 1) in `directory` (JAX's own persistent cache:
    keyed on the program, the devices and the JAX version)."""
    import jax

    if not directory:
        return
    if min_compile_secs is None:
        min_compile_secs = float(os.environ.get(CACHE_MIN_SECONDS_ENV, "1"))
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_secs)


def should_initialize(mode: str, coordinator_address, num_processes) -> bool:
    """Whether to call jax.distributed.initialize: `mode` on | off | auto (auto: when an address
    or process count is given, or JAX detects a cluster of more than one process)."""
    if mode not in ("auto", "on", "off"):
        raise JaxnetError(f"--distributed must be auto, on or off, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    if coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return True
    if num_processes is not None and num_processes > 1:
        return True
    cluster = detected_cluster()
    return cluster is not None and cluster[1] > 1


def initialize(mode: str = "auto", coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None,
               local_device_ids=None, cache_dir: str | None = "") -> bool:
    """Turn on the compilation cache and, when launched as several processes, join them.

    `cache_dir`: "" = the default (see `compilation_cache_dir`), None = leave the cache alone.
    Returns whether jax.distributed was initialized. Must run before any other JAX call.
    """
    import jax

    if cache_dir is not None:
        enable_compilation_cache(compilation_cache_dir(cache_dir))
    if not should_initialize(mode, coordinator_address, num_processes):
        return False
    try:
        jax.distributed.initialize(coordinator_address=coordinator_address or None,
                                   num_processes=num_processes, process_id=process_id,
                                   local_device_ids=local_device_ids or None)
    except (ValueError, RuntimeError) as e:
        raise JaxnetError(
            f"could not start the multi-process JAX system ({str(e).splitlines()[0][:300]})."
            " Outside TPU pods, Slurm and Open MPI, pass --coordinator_address=HOST:PORT (process"
            " 0's), --num_processes and --process_id to every process."
        ) from e
    return True
