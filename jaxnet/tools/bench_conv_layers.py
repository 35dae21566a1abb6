"""Where a CPU step's time goes: every convolution of a config's net, forward + backward, in XLA
(jitted on the mesh training uses, the batch sharded, the weight gradient summed over devices) and
in eager PyTorch (oneDNN, channels_last, the threads jaxnet uses), at the config's batch size.

    python -m jaxnet bench_conv_layers                          # configs/fashion_mnist.py
    python -m jaxnet bench_conv_layers --config.batch_size=128 --repeats=7

One row per distinct convolution (input shape, kernel, stride, how many the net has): the
milliseconds per pass of each framework (median of --repeats windows of --steps passes, the two
frameworks alternating; XLA runs a window's passes unrolled in one jitted call, so dispatch is
not timed, each pass moving the input and weights by their gradients so none can be skipped) and
their ratio; then the sums over the net. The convolutions are read from the model's own jaxpr, so
the rows are the ones training runs. The net's first convolution computes no input gradient in
either framework (the image needs none). Needs torch (pip install torch).
"""
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
from absl import flags

from jaxnet import JaxnetError
from jaxnet.tools.cli import CONFIG, run_reporting_errors, start_jax

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "fashion_mnist.py"
FLAGS = flags.FLAGS


def define_flags() -> None:
    """This command's flags, defined when it runs (not on import, as time_to_accuracy's)."""
    flags.DEFINE_integer("steps", 20, "Forward + backward passes per timed window (XLA runs them in"
                         " one jitted call, so its dispatch is not timed).")
    flags.DEFINE_integer("repeats", 5, "Timed windows per framework and convolution.")
    FLAGS.set_default("config", str(QUICKSTART))


def convolutions(config):
    """The net's convolutions in training mode, first to last, as Counter-able tuples
    (input NHWC shape, kernel HWIO shape, strides, padding, feature groups, is_first)."""
    import jax

    from jaxnet.training.state import build_model, init_variables, input_shape

    model = build_model(config)
    shape = (config.batch_size,) + input_shape(config)[1:]
    variables = jax.eval_shape(lambda: init_variables(jax.random.PRNGKey(0), model, shape))
    image = jax.ShapeDtypeStruct(shape, np.float32)
    jaxpr = jax.make_jaxpr(lambda v, x: model.apply(
        v, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.PRNGKey(0)}))(
        variables, image)
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                p = eqn.params
                if p["dimension_numbers"].lhs_spec != (0, 3, 1, 2):
                    raise JaxnetError("conv_layers times NHWC convolutions only")
                found.append((tuple(eqn.invars[0].aval.shape), tuple(eqn.invars[1].aval.shape),
                              tuple(p["window_strides"]), tuple(map(tuple, p["padding"])),
                              p["feature_group_count"], not found))
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)

    walk(jaxpr.jaxpr)
    if not found:
        raise JaxnetError(f"{config.model.name} has no convolutions to time")
    return found


def seconds_per_pass(run, passes: int) -> float:
    """One call of `run` (which runs `passes` passes and blocks on the result), per pass."""
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / passes


def xla_runner(conv, mesh, passes: int = 1):
    """A no-argument function running `conv`'s forward and backward `passes` times in XLA,
    returning the last pass's output and gradients (input, then weights; the cotangent is the
    output). The input and weights are standard normals from numpy's default_rng(0), in that
    order."""
    import jax

    from jaxnet.mesh import batch_sharded, replicated

    lhs, rhs, strides, padding, groups, first = conv

    def forward(x, w):
        return jax.lax.conv_general_dilated(x, w, strides, padding, feature_group_count=groups,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def step(x, w):
        # `passes` passes unrolled in one call, so a call's dispatch is not timed. Each pass
        # starts from the last one's input and weights, moved by its gradients (the cotangent is
        # the output itself, so every gradient depends on the pass): XLA can neither hoist nor
        # drop one.
        for _ in range(passes):
            if first:
                y, pullback = jax.vjp(lambda w: forward(x, w), w)
            else:
                y, pullback = jax.vjp(forward, x, w)
            grads = pullback(y)
            w = w - 1e-9 * grads[-1]
            if not first:
                x = x - 1e-9 * grads[0]
        return y, grads

    rng = np.random.default_rng(0)
    x = jax.device_put(rng.standard_normal(lhs, np.float32), batch_sharded(mesh))
    w = jax.device_put(rng.standard_normal(rhs, np.float32), replicated(mesh))
    compiled = jax.jit(step).lower(x, w).compile()
    return lambda: jax.block_until_ready(compiled(x, w))


def torch_runner(conv, passes: int = 1):
    """A no-argument function running `conv`'s forward and backward `passes` times in eager
    PyTorch."""
    import torch

    lhs, rhs, strides, padding, groups, first = conv
    if any(low != high for low, high in padding):
        raise JaxnetError(f"PyTorch pads symmetrically; this convolution pads {padding}")
    n, h, w, c = lhs
    layer = torch.nn.Conv2d(c, rhs[3], rhs[:2], strides, [p[0] for p in padding], groups=groups,
                            bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(not first)

    def run():
        for _ in range(passes):  # as XLA's: the output is its own cotangent
            layer.zero_grad(set_to_none=True)
            y = layer(x)
            y.backward(y.detach())

    return run


def import_torch():
    try:
        import torch
    except ImportError:
        raise JaxnetError("conv_layers times PyTorch beside XLA: pip install torch") from None
    return torch


def describe(conv) -> str:
    lhs, rhs, strides, _, groups, first = conv
    group = f", {groups} groups" if groups > 1 else ""
    return (f"{'x'.join(map(str, lhs[1:]))} -> {rhs[3]}, {rhs[0]}x{rhs[1]}/{strides[0]}{group}"
            f"{' (first)' if first else ''}")


def main(argv):
    del argv
    config = CONFIG.value
    start_jax(config)
    torch = run_reporting_errors(import_torch)
    from jaxnet.experiments.hardware import hardware
    from jaxnet.mesh import create_mesh, usable_cores

    torch.set_num_threads(usable_cores())
    mesh = create_mesh()
    counts = Counter(run_reporting_errors(lambda: convolutions(config)))
    print(f"hardware: {hardware()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{config.model.name}, batch {config.batch_size}, {config.dtype} (XLA over"
          f" {mesh.devices.size} device(s)); ms per forward + backward, median of"
          f" {FLAGS.repeats} windows of {FLAGS.steps} passes")
    print(f"{'convolution (input HxWxC -> C, kernel/stride)':<44} {'count':>5} {'XLA':>8}"
          f" {'PyTorch':>8} {'XLA/PT':>7}")
    totals = [0.0, 0.0]
    for conv, count in counts.items():
        runners = [xla_runner(conv, mesh, FLAGS.steps),
                   run_reporting_errors(lambda: torch_runner(conv, FLAGS.steps))]
        for run in runners:  # warm up
            run()
        times = [[], []]
        for _ in range(FLAGS.repeats):
            for i, run in enumerate(runners):
                times[i].append(seconds_per_pass(run, FLAGS.steps))
        ours, theirs = (statistics.median(t) * 1e3 for t in times)
        totals[0] += ours * count
        totals[1] += theirs * count
        print(f"{describe(conv):<44} {count:>5} {ours:>8.2f} {theirs:>8.2f} {ours / theirs:>6.2f}x",
              flush=True)
    print(f"{'all ' + str(sum(counts.values())) + ' convolutions':<44} {'':>5} {totals[0]:>8.2f}"
          f" {totals[1]:>8.2f} {totals[0] / totals[1]:>6.2f}x")
