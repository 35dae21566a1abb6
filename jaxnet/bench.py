"""Train-step throughput on the current devices, and PyTorch's in the same run for comparison.

    python -m jaxnet.bench --model=resnet50 --batch=16 --image_size=224 --dtype=float32 --torch

Prints compile time and steady-state images/sec of jaxnet's jitted, sharded train step (SGD,
momentum, weight decay, BatchNorm updates: the real step, on synthetic data already on the
device), then the same for torchvision's model with torch.optim.SGD when --torch is given and
torch is installed. Timings are medians over --repeats windows of --steps steps.
"""
import json
import statistics
import time

import jax
import numpy as np
from absl import app, flags, logging

from jaxnet.config import base_config
from jaxnet.training.loop import build_training
from jaxnet.training.sharding import batch_sharded, create_mesh, replicated, shard_batch
from jaxnet.training.steps import make_train_step

MODEL = flags.DEFINE_string("model", "resnet50", "Registry name.")
BATCH = flags.DEFINE_integer("batch", 16, "Global batch size.")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Square input size.")
CHANNELS = flags.DEFINE_integer("channels", 3, "Input channels.")
NUM_CLASSES = flags.DEFINE_integer("num_classes", 1000, "Classes.")
DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
STEPS = flags.DEFINE_integer("steps", 5, "Steps per timed window.")
REPEATS = flags.DEFINE_integer("repeats", 3, "Timed windows (the median is reported).")
TORCH = flags.DEFINE_bool("torch", False, "Also time torchvision's model (if torch is installed).")
MODEL_OPTIONS = flags.DEFINE_string("model_options", "{}", "JSON dict of create_model overrides.")


def bench_config():
    c = base_config()
    c.model.name = MODEL.value
    for key, value in json.loads(MODEL_OPTIONS.value).items():
        c.model[key] = value
    c.num_classes, c.image_size, c.channels = NUM_CLASSES.value, IMAGE_SIZE.value, CHANNELS.value
    c.mean, c.std = (127.5,) * c.channels, (64.0,) * c.channels
    c.batch_size, c.dtype, c.schedule = BATCH.value, DTYPE.value, "constant"
    return c


def time_windows(run_window, repeats):
    """Seconds per window, after one untimed warm-up window."""
    run_window()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_window()
        times.append(time.perf_counter() - start)
    return times


def bench_jax(config, steps, repeats):
    mesh = create_mesh()
    model, schedule, tx, init = build_training(config, steps_per_epoch=1000, mesh=mesh)
    state = init(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    shape = (config.batch_size, config.image_size, config.image_size, config.channels)
    batch = shard_batch({"image": rng.integers(0, 256, shape, np.uint8),
                         "label": rng.integers(0, config.num_classes, config.batch_size)
                         .astype(np.int32)}, mesh)
    step = jax.jit(make_train_step(model, tx, schedule, config),
                   in_shardings=(replicated(mesh), batch_sharded(mesh)),
                   out_shardings=(replicated(mesh), replicated(mesh)), donate_argnums=0)
    start = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def window():
        for _ in range(steps):
            holder["state"], metrics = compiled(holder["state"], batch)
        jax.block_until_ready(metrics)

    times = time_windows(window, repeats)
    return compile_s, steps * config.batch_size / statistics.median(times)


def bench_torch(config, steps, repeats):
    import torch
    import torchvision

    if config.model.name not in torchvision.models.list_models() or json.loads(MODEL_OPTIONS.value):
        return None  # only the stock architectures are the same net in both frameworks
    torch.manual_seed(0)
    model = torchvision.models.get_model(config.model.name, num_classes=config.num_classes)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(config.batch_size, config.channels, config.image_size, config.image_size)
    y = torch.randint(0, config.num_classes, (config.batch_size,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def window():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()

    times = time_windows(window, repeats)
    return steps * config.batch_size / statistics.median(times), torch.__version__, torch.get_num_threads()


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = bench_config()
    devices = jax.devices()
    print(f"{config.model.name}, global batch {config.batch_size}, {config.image_size}px, "
          f"{config.dtype}, on {len(devices)} x {devices[0].device_kind} ({jax.__version__})")
    compile_s, jax_ips = bench_jax(config, STEPS.value, REPEATS.value)
    print(f"jaxnet  train step: compile {compile_s:.1f} s, {jax_ips:.1f} images/sec"
          f" ({jax_ips / len(devices):.1f} per device)")
    if TORCH.value:
        try:
            result = bench_torch(config, STEPS.value, REPEATS.value)
        except ImportError:
            print("torch is not installed: pip install torch==2.14.1 torchvision==0.29.1")
            return
        if result is None:
            print(f"torchvision has no {config.model.name} with these options: no PyTorch comparison")
            return
        torch_ips, version, threads = result
        print(f"PyTorch train step: {torch_ips:.1f} images/sec (torch {version}, {threads} threads,"
              " float32, eager)")
        print(f"ratio jaxnet / PyTorch: {jax_ips / torch_ips:.2f}x")


if __name__ == "__main__":
    app.run(main)
