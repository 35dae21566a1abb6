"""The accelerator benchmark: training throughput of the real jitted train step on whatever
devices are present (GPU, TPU or CPU), and PyTorch's on the CPU for comparison.

    python -m jaxnet bench                      # ResNet-50, 256 images per device, bf16 + fp32
    python -m jaxnet bench --model=resnet50,resnet18 --param_sharding=replicated,fsdp
    python -m jaxnet bench --model=resnet50 --batch=16 --dtype=float32 --input=synthetic --torch

For every (model, dtype, param_sharding, input) it reports: compile time (lowering + XLA), the
first step, the steady-state step time (median over --repeats windows of --steps steps) and
images/sec in all and per device; the model FLOPs utilisation (MFU) against the device's peak,
with the usual convention: 6 FLOPs per multiply-add of the conv and fc layers (forward 2,
backward 4), counted from the model's jaxpr; XLA's own FLOP count of the compiled step beside it
(on GPUs it leaves out the cuDNN convolutions, so it is far lower there); per-device memory from
XLA's memory analysis of the compiled step (arguments = state shard + batch shard, temporaries)
and, on GPU/TPU, the allocator's peak. The step is the one training uses (SGD with momentum and
weight decay, BatchNorm updates, the state donated), on the mesh and placement training uses.

--input=synthetic feeds one batch already on the devices: the compute ceiling. --input=pipeline
feeds every step from jaxnet's grain pipeline (train_loader over an in-memory synthetic source of
the same shape: uint8 on the host, crop + flip, host-to-device transfer), and also times the
pipeline alone; when the pipeline row is slower than the synthetic one, input is the
bottleneck. --input=jpeg does the same with ImageNet's own path: generated ILSVRC-like JPEGs
(500x375, quality 90) decoded and inception-cropped per image in --num_workers grain processes
(-1 = one per core), as `configs/resnet50.py` trains (needs --channels=3).

With --torch, torchvision's same model with torch.optim.SGD is timed in the same run, eager: on a
GPU for each --dtype (channels_last; bf16 autocast for bfloat16, TF32 for float32, as XLA runs
float32 there), on the CPU in float32; the ratio jaxnet / PyTorch is printed per dtype.
"""
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from jaxnet.config import base_config
from jaxnet.data.pipeline import train_loader
from jaxnet.data.sources import create_source
from jaxnet.mesh import batch_sharded, create_mesh, replicated, shard_batch
from jaxnet.models.flops import forward_macs
from jaxnet.training.sharding import shardings_of
from jaxnet.training.state import build_training
from jaxnet.training.steps import make_train_step

MODEL = flags.DEFINE_list("model", ["resnet50"], "Registry names, comma separated.")
BATCH = flags.DEFINE_integer(
    "batch", 0, "Global batch size; 0 = 256 per GPU/TPU device (a realistic training batch), 8 per"
    " CPU device.")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Square input size.")
CHANNELS = flags.DEFINE_integer("channels", 3, "Input channels.")
NUM_CLASSES = flags.DEFINE_integer("num_classes", 1000, "Classes.")
DTYPE = flags.DEFINE_list("dtype", ["bfloat16", "float32"], "Compute dtypes: bfloat16, float32.")
SHARDING = flags.DEFINE_list("param_sharding", ["replicated"], "State placements: replicated, fsdp.")
MIN_SIZE = flags.DEFINE_integer("param_sharding_min_size", 2**14,
                                "fsdp: arrays with fewer elements stay replicated.")
INPUT = flags.DEFINE_list("input", ["synthetic", "pipeline"], "Inputs: synthetic, pipeline, jpeg.")
STEPS = flags.DEFINE_integer("steps", 20, "Steps per timed window.")
REPEATS = flags.DEFINE_integer("repeats", 3, "Timed windows (the median is reported).")
NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", -1, "grain worker processes: -1 = one per core for --input=jpeg (decoding), none"
    " for --input=pipeline (in-memory arrays); or this many.")
PEAK = flags.DEFINE_float(
    "peak_tflops", 0.0, "Peak dense TFLOP/s per device for MFU; 0 = from the device table (GPUs"
    " and TPUs; none for CPUs).")
TORCH = flags.DEFINE_bool("torch", False, "Also time torchvision's model (if torch is installed).")
MODEL_OPTIONS = flags.DEFINE_string("model_options", "{}", "JSON dict of create_model overrides.")
JSON_OUT = flags.DEFINE_string("json_out", "", "Append one JSON record per measurement to this file.")

