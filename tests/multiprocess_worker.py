"""One process of the 2-process CPU test (tests/test_multiprocess.py launches two of these).

    python tests/multiprocess_worker.py PROCESS_ID PORT CACHE_DIR WORKDIR [WORKDIR ...]

Joins a 2-process JAX system on localhost:PORT with 4 CPU devices (8 in all, gloo collectives)
through jaxnet.distributed, then trains tests/tiny_config.py in each WORKDIR in turn (resuming a
workdir that already holds a checkpoint). A WORKDIR given as `wait:PATH` is first waited for
(the test prepares it while this process trains the one before).
"""
import os
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

from jaxnet.distributed import enable_compilation_cache, initialize  # noqa: E402


def main(process_id: int, port: int, cache_dir: str, workdirs) -> None:
    jax.config.update("jax_num_cpu_devices", 4)
    enable_compilation_cache(cache_dir, min_compile_secs=0)  # later runs reuse the first's programs
    initialize("auto", coordinator_address=f"localhost:{port}", num_processes=2,
               process_id=process_id, cache_dir=None)
    assert jax.process_count() == 2 and jax.device_count() == 8 and jax.local_device_count() == 4

    from tiny_config import get_config

    from jaxnet.methods import train

    for workdir in workdirs:
        if workdir.startswith("wait:"):
            workdir = workdir[len("wait:"):]
            deadline = time.time() + 300
            while not (Path(workdir) / "READY").exists():
                if time.time() > deadline:
                    raise TimeoutError(f"{workdir} was never prepared")
                time.sleep(0.1)
        train(get_config(), workdir)
        if jax.process_index() == 0:
            (Path(workdir) / "DONE").write_text("")  # the test may read this workdir now
        print(f"process {process_id}: trained {workdir}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:])
