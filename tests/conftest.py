"""Test set-up: emulate 8 CPU devices before JAX starts, so sharding code runs as on a pod."""
import os

# (and wait up to an hour for every device of a CPU collective, as train.py does: with the suite
# spread over both cores by pytest-xdist, one device's thread can fall behind for long)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    " --xla_cpu_collective_call_terminate_timeout_seconds=3600"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the whole suite, apart from the user's: both pytest
# workers and every train.py / eval.py the tests start reuse each other's compiled programs, and
# a second run of the suite compiles little. JAXNET_TEST_CACHE=none turns it off.
TEST_CACHE = os.environ.get("JAXNET_TEST_CACHE", os.path.expanduser("~/.cache/jaxnet/xla-tests"))
os.environ["JAXNET_COMPILATION_CACHE"] = TEST_CACHE
os.environ["JAXNET_COMPILATION_CACHE_MIN_SECONDS"] = "0"  # the many small programs too

import jax  # noqa: E402  (must come after the flags above)
import pytest  # noqa: E402

from jaxnet.distributed import compilation_cache_dir, enable_compilation_cache  # noqa: E402

enable_compilation_cache(compilation_cache_dir())


@pytest.fixture(scope="session")
def devices():
    devs = jax.devices()
    assert len(devs) == 8, f"conftest should emulate 8 CPU devices, got {len(devs)}"
    return devs