# Dense peak TFLOP/s per device: (bfloat16, float32 as XLA runs it at default precision: TF32 on
# Ampere and later GPUs, bf16 passes on TPUs). First matching substring of device_kind wins.
PEAK_TFLOPS = (
    ("H100 PCIe", (756.0, 378.0)), ("H100", (989.0, 494.5)), ("H200", (989.0, 494.5)),
    ("A100", (312.0, 156.0)), ("V100", (125.0, 15.7)), ("L4", (121.0, 60.0)),
    ("TPU v6 lite", (918.0, 918.0)), ("TPU v5 lite", (197.0, 197.0)), ("TPU v5", (459.0, 459.0)),
    ("TPU v4", (275.0, 275.0)),
)


def peak_tflops(device_kind: str, dtype: str, override: float = 0.0):
    """The device's dense peak for `dtype` (`override`, --peak_tflops, wins), or None if unknown."""
    if override:
        return override
    for name, (bf16, fp32) in PEAK_TFLOPS:
        if name.lower() in device_kind.lower():
            return bf16 if dtype == "bfloat16" else fp32
    return None


def bench_config(model: str, dtype: str, sharding: str, batch: int):
    c = base_config()
    c.model.name = model
    for key, value in json.loads(MODEL_OPTIONS.value).items():
        c.model[key] = value
    c.num_classes, c.image_size, c.channels = NUM_CLASSES.value, IMAGE_SIZE.value, CHANNELS.value
    c.mean, c.std = (127.5,) * c.channels, (64.0,) * c.channels
    c.batch_size, c.dtype, c.schedule = batch, dtype, "constant"
    c.param_sharding, c.param_sharding_min_size = sharding, MIN_SIZE.value
    c.dataset, c.synthetic_examples, c.train_split = "synthetic", max(4 * batch, 64), "train"
    c.num_workers = NUM_WORKERS.value
    return c


def jpeg_source(config, distinct: int = 32):
    """config.synthetic_examples generated ILSVRC-like JPEGs (`distinct` different ones, repeated)
    as an encoded source: ImageNet's decode + train-transform path without ImageNet."""
    from jaxnet.data.sources import encoded_source
    from jaxnet.tools.bench_data import RepeatedJpegs, imagenet_like_jpeg

    rng = np.random.default_rng(0)
    images = [imagenet_like_jpeg(rng) for _ in range(distinct)]
    records = RepeatedJpegs(images, config.synthetic_examples, config.num_classes)
    return encoded_source(records, config, "generated JPEGs")


def time_windows(run_window, repeats):
    """Seconds per window, after one untimed warm-up window."""
    run_window()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_window()
        times.append(time.perf_counter() - start)
    return times


def step_flops(compiled) -> float:
    """FLOPs of one step on one device, from XLA's cost analysis of the compiled (partitioned)
    program; 0 when the backend gives none."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    return float((analysis or {}).get("flops", 0.0))


def model_flops_per_image(model, state, config) -> float:
    """Training FLOPs of one image by the MFU convention: 6 x the forward pass's conv and fc
    multiply-adds (2 FLOPs each forward, twice that backward), padding included."""
    variables = {"params": state.params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    variables = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
    image = jax.ShapeDtypeStruct((1, config.image_size, config.image_size, config.channels),
                                 jnp.float32)
    return 6.0 * forward_macs(model, variables, image)


def memory_figures(compiled) -> dict:
    """Per-device bytes from XLA's memory analysis of the compiled step."""
    m = compiled.memory_analysis()
    if m is None:
        return {}
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
              "temp_size_in_bytes")
    figures = {f.replace("_size_in_bytes", "_bytes"): int(getattr(m, f, 0)) for f in fields}
    # Donated state: outputs alias arguments, so the live total is args + outputs - aliased + temps.
    figures["total_bytes"] = (figures["argument_bytes"] + figures["output_bytes"]
                              - figures["alias_bytes"] + figures["temp_bytes"])
    return figures


def allocator_peak() -> int | None:
    """Largest peak_bytes_in_use over this process's devices (GPU/TPU); None on CPU."""
    peaks = []
    for d in jax.local_devices():
        stats = d.memory_stats() if hasattr(d, "memory_stats") else None
        if stats and "peak_bytes_in_use" in stats:
            peaks.append(stats["peak_bytes_in_use"])
    return max(peaks) if peaks else None


