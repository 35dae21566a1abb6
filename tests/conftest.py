"""Test set-up: emulate 8 CPU devices before JAX starts, so sharding code runs as on a pod."""
import os

# (and wait up to an hour for every device of a CPU collective, as train.py does: with the suite
# spread over both cores by pytest-xdist, one device's thread can fall behind for long)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    " --xla_cpu_collective_call_terminate_timeout_seconds=3600"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The CLIs run by the tests must not fill the user's persistent compilation cache.
os.environ.setdefault("JAXNET_COMPILATION_CACHE", "none")

import jax  # noqa: E402  (must come after the flags above)
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def devices():
    devs = jax.devices()
    assert len(devs) == 8, f"conftest should emulate 8 CPU devices, got {len(devs)}"
    return devs
