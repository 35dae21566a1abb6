"""Where a number was measured: the CPU model, cores, JAX devices and versions."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import jax

import jaxnet
from jaxnet.mesh import usable_cores


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> str:
    """CPU model and cores, the JAX devices, and the versions: where a number was measured."""
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    return (f"{cpu_model()}, {os.cpu_count()} cores ({usable_cores()} usable); {len(devices)} JAX"
            f" {devices[0].platform} device(s) ({', '.join(kinds)}); jax {jax.__version__},"
            f" jaxnet {jaxnet.__version__}")