def synthetic_batch(config, mesh):
    """This process's share of one random uint8 batch, placed on the mesh once."""
    local = config.batch_size // jax.process_count()
    rng = np.random.default_rng(jax.process_index())
    shape = (local, config.image_size, config.image_size, config.channels)
    return shard_batch({"image": rng.integers(0, 256, shape, np.uint8),
                        "label": rng.integers(0, config.num_classes, local).astype(np.int32)}, mesh)


def bench_jax(config, inputs, steps, repeats):
    """Compile the train step once, then time it on each of `inputs`; one record per input."""
    mesh = create_mesh()
    model, schedule, tx, init = build_training(config, steps_per_epoch=1000, mesh=mesh)
    state = init(jax.random.PRNGKey(0))
    state_sharding = shardings_of(state)
    batch = synthetic_batch(config, mesh)
    step = jax.jit(make_train_step(model, tx, schedule, config),
                   in_shardings=(state_sharding, batch_sharded(mesh)),
                   out_shardings=(state_sharding, replicated(mesh)), donate_argnums=0)
    start = time.perf_counter()
    lowered = step.lower(state, batch)
    lower_s = time.perf_counter() - start
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    first_step_s = time.perf_counter() - start
    common = {"model": config.model.name, "dtype": config.dtype,
              "param_sharding": config.param_sharding, "batch": config.batch_size,
              "image_size": config.image_size, "devices": jax.device_count(),
              "device_kind": jax.devices()[0].device_kind, "lower_s": lower_s,
              "compile_s": compile_s, "first_step_s": first_step_s,
              "flops_per_step_per_device": step_flops(compiled),
              "model_flops_per_image": model_flops_per_image(model, state, config),
              **memory_figures(compiled)}
    holder = {"state": state}
    records = []
    for source_kind in inputs:
        record = dict(common, input=source_kind)
        if source_kind == "synthetic":
            next_batch = lambda: batch  # noqa: E731
        else:
            source = (jpeg_source(config) if source_kind == "jpeg"
                      else create_source(config, config.train_split))
            loader = iter(train_loader(source, config, jax.process_index(), jax.process_count()))
            local = config.batch_size // jax.process_count()
            loader_times = time_windows(lambda: [next(loader) for _ in range(steps)], repeats)
            record["pipeline_only_images_per_sec"] = (steps * local * jax.process_count()
                                                      / statistics.median(loader_times))
            next_batch = lambda: shard_batch(next(loader), mesh)  # noqa: E731

        def window():
            for _ in range(steps):
                holder["state"], out = compiled(holder["state"], next_batch())
            jax.block_until_ready(out)

        seconds = statistics.median(time_windows(window, repeats)) / steps
        record["step_ms"] = seconds * 1e3
        record["images_per_sec"] = config.batch_size / seconds
        record["images_per_sec_per_device"] = record["images_per_sec"] / jax.device_count()
        peak = peak_tflops(record["device_kind"], config.dtype, PEAK.value)
        record["peak_tflops"] = peak
        model_flops = record["model_flops_per_image"] * record["images_per_sec_per_device"]
        record["mfu"] = model_flops / (peak * 1e12) if peak else None
        record["allocator_peak_bytes"] = allocator_peak()
        records.append(record)
    return records


def describe(r) -> str:
    gib = 2.0**30
    parts = [f"{r['model']} {r['dtype']} {r['param_sharding']} {r['input']}:",
             f"compile {r['compile_s']:.1f} s (lowering {r['lower_s']:.1f} s), first step"
             f" {r['first_step_s']:.2f} s, steady {r['step_ms']:.1f} ms/step,"
             f" {r['images_per_sec']:.1f} images/sec ({r['images_per_sec_per_device']:.1f} per device)"]
    if "pipeline_only_images_per_sec" in r:
        parts.append(f"| input pipeline alone {r['pipeline_only_images_per_sec']:.1f} images/sec")
    xla_per_image = r["flops_per_step_per_device"] * r["devices"] / r["batch"] / 1e9
    mfu = (f"MFU {100 * r['mfu']:.1f}% of {r['peak_tflops']:.0f} TFLOP/s" if r["mfu"] is not None
           else "MFU n/a (no peak known for this device: --peak_tflops)")
    parts.append(f"| model {r['model_flops_per_image'] / 1e9:.3g} GFLOP per image (XLA's count"
                 f" {xla_per_image:.3g}), {mfu}")
    if "total_bytes" in r:
        parts.append(f"| per-device memory (XLA): state+batch {r['argument_bytes'] / gib:.3f} GiB,"
                     f" temporaries {r['temp_bytes'] / gib:.3f} GiB, total {r['total_bytes'] / gib:.3f} GiB")
    if r["allocator_peak_bytes"]:
        parts.append(f"| allocator peak {r['allocator_peak_bytes'] / gib:.2f} GiB")
    return " ".join(parts)


def bench_torch(config, steps, repeats):
    """torchvision's same model and SGD step, eager: on the GPU when torch sees one (channels_last,
    bf16 autocast for config.dtype == "bfloat16", TF32 matmuls as XLA uses), else on the CPU in
    float32. Returns (images/sec, description) or None when torchvision lacks the model."""
    import torch
    import torchvision

    if config.model.name not in torchvision.models.list_models() or json.loads(MODEL_OPTIONS.value):
        return None  # only the stock architectures are the same net in both frameworks
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    memory_format = torch.channels_last if cuda else torch.contiguous_format
    model = torchvision.models.get_model(config.model.name, num_classes=config.num_classes)
    model = model.to(device, memory_format=memory_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(config.batch_size, config.channels, config.image_size, config.image_size,
                    device=device).to(memory_format=memory_format)
    y = torch.randint(0, config.num_classes, (config.batch_size,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()
    autocast = cuda and config.dtype == "bfloat16"

    def window():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        if cuda:
            torch.cuda.synchronize()

    times = time_windows(window, repeats)
    where = (f"{torch.cuda.get_device_name()}, channels_last" if cuda
             else f"CPU, {torch.get_num_threads()} threads")
    precision = "bf16 autocast" if autocast else "float32"
    return (steps * config.batch_size / statistics.median(times),
            f"torch {torch.__version__}, {where}, {precision}, eager")


def default_batch() -> int:
    per_device = 8 if jax.devices()[0].platform == "cpu" else 256
    return per_device * jax.device_count()


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    unknown = set(INPUT.value) - {"synthetic", "pipeline", "jpeg"}
    if unknown:
        raise app.UsageError(f"--input takes synthetic, pipeline, jpeg; not {sorted(unknown)}")
    if "jpeg" in INPUT.value and CHANNELS.value != 3:
        raise app.UsageError("--input=jpeg decodes RGB JPEGs: use --channels=3")
    devices = jax.devices()
    batch = BATCH.value or default_batch()
    print(f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform}), {jax.process_count()}"
          f" process(es), JAX {jax.__version__}; global batch {batch}, {IMAGE_SIZE.value}px",
          flush=True)
    records = []
    for model in MODEL.value:
        for dtype in DTYPE.value:
            for sharding in SHARDING.value:
                config = bench_config(model, dtype, sharding, batch)
                for record in bench_jax(config, INPUT.value, STEPS.value, REPEATS.value):
                    print(describe(record), flush=True)
                    records.append(record)
        if TORCH.value:  # on a CPU float32 only: bf16 autocast there is no fair peer
            for dtype in DTYPE.value if devices[0].platform == "gpu" else ["float32"]:
                compare_torch(bench_config(model, dtype, "replicated", batch), records)
    if JSON_OUT.value and jax.process_index() == 0:
        with open(JSON_OUT.value, "a") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")


def compare_torch(config, records) -> None:
    """PyTorch's images/sec for `config` and the ratio of jaxnet's synthetic-input figure to it."""
    try:
        result = bench_torch(config, STEPS.value, REPEATS.value)
    except ImportError:
        print("torch is not installed: pip install torch==2.14.1 torchvision==0.29.1")
        return
    if result is None:
        print(f"torchvision has no {config.model.name} with these options: no PyTorch comparison")
        return
    torch_ips, description = result
    print(f"PyTorch train step, {config.dtype}: {torch_ips:.1f} images/sec ({description})",
          flush=True)
    ours = [r for r in records if r["model"] == config.model.name and r["dtype"] == config.dtype
            and r["input"] == "synthetic" and r["param_sharding"] == "replicated"]
    if ours:
        print(f"ratio jaxnet / PyTorch ({config.dtype}): {ours[0]['images_per_sec'] / torch_ips:.2f}x",
              flush=True)
